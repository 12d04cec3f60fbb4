"""참조조문 / 관련법령 strings -> the list as written (`related_laws`) and parsed `ArticleRef`s (`references`).

The strings come in a few shapes:
- precedents: "형의 실효 등에 관한 법률 제7조 제1항, 형법 제35조 / [2] 소득세법 제94조", with "[n]" issue markers,
  " / " and ", " separators, "구 상속세 및 증여세법(2016. 12. 20. 법률 제14388호로 개정되기 전의 것) 제3조의2";
- the 국세청 casebook: "국세기본법 제26조의2 【국세의 부과제척기간】 국세기본법 시행령 제12조의3 【…】";
- the seed's `related_laws` lists.
A citation without a law name ("같은 법 제3조", "제5조 제2항") takes the law of the citation before it.

Two precedent habits need care beyond the citation parser:
- a note in parentheses right after a provision, "제2조 제1항(현행 제4조 제1항 참조), 제3항": the note is read on
  its own (its bare articles belong to the law just cited), and what follows it continues the citation before it,
  so the example gives 제2조 제1항, 제4조 제1항, 제2조 제3항 (not 제4조 제3항);
- former texts: "구 소득세법(…개정되기 전의 것) 제3조", "구법 제41조 제2항" (the former text of the law just cited)
  are kept with `former=True`, and so are the provisions that continue them ("…제3조, 제4조").
"""

from __future__ import annotations

import re

from slm_datagen.taxlaw.citations import Citation, find_citations
from slm_forest.records import ArticleRef

_SECTION_TITLE = re.compile(r"【[^】]*】")
_ISSUE_MARK = re.compile(r"\[\d+\]")
# "구법", "구 법" (not "구법령", not "연구법"): the former text of the law in context. Rewritten as "구 동법" so the
# citation parser resolves it like 동법 (the law cited just before) and the "구 " before it marks it former.
_FORMER_SAME_LAW = re.compile(r"(?<![가-힣])구\s*법(?![가-힣])")
_FORMER_BEFORE = re.compile(r"(?<![가-힣])구\s*$")
_FORMER_BRACKETED = re.compile(r"[「｢『]\s*구\s")
_CONTINUATION = re.compile(r"제|같은|동")  # a citation that names no law of its own
# The end of a provision: a parenthesis right after it annotates it ("(현행 제4조 참조)", "(정의)").
_PROVISION_END = re.compile(
    r"(?:제\s*\d+\s*(?:조(?:의\s*\d+)?|항|호(?:의\s*\d+)?)|[가-하]\s*목|[\u2460-\u2473\u3251-\u325f])\s*$"
)
_VERSION_NOTE = re.compile(r"개정되기\s*전|전의\s*것|폐지되기\s*전")


def _annotations(text: str) -> tuple[str, list[tuple[int, str]]]:
    """`text` without the parentheses that follow a provision, and those notes as (position in the result, text).

    Parentheses elsewhere stay: after a law name they are its version note, which the citation parser reads.
    A parenthesis holding only a number stays too: "법인령§81③(2)" is NTS shorthand for 제2호.
    """
    out: list[str] = []
    notes: list[tuple[int, str]] = []
    i = 0
    while i < len(text):
        close = _matching_paren(text, i) if text[i] == "(" else -1
        content = text[i + 1 : close] if close > 0 else ""
        if close > 0 and _PROVISION_END.search("".join(out)) and not content.strip().isdigit():
            notes.append((len("".join(out)), content))
            out.append(" ")
            i = close + 1
            continue
        out.append(text[i])
        i += 1
    return "".join(out), notes


def _matching_paren(text: str, start: int) -> int:
    depth = 0
    for j in range(start, len(text)):
        depth += {"(": 1, ")": -1}.get(text[j], 0)
        if depth == 0:
            return j
    return -1


def _explicitly_former(text: str, citation: Citation) -> bool:
    start, end = citation.span
    return bool(_FORMER_BEFORE.search(text, 0, start) or _FORMER_BRACKETED.match(text[start:end]))


