"""The offline teacher: deterministic Korean Q&A built from the chunk's own text, with no network and no cost.

It never invents law. From a statute article it asks what the article provides and answers by restating the
article's 항/호/목 in the polite style, ending with "(근거: 소득세법 제12조)". From an interpretation or ruling it
turns the official 쟁점 into a question and the official 답변요지 into the answer, citing the 관련법령. From a
precedent it asks about the 판시사항 and answers with the 판결요지. The `layperson` variant simplifies the legal
phrasing, gives an example taken from the article's own items and points to the tax office for a concrete case.

`offline_pair(chunk, audience, style)` is a pure function; it returns None when the chunk has nothing to ask about
(an empty or deleted article, a calculation request: the offline teacher does not do arithmetic).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slm_datagen.dataset.conclusion import yes_no_lead
from slm_datagen.distill.korean import (
    particle,
    polite_from_nominal,
    polite_from_plain,
    question_from_issue,
    split_sentences,
    topic,
)
from slm_datagen.distill.schema import CitationDraft, PairDraft
from slm_forest.records import Chunk

OFFLINE_MODEL = "offline-v1"
OFFLINE_VERSION = "offline@1"

_CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫⑬⑭⑮⑯⑰⑱⑲⑳"
_HEADER_RE = re.compile(
    r"^\s*(?:(?P<law>[가-힣·ㆍ ]+?법(?:\s*시행령|\s*시행규칙)?)\s+)?제(?P<no>\d+)조(?:의(?P<branch>\d+))?\s*(?:\((?P<title>[^)]*)\))?\s*"
)
_PARAGRAPH_RE = re.compile(rf"^\s*(?P<mark>[{_CIRCLED}])\s*")
_ITEM_RE = re.compile(r"^\s*(?P<no>\d+(?:의\d+)?)\.\s*")
_SUBITEM_RE = re.compile(r"^\s*(?P<no>[가-힣])\.\s*")
_DELETED_RE = re.compile(r"^\s*삭제\s*(?:<[^>]*>)?\s*$")
_AMENDMENT_RE = re.compile(
    r"\s*(?:<(?:개정|신설|전문개정|본조신설|제목개정|종전)[^>]*>|\[(?:전문개정|본조신설|제목개정|종전|시행일)[^\]]*\])"
)
_LAW_REF_RE = re.compile(
    r"(?P<law>[가-힣][가-힣·ㆍ･・ ]*?(?:법|법률|조약)(?:\s*시행령|\s*시행규칙)?)\s*제\s*(?P<no>\d+)\s*조(?:\s*의\s*(?P<branch>\d+))?"
)


# ------------------------------------------------------------------------------------------------ statute outline
@dataclass
class Item:
    no: str
    text: str
    subitems: list[tuple[str, str]] = field(default_factory=list)


@dataclass
class Paragraph:
    no: int | None  # None: the article body before any ①
    text: str
    items: list[Item] = field(default_factory=list)


@dataclass
class ArticleOutline:
    title: str
    paragraphs: list[Paragraph]


def _clean(text: str) -> str:
    text = _AMENDMENT_RE.sub("", text)
    return re.sub(r"[ \t\u3000]+", " ", text).strip()


def article_title(chunk: Chunk) -> str:
    """조문제목: from meta, from the 'N조(제목)' header in the text or the title, else the chunk title."""
    for key in ("article_title", "조문제목"):
        value = chunk.meta.get(key)
        if isinstance(value, str) and value.strip():
            return value.strip()
    for source in (chunk.text.lstrip().split("\n", 1)[0], chunk.title):
        match = _HEADER_RE.match(source or "")
        if match and match.group("title"):
            return match.group("title").strip()
    title = chunk.title or ""
    if chunk.citation and title.startswith(chunk.citation):
        title = title[len(chunk.citation) :].strip(" ()")
    return title.strip() or chunk.citation


def parse_article(text: str) -> ArticleOutline:
    """Split statute text into 항 → 호 → 목, dropping amendment tags and the '제N조(제목)' header."""
    title = ""
    paragraphs: list[Paragraph] = []
    current: Paragraph | None = None
    for raw in text.splitlines():
        line = _clean(raw)
        if not line:
            continue
        header = _HEADER_RE.match(line)
        if header and header.group("title") is not None and not paragraphs and current is None:
            title = header.group("title").strip()
            line = line[header.end() :].strip()
            if not line:
                continue
        if (m := _PARAGRAPH_RE.match(line)) is not None:
            current = Paragraph(_CIRCLED.index(m.group("mark")) + 1, line[m.end() :].strip())
            paragraphs.append(current)
            continue
        if current is None:
            current = Paragraph(None, "")
            paragraphs.append(current)
        if (m := _ITEM_RE.match(line)) is not None:
            current.items.append(Item(m.group("no"), line[m.end() :].strip()))
            continue
        if (m := _SUBITEM_RE.match(line)) is not None and current.items:
            current.items[-1].subitems.append((m.group("no"), line[m.end() :].strip()))
            continue
        if current.items:
            last = current.items[-1]
            if last.subitems:
                no, sub = last.subitems[-1]
                last.subitems[-1] = (no, f"{sub} {line}".strip())
            else:
                last.text = f"{last.text} {line}".strip()
        else:
            current.text = f"{current.text} {line}".strip()
    for paragraph in paragraphs:  # repealed 호/목 ("삭제 <2010.12.27>") say nothing about the law in force
        for item in paragraph.items:
            item.subitems = [(no, text) for no, text in item.subitems if not _DELETED_RE.match(text)]
        paragraph.items = [item for item in paragraph.items if not (_DELETED_RE.match(item.text) and not item.subitems)]
        if _DELETED_RE.match(paragraph.text):
            paragraph.text = ""
    return ArticleOutline(title, [p for p in paragraphs if p.text or p.items])


def _sentences_polite(text: str) -> str:
    """Every '…다.' sentence of statute text in the polite style; noun phrases are left as they are."""
    parts = split_sentences(text)
    return " ".join(polite_from_plain(p) if p.endswith("다.") or p.endswith("다") else p for p in parts if p)


_PLAIN_WORDS: list[tuple[str, str]] = [
    (r"대통령령으로 정하는", "시행령에서 정하는"),
    (r"대통령령으로 정한다", "시행령에서 정한다"),
    (r"기획재정부령으로 정하는", "시행규칙에서 정하는"),
    (r"다음 각 호의 어느 하나에 해당하는", "아래 항목 중 하나에 해당하는"),
    (r"다음 각 호의 사유에 모두 해당하는", "아래 항목에 모두 해당하는"),
    (r"다음 각 호의 구분에 따른다", "아래 항목에 따라 구분된다"),
    (r"다음 각 호의", "아래 항목의"),
    (r"다음 각 목의 어느 하나에 해당하는", "아래 세부 항목 중 하나에 해당하는"),
    (r"다음 각 목의", "아래 세부 항목의"),
    (r"각 호", "각 항목"),
    (r"그러하지 아니하다", "그렇지 않다"),
    (r"하지 아니한다", "하지 않는다"),
    (r"하지 아니하는", "하지 않는"),
    (r"아니한다", "않는다"),
    (r"아니하고", "않고"),
    (r"아니하거나", "않거나"),
    (r"아니하는", "않는"),
    (r"아니한", "않은"),
    (r"하여야 한다", "해야 한다"),
    (r"하여야 하며", "해야 하며"),
    (r"하여야", "해야"),
    (r"에 대해서는", "에는"),
    (r"ㆍ", "·"),
]


def plain_language(text: str) -> str:
    """Statute phrasing in everyday words: drops '(이하 …이라 한다)' definitions and 한자 glosses."""
    text = re.sub(r"\(이하[^()]*\)", "", text)
    text = re.sub(r"\([\u4e00-\u9fff]+\)", "", text)
    for pattern, plain in _PLAIN_WORDS:
        text = re.sub(pattern, plain, text)
    return re.sub(r"\s{2,}", " ", text).strip()


def _article_citation(chunk: Chunk) -> str:
    if chunk.law_name and chunk.article_no is not None:
        branch = f"의{chunk.article_branch}" if chunk.article_branch else ""
        return f"{chunk.law_name} 제{chunk.article_no}조{branch}"
    return chunk.citation


def _citation_draft(label: str) -> CitationDraft | None:
    match = _LAW_REF_RE.search(label)
    if not match:
        return None
    law = re.sub(r"\s+", " ", match.group("law")).strip()
    article = f"제{match.group('no')}조" + (f"의{match.group('branch')}" if match.group("branch") else "")
    return CitationDraft(law=law, article=article)


# The casebook's shorthand: 법인법§45④, 소득령§155②, 상증법§45의5 …
_SHORT_LAWS = {
    "국기법": "국세기본법",
    "국기령": "국세기본법 시행령",
    "국징법": "국세징수법",
    "소득법": "소득세법",
    "소득령": "소득세법 시행령",
    "법인법": "법인세법",
    "법인령": "법인세법 시행령",
    "부가법": "부가가치세법",
    "부가령": "부가가치세법 시행령",
    "상증법": "상속세 및 증여세법",
    "상증령": "상속세 및 증여세법 시행령",
    "조특법": "조세특례제한법",
    "조특령": "조세특례제한법 시행령",
    "종부법": "종합부동산세법",
    "종부령": "종합부동산세법 시행령",
}
_SHORT_REF_RE = re.compile(r"(?P<law>" + "|".join(_SHORT_LAWS) + r")\s*§\s*(?P<no>\d+)(?:의(?P<branch>\d+))?")


def related_law_citations(related: list[str]) -> list[CitationDraft]:
    """'국세기본법 제26조의2 【국세의 부과제척기간】 국세기본법 시행령 제12조의3 【…】' -> two citations, in order.

    The casebook's shorthand ('법인법§45④') is expanded to the full law name ('법인세법 제45조').
    """
    found: list[CitationDraft] = []
    for entry in related:
        entry = (
            re.sub(r"【[^】]*】|\[[^\]]*\]", " ", entry)
            .replace("｢", "")
            .replace("｣", "")
            .replace("「", "")
            .replace("」", "")
        )
        # The casebook writes the half-width ･ (PDF extraction) where Korean text uses the middle dot ·.
        matches = [
            (m.start(), re.sub(r"\s+", " ", m.group("law")).strip().replace("･", "·").replace("・", "·"), m)
            for m in _LAW_REF_RE.finditer(entry)
        ]
        matches += [(m.start(), _SHORT_LAWS[m.group("law")], m) for m in _SHORT_REF_RE.finditer(entry)]
        for _, law, match in sorted(matches, key=lambda item: item[0]):
            article = f"제{match.group('no')}조" + (f"의{match.group('branch')}" if match.group("branch") else "")
            draft = CitationDraft(law=law, article=article)
            if draft not in found:
                found.append(draft)
    return found


def _basis(citations: list[CitationDraft], fallback: str) -> str:
    labels = [c.label() for c in citations] or [fallback]
    return f"(근거: {', '.join(labels)})"


def _span_label(paragraphs: list[Paragraph]) -> str:
    """Which part of a long article a chunk holds: ' 제2항부터 제4항까지', ' 제3호', ' 제3호 마목부터 하목까지'."""
    numbers = [p.no for p in paragraphs if p.no is not None]
    if len(numbers) > 1:
        joiner = " 및 " if len(numbers) == 2 else "부터 "
        return f" 제{numbers[0]}항{joiner}제{numbers[-1]}항" + ("까지" if len(numbers) > 2 else "")
    head = f" 제{numbers[0]}항" if numbers else ""
    items = [item for p in paragraphs for item in p.items]
    if len(items) > 1:
        joiner = " 및 " if len(items) == 2 else "부터 "
        return f"{head} 제{items[0].no}호{joiner}제{items[-1].no}호" + ("까지" if len(items) > 2 else "")
    if len(items) == 1:
        subs = items[0].subitems
        if len(subs) > 1:
            return f"{head} 제{items[0].no}호 {subs[0][0]}목부터 {subs[-1][0]}목까지"
        return f"{head} 제{items[0].no}호" + (f" {subs[0][0]}목" if subs else "")
    return head


def _is_part(chunk: Chunk) -> bool:
    return chunk.position > 0 or int(chunk.meta.get("chunks_in_doc", 1) or 1) > 1


# ------------------------------------------------------------------------------------------------------ statutes
def _statute_expert(chunk: Chunk) -> PairDraft | None:
    outline = parse_article(chunk.text)
    if not outline.paragraphs:
        return None
    title = outline.title or article_title(chunk)
    citation = _article_citation(chunk)
    span = _span_label(outline.paragraphs) if _is_part(chunk) else ""
    head = f"{citation}({title})" if title and title != citation else citation
    question = f"{head}{span}에서는 어떤 내용을 규정하고 있으며, 그 요건과 효과는 무엇인가요?"
    lines = [f"{topic(head + span)} 다음과 같이 규정하고 있습니다."]
    for paragraph in outline.paragraphs:
        label = f"제{paragraph.no}항: " if paragraph.no is not None else ""
        if paragraph.text:
            lines.append(f"- {label}{_sentences_polite(paragraph.text)}")
        elif label:
            lines.append(f"- {label}")
        for item in paragraph.items:
            lines.append(f"  {item.no}. {_sentences_polite(item.text)}")
            for sub_no, sub_text in item.subitems:
                lines.append(f"    {sub_no}. {_sentences_polite(sub_text)}")
    if "대통령령" in chunk.text:
        lines.append("세부 기준 중 '대통령령으로 정하는' 부분은 같은 법 시행령에서 구체적으로 정합니다.")
    cite = CitationDraft(
        law=chunk.law_name or citation, article=citation.replace(chunk.law_name or "", "").strip() or citation
    )
    answer = "\n".join(lines) + f"\n\n(근거: {citation})"
    return PairDraft(question=question, answer=answer, audience="expert", citations=[cite])


def _statute_layperson(chunk: Chunk) -> PairDraft | None:
    outline = parse_article(chunk.text)
    if not outline.paragraphs:
        return None
    title = outline.title or article_title(chunk)
    citation = _article_citation(chunk)
    law = chunk.law_name or citation
    name = f"'{title}'" if title and title != citation else citation
    span = _span_label(outline.paragraphs) if _is_part(chunk) else ""
    question = (
        f"{law}의 {name} 규정({citation}{span})은 쉽게 말해 어떤 내용인가요? 제게 어떤 의미가 있는지 알려 주세요."
    )
    lines = [
        f"쉽게 말해, {citation}{particle(citation, '은', '는')} {title or '이 조문'}에 관한 규정으로, 핵심은 다음과 같습니다."
    ]
    example: str | None = None
    for paragraph in outline.paragraphs:
        if paragraph.text:
            lines.append(f"- {_sentences_polite(plain_language(paragraph.text))}")
        shown = paragraph.items[:6]
        for item in shown:
            lines.append(f"  · {_sentences_polite(plain_language(item.text))}")
            for _, sub_text in item.subitems[:4]:
                lines.append(f"    - {_sentences_polite(plain_language(sub_text))}")
            if len(item.subitems) > 4:
                lines.append(f"    - 그 밖에 {len(item.subitems) - 4}개 세부 항목이 더 있습니다.")
            if example is None and not item.text.endswith("다."):
                example = plain_language(item.subitems[0][1] if item.subitems else item.text)
        if len(paragraph.items) > len(shown):
            lines.append(f"  · 그 밖에 {len(paragraph.items) - len(shown)}개 항목이 더 있습니다.")
    if example:
        example = re.sub(r"[:：].*$", "", example).strip().rstrip(".")
        if example and len(example) <= 160:
            lines.append(f"예를 들어 '{example}'{particle(example, '이', '가')} 이 규정의 항목에 해당합니다.")
    lines.append(
        "실제 적용 여부는 개별 사실관계에 따라 달라질 수 있으니, 구체적인 사안은 관할 세무서나 세무 전문가에게 확인하세요."
    )
    cite = CitationDraft(law=law, article=citation.replace(law, "").strip() or citation)
    answer = "\n".join(lines) + f"\n\n(근거: {citation})"
    return PairDraft(question=question, answer=answer, audience="layperson", citations=[cite])


# ----------------------------------------------------------------------------------------- rulings / precedents
_SECTION_RE = re.compile(
    r"^\s*(?:#+\s*)?(?:\[|【)?\s*(쟁점|질의요지|질의|판시사항|답변요지|회답|회신|판결요지|관련법령|참조조문)\s*(?:\]|】)?\s*[:：]?\s*",
    re.M,
)


def _sections(text: str) -> dict[str, str]:
    """'쟁점: …\n답변요지: …' (or markdown '## 판시사항') -> {'쟁점': …, '답변요지': …}."""
    found: dict[str, str] = {}
    matches = list(_SECTION_RE.finditer(text))
    for index, match in enumerate(matches):
        end = matches[index + 1].start() if index + 1 < len(matches) else len(text)
        found.setdefault(match.group(1), text[match.end() : end].strip())
    return found


def _issue_and_answer(chunk: Chunk) -> tuple[str, str] | None:
    sections = _sections(chunk.text)
    issue = (
        chunk.question
        or sections.get("쟁점")
        or sections.get("질의요지")
        or sections.get("질의")
        or sections.get("판시사항")
    )
    answer = (
        chunk.answer
        or sections.get("답변요지")
        or sections.get("회답")
        or sections.get("회신")
        or sections.get("판결요지")
    )
    if not issue or not answer:
        return None
    return re.sub(r"\s+", " ", issue).strip(), answer.strip()


def _answer_sentences(answer: str) -> tuple[str, str]:
    """The official answer in the polite style, and a footnote ('＊ 현행 10년 …') kept apart."""
    main, note = answer, ""
    parts = re.split(r"\s+[＊*※]\s*", answer, maxsplit=1)
    if len(parts) == 2 and parts[0].strip():
        main, note = parts[0], parts[1].strip()
    sentences = [s for s in re.split(r"(?<=[.다임음함])\s*\n+\s*|(?<=다\.)\s+", main.strip()) if s.strip()]
    polite = " ".join(polite_from_nominal(re.sub(r"\s+", " ", s)) for s in sentences)
    return polite, note


def _ruling(chunk: Chunk, audience: str) -> PairDraft | None:
    found = _issue_and_answer(chunk)
    if found is None:
        return None
    issue, official = found
    if "/" in issue and chunk.kind == "precedent":
        # Several 판시사항: ask about the one the court decided yes/no on (marked 소극/적극), else the first.
        issues = [part.strip() for part in issue.split("/") if part.strip()]
        decided = [part for part in issues if re.search(r"\((소극|적극)\)\s*$", part)]
        issue = (decided or issues)[-1 if decided else 0]
    verdict = re.search(r"\((소극|적극)\)\s*$", issue)
    question = question_from_issue(issue)
    polite, note = _answer_sentences(official)
    citations = related_law_citations(chunk.related_laws)
    if not citations:
        citations = related_law_citations([official])
    source = chunk.citation or chunk.title
    date = chunk.meta.get("회신일") or chunk.meta.get("reply_date") or chunk.meta.get("decision_date") or ""
    if verdict:  # the court's own 소극/적극 mark decides, never a guess from the wording
        lead = "아니요. " if verdict.group(1) == "소극" else "네. "
    else:
        # The lead is read from the official answer's conclusion, relative to what the question asks: "…과세되나요?"
        # answered by "…면제되는 것임" is 아니요; an answer that depends on the case or decides nothing gets no lead.
        lead = yes_no_lead(question, official) if chunk.kind != "precedent" else ""
    if chunk.kind == "precedent":
        origin = f"법원은 {source} 판결에서 이렇게 판단하였습니다."
    else:
        origin = f"국세청은 {source}{f'({date})' if date else ''}에서 이렇게 회신하였습니다."
    laws = ", ".join(c.label() for c in citations)
    basis = _basis(citations, source)
    if audience == "expert":
        body = [f"{lead}{polite}"]
        if note:
            body.append(f"※ 참고: {note}")
        body.append(origin + (f" 관련 법령은 {laws}입니다." if laws else ""))
        return PairDraft(
            question=question, answer="\n\n".join(body) + f"\n\n{basis}", audience="expert", citations=citations
        )
    plain = plain_language(polite)
    lay_question = f"세금 문제로 궁금한 점이 있습니다. {question}"
    verdict_word = lead.strip(" .")
    body = [f"결론부터 말씀드리면 {verdict_word}. {plain}" if verdict_word else f"결론부터 말씀드리면, {plain}"]
    if note:
        body.append(f"참고: {note}")
    kind = "판례" if chunk.kind == "precedent" else "국세청 해석"
    body.append(
        f"이 내용은 {kind}({source})에 따른 것{('이며, 관련 규정은 ' + laws + '입니다') if laws else '입니다'}. "
        "다만 구체적인 사실관계가 다르면 결론이 달라질 수 있으니, 실제 신고 전에는 관할 세무서나 세무 전문가와 상담하세요."
    )
    return PairDraft(
        question=lay_question, answer="\n\n".join(body) + f"\n\n{basis}", audience="layperson", citations=citations
    )


def _precedent_fallback(chunk: Chunk, audience: str) -> PairDraft | None:
    """A precedent chunk without 판시사항/판결요지 (a later piece of the 판례내용): ask what the court held there."""
    text = re.sub(r"\s+", " ", chunk.text).strip()
    sentences = [s for s in split_sentences(text) if s.endswith("다.")]
    if not sentences:
        return None
    held = " ".join(polite_from_plain(s) for s in sentences[:3])
    citations = related_law_citations(chunk.related_laws)
    source = chunk.citation or chunk.title
    if audience == "expert":
        question = f"{source} 판결에서 법원은 이 부분에 대해 어떻게 판단했나요?"
        answer = f"{source} 판결은 다음과 같이 판단하였습니다. {held}"
    else:
        question = f"{source} 판결의 이 부분을 쉽게 설명해 주세요."
        answer = f"쉽게 말해, 법원은 이렇게 보았습니다. {plain_language(held)}"
    return PairDraft(
        question=question, answer=f"{answer}\n\n{_basis(citations, source)}", audience=audience, citations=citations
    )  # type: ignore[arg-type]


# ------------------------------------------------------------------------------------------------------- entry
def offline_pair(chunk: Chunk, audience: str, style: str = "explain") -> PairDraft | None:
    """One grounded Q&A pair for `chunk`, or None when the offline teacher has nothing truthful to say."""
    if style != "explain":
        return None
    if chunk.kind == "statute_article":
        return _statute_expert(chunk) if audience == "expert" else _statute_layperson(chunk)
    pair = _ruling(chunk, audience)
    if pair is None and chunk.kind == "precedent":
        pair = _precedent_fallback(chunk, audience)
    return pair


__all__ = [
    "OFFLINE_MODEL",
    "OFFLINE_VERSION",
    "ArticleOutline",
    "article_title",
    "offline_pair",
    "parse_article",
    "plain_language",
    "related_law_citations",
]