def _main_references(text: str, default_law: str | None, version_notes: list[int]) -> list[tuple[int, Citation, bool]]:
    """(position, citation, former) for the citations outside the annotating parentheses.

    `version_notes`: where a "(…개정되기 전의 것)" note followed a provision; that provision is a former text.
    """
    out: list[tuple[int, Citation, bool]] = []
    previous: tuple[Citation, bool] | None = None
    for citation in find_citations(text, default_law=default_law):
        end = citation.span[1]
        former = _explicitly_former(text, citation) or any(
            pos >= end and not text[end:pos].strip() for pos in version_notes
        )
        continues = _CONTINUATION.match(text, citation.span[0]) is not None
        if not former and continues and previous is not None and previous[0].law == citation.law:
            former = previous[1]
        out.append((citation.span[0], citation, former))
        previous = (citation, former)
    return out


def _former_same_law(text: str, default_law: str | None) -> str:
    """ "구법 제41조" -> "구 동법 제41조" where a law is in context (the default law or one cited before it); without
    one the law cannot be known and "구법" stays as written (kept as a former reference to a law named "구법")."""

    def rewrite(m: re.Match[str]) -> str:
        if default_law or find_citations(text[: m.start()]):
            return "구 동법"
        return m.group(0)

    return _FORMER_SAME_LAW.sub(rewrite, text)


def parse_references(text: str | None, default_law: str | None = None) -> list[ArticleRef]:
    """Every article citation in `text`, in order, without duplicates.

    The project's one citation parser (`slm_datagen.taxlaw.citations`) does the reading, so the references stored
    here are the ones the build stage later checks answers against.
    """
    if not text:
        return []
    main, notes = _annotations(_former_same_law(_SECTION_TITLE.sub(" ", text), default_law))
    is_version = [_VERSION_NOTE.search(note) is not None and not note.lstrip().startswith("현행") for _, note in notes]
    found = _main_references(main, default_law, [pos for (pos, _), version in zip(notes, is_version) if version])
    for (position, note), version in zip(notes, is_version):
        if version:
            continue
        before = [item[1] for item in found if item[1].span[1] <= position]
        anchor = max(before, key=lambda citation: citation.span[1], default=None)
        law = anchor.law if anchor else default_law
        article, branch = (anchor.article, anchor.branch) if anchor else (None, None)
        for citation in find_citations(note, default_law=law, default_article=article, default_branch=branch):
            # Just after the anchor, before whatever follows the note; a note's citation is current unless it says 구.
            found.append((position, citation, _explicitly_former(note, citation)))
    found.sort(key=lambda item: item[0])  # stable: a note's citations stay in their own order
    refs: list[ArticleRef] = []
    for _, citation, former in found:
        ref = ArticleRef(
            law=citation.law,
            article=citation.article,
            branch=citation.branch,
            paragraph=citation.paragraph,
            item=citation.item,
            subitem=citation.subitem,
            former=former or citation.law == "구법",
        )
        if ref not in refs:
            refs.append(ref)
    return refs


def split_related_laws(text: str | None) -> list[str]:
    """A 참조조문 / 관련법령 string -> its entries as written, without issue markers and section titles."""
    if not text:
        return []
    if "【" in text:
        # Casebook style: each entry ends with its 【title】.
        entries = re.findall(r"[^【】]+?【[^】]*】", text)
        rest = _SECTION_TITLE.sub("", text[sum(len(e) for e in entries) :])
        parts = [_SECTION_TITLE.sub("", e) for e in entries] + ([rest] if rest.strip() else [])
    else:
        parts = re.split(r"\s/\s|\n|(?=\[\d+\])", text)
    out = []
    for part in parts:
        part = re.sub(r"\s+", " ", _ISSUE_MARK.sub("", part)).strip(" ,;/")
        if part and part not in out:
            out.append(part)
    return out
