"""Korean statute citations in free text -> typed records.

    find_citations("「상속세 및 증여세법」 제53조 제1항 및 같은 법 제56조")
      -> [Citation(law="상속세 및 증여세법", article=53, paragraph=1, ...), Citation(law=..., article=56, ...)]

Forms handled:
* a law name then an article: "소득세법 제12조제3호", "「상속세 및 증여세법」 제53조 제1항" (also in the half-width
  ｢｣ of the NTS casebook, "｢소득세법｣ 제119조제7호", or in 『』), "국세기본법 제26조의2",
  "법인세법 시행령 제19조제1항제2호가목", "국세징수법 제107조 【납세증명서의 제출】", circled paragraphs
  "제26조 ①", a version note between name and article ("구 소득세법(2020. 12. 29. 개정되기 전의 것) 제3조");
* NTS shorthand: "조특법 제64조", "법인법§45④", "법인령§81③(2)나" (§ article, circled 항, (n) 호, 목 letter);
* references: "같은 법"/"동법" (the law of the previous citation), "같은 법 시행령", "같은 조 제2항", "법 제26조" /
  "영 제3조" / "이 법" (relative to `default_law`: "법" is the Act, "영" its 시행령);
* bare provisions: "제13조", "제1항 또는 제2항", "제1호부터 제3호까지" — a provision chained to the previous citation by
  및/또는/,/부터/까지 continues it; otherwise it belongs to `default_law` (and `default_article` for a bare 항), or
  failing that to the previous citation.

Not citations: chapter and section headings ("제2장", "제3절"), document numbers ("제2024-12호", "법률 제14388호"),
ordinals ("제1회"). Whether a cited article exists is checked elsewhere ("소득세법 제999조" parses).

Spans index the input string; pass NFC text (the pipeline stores NFC).
"""

from __future__ import annotations

import re

from pydantic import BaseModel, ConfigDict

DECREE_SUFFIXES = ("시행령", "시행규칙")

# Official names (법제처 spelling and spacing) of the national and local tax laws. Each also has a 시행령 and most a
# 시행규칙; `OFFICIAL_LAW_NAMES` spells those out.
TAX_LAWS: tuple[str, ...] = (
    "국세기본법",
    "국세징수법",
    "조세특례제한법",
    "국제조세조정에 관한 법률",
    "조세범 처벌법",
    "조세범 처벌절차법",
    "소득세법",
    "법인세법",
    "상속세 및 증여세법",
    "부가가치세법",
    "개별소비세법",
    "교통ㆍ에너지ㆍ환경세법",
    "주세법",
    "인지세법",
    "증권거래세법",
    "교육세법",
    "농어촌특별세법",
    "종합부동산세법",
    "국세와 지방세의 조정 등에 관한 법률",
    "과세자료의 제출 및 관리에 관한 법률",
    "주류 면허 등에 관한 법률",
    "세무사법",
    "관세법",
    "지방세기본법",
    "지방세법",
    "지방세징수법",
    "지방세특례제한법",
)

# Non-tax laws that tax texts cite often. Listed so that names with spaces are recognised without 「」 brackets
# (a one-word name such as "주택법" is recognised anyway).
RELATED_LAWS: tuple[str, ...] = (
    "민법",
    "상법",
    "민사집행법",
    "주택법",
    "건축법",
    "농지법",
    "주택임대차보호법",
    "상가건물 임대차보호법",
    "공익사업을 위한 토지 등의 취득 및 보상에 관한 법률",
    "국토의 계획 및 이용에 관한 법률",
    "부동산 가격공시에 관한 법률",
    "부동산 거래신고 등에 관한 법률",
    "감정평가 및 감정평가사에 관한 법률",
    "도시 및 주거환경정비법",
    "빈집 및 소규모주택 정비에 관한 특례법",
    "민간임대주택에 관한 특별법",
    "공공주택 특별법",
    "자본시장과 금융투자업에 관한 법률",
    "금융실명거래 및 비밀보장에 관한 법률",
    "주식회사 등의 외부감사에 관한 법률",
    "채무자 회생 및 파산에 관한 법률",
    "독점규제 및 공정거래에 관한 법률",
    "근로자퇴직급여 보장법",
    "중소기업기본법",
    "벤처기업육성에 관한 특별법",
    "외국인투자 촉진법",
    "신에너지 및 재생에너지 개발ㆍ이용ㆍ보급 촉진법",
    "산업교육진흥 및 산학연협력촉진에 관한 법률",
    "공익법인의 설립ㆍ운영에 관한 법률",
)

# Shorthand used by the NTS (세법해석 사례집, 심판례) and in answers -> official name.
LAW_ABBREVIATIONS: dict[str, str] = {
    "국기법": "국세기본법",
    "국기령": "국세기본법 시행령",
    "국기칙": "국세기본법 시행규칙",
    "국징법": "국세징수법",
    "국징령": "국세징수법 시행령",
    "조특법": "조세특례제한법",
    "조특령": "조세특례제한법 시행령",
    "조특칙": "조세특례제한법 시행규칙",
    "국조법": "국제조세조정에 관한 법률",
    "국조령": "국제조세조정에 관한 법률 시행령",
    "소득법": "소득세법",
    "소법": "소득세법",
    "소득령": "소득세법 시행령",
    "소령": "소득세법 시행령",
    "소득칙": "소득세법 시행규칙",
    "법인법": "법인세법",
    "법인령": "법인세법 시행령",
    "법인칙": "법인세법 시행규칙",
    "상증법": "상속세 및 증여세법",
    "상증세법": "상속세 및 증여세법",
    "상속증여세법": "상속세 및 증여세법",
    "상증령": "상속세 및 증여세법 시행령",
    "상증칙": "상속세 및 증여세법 시행규칙",
    "부가법": "부가가치세법",
    "부가세법": "부가가치세법",
    "부가령": "부가가치세법 시행령",
    "부가칙": "부가가치세법 시행규칙",
    "종부법": "종합부동산세법",
    "종부세법": "종합부동산세법",
    "종부령": "종합부동산세법 시행령",
    "개소법": "개별소비세법",
    "개소세법": "개별소비세법",
    "조처법": "조세범 처벌법",
    "농특세법": "농어촌특별세법",
    "지기법": "지방세기본법",
    "지특법": "지방세특례제한법",
}

OFFICIAL_LAW_NAMES: frozenset[str] = frozenset(
    [*TAX_LAWS, *RELATED_LAWS] + [f"{law} {suffix}" for law in (*TAX_LAWS, *RELATED_LAWS) for suffix in DECREE_SUFFIXES]
)

# Middle-dot variants seen in statute text and in PDF extractions (U+318D is the official one).
_MIDDOTS = "ㆍ·･・‧"
_OFFICIAL_MIDDOT = "ㆍ"
_CIRCLED = "\u2460-\u2473\u3251-\u325f"  # ①..⑳, ㉑..㉟
# Brackets around a law name: 「」 (statute text), the half-width ｢｣ (U+FF62/U+FF63) the NTS casebook uses, and 『』.
# Open and close are not paired up because PDF extractions mix them ("｢조세특례제한법 시행령」 제23조").
_OPEN_BRACKETS = "「｢『"
_CLOSE_BRACKETS = "」｣』"
_SUBITEM_LETTERS = "가나다라마바사아자차카타파하"
# Words ending in 법 that are not law names ("방법 제3조" never cites a law).
_NOT_LAW_WORDS = frozenset(
    {"방법", "위법", "적법", "불법", "편법", "세법", "입법", "사법", "해당법", "관계법", "관련법", "개별법", "본법"}
)


def _squash(name: str) -> str:
    """Comparison key: no spaces, one middle dot."""
    out = re.sub(r"\s+", "", name)
    return re.sub(f"[{_MIDDOTS}]", _OFFICIAL_MIDDOT, out)


_OFFICIAL_BY_KEY: dict[str, str] = {_squash(name): name for name in (*TAX_LAWS, *RELATED_LAWS)}
_ABBREVIATION_BY_KEY: dict[str, str] = {_squash(k): v for k, v in LAW_ABBREVIATIONS.items()}


def split_decree(name: str) -> tuple[str, str | None]:
    """ "소득세법 시행령" -> ("소득세법", "시행령"); "소득세법" -> ("소득세법", None)."""
    text = name.strip()
    for suffix in DECREE_SUFFIXES:
        if text.endswith(suffix):
            return text[: -len(suffix)].strip(), suffix
    return text, None


def normalize_law_name(name: str) -> str:
    """Official spelling of a law name: strip 「」 (or ｢｣, 『』), collapse spaces, unify the middle dot, expand NTS
    shorthand ("상증령" -> "상속세 및 증여세법 시행령"), fix a doubled 법 ("조세특례제한법법"), and put one space before
    시행령/시행규칙. Unknown names come back cleaned but otherwise as written."""
    text = re.sub(rf"[{_OPEN_BRACKETS}{_CLOSE_BRACKETS}\"“”‘’']", "", name)
    text = re.sub(f"[{_MIDDOTS}]", _OFFICIAL_MIDDOT, " ".join(text.split()))
    if text.startswith("구 "):  # "구 소득세법": the former text of the same law
        text = text[2:]
    if _squash(text) in _ABBREVIATION_BY_KEY:
        return _ABBREVIATION_BY_KEY[_squash(text)]
    base, suffix = split_decree(text)
    key = _squash(base)
    official = _OFFICIAL_BY_KEY.get(key) or _ABBREVIATION_BY_KEY.get(key)
    if official is None and key.endswith("법법") and key[:-1] in _OFFICIAL_BY_KEY:
        official = _OFFICIAL_BY_KEY[key[:-1]]
    if official is None:
        official = base
    if suffix:
        official_base, _ = split_decree(official)
        return f"{official_base} {suffix}"
    return official


def is_known_law(name: str) -> bool:
    return normalize_law_name(name) in OFFICIAL_LAW_NAMES


def base_law(name: str) -> str:
    """The Act a decree belongs to: "소득세법 시행령" -> "소득세법"."""
    return split_decree(name)[0]


class Citation(BaseModel):
    """One cited provision. `span` is (start, end) of the citation text in the input, end exclusive."""

    model_config = ConfigDict(frozen=True)

    law: str
    article: int  # 조
    branch: int | None = None  # 가지번호: 제26조의2 -> 2
    paragraph: int | None = None  # 항
    item: int | None = None  # 호
    item_branch: int | None = None  # 제2호의2 -> 2
    subitem: str | None = None  # 목: "가", "나", ...
    span: tuple[int, int]

    @property
    def label(self) -> str:
        return format_citation(self)


def format_citation(c: Citation) -> str:
    """ "소득세법 제12조 제3호", "국세기본법 제26조의2 제1항", "법인세법 시행령 제19조 제1항 제2호 가목"."""
    out = f"{c.law} 제{c.article}조"
    if c.branch:
        out += f"의{c.branch}"
    if c.paragraph:
        out += f" 제{c.paragraph}항"
    if c.item:
        out += f" 제{c.item}호" + (f"의{c.item_branch}" if c.item_branch else "")
    if c.subitem:
        out += f" {c.subitem}목"
    return out


# ---------------------------------------------------------------------------------------------------------------
# The scanner
# ---------------------------------------------------------------------------------------------------------------


def _flexible(name: str) -> str:
    """Regex for a law name that tolerates any spacing and middle-dot variant."""
    parts = []
    for ch in name:
        if ch == " ":
            continue
        parts.append(f"[{_MIDDOTS}]" if ch in _MIDDOTS else re.escape(ch))
    return r"\s*".join(parts)


_KNOWN_NAMES = sorted({*TAX_LAWS, *RELATED_LAWS, *LAW_ABBREVIATIONS}, key=len, reverse=True)
_NOT_HANGUL_BEFORE = rf"(?<![가-힣{_MIDDOTS}])"

_LAW = (
    _NOT_HANGUL_BEFORE
    + rf"(?:[{_OPEN_BRACKETS}]\s*(?P<bracketed>[^{_CLOSE_BRACKETS}\n]{{1,80}}?)\s*[{_CLOSE_BRACKETS}]"
    + rf"|(?P<treaty>[가-힣]{{1,2}}\s*[{_MIDDOTS}\-]\s*[가-힣]{{1,6}}\s*조세조약)"
    + rf"|(?P<known>{'|'.join(_flexible(n) for n in _KNOWN_NAMES)})"
    + r"|(?P<ref>같은\s*법|동법|이\s*법|같은\s*영|동령|이\s*영|같은\s*규칙|시행령|시행규칙|법|영|규칙)"
    + rf"|(?P<generic>[가-힣][가-힣{_MIDDOTS}]*(?:법률|법|조약)))"
    + r"(?:\s*(?P<decree>시행령|시행규칙))?"
    # a version note between name and article: "구 소득세법(2020. 12. 29. 법률 제17757호로 개정되기 전의 것) 제3조"
    + r"(?:\s*\((?P<version>[^()\n]{0,80})\))?"
)


def _tail(p: str) -> str:
    """항, 호, 목 that may follow an article."""
    return (
        rf"(?:\s*제\s*(?P<{p}para>\d+)\s*항|[ \t]*(?P<{p}circ>[{_CIRCLED}]))?"
        rf"(?:\s*제\s*(?P<{p}item>\d+)\s*호(?:의(?P<{p}itbr>\d+))?)?"
        rf"(?:\s*(?P<{p}sub>[{_SUBITEM_LETTERS}])\s*목)?"
    )


def _article(p: str, allow_missing_jo: bool = False) -> str:
    # "제45의4" (조 dropped, seen in the NTS casebook) only after a named law, where it cannot be anything else
    missing_jo = rf"|의(?P<{p}br2>\d+)" if allow_missing_jo else ""
    return rf"제\s*(?P<{p}art>\d+)\s*(?:조(?:의(?P<{p}br>\d+))?{missing_jo})" + _tail(p)


def _section(p: str) -> str:
    """NTS shorthand: §45④ = 제45조 제4항; §81③(2)나 = 제81조 제3항 제2호 나목."""
    return (
        rf"§\s*(?P<{p}art>\d+)(?:의(?P<{p}br>\d+))?(?P<{p}circ>[{_CIRCLED}])?"
        rf"(?:\((?P<{p}item>\d+)\))?(?:(?P<{p}sub>[{_SUBITEM_LETTERS}])(?![가-힣]))?"
    )


def _paragraph_required(p: str) -> str:
    return (
        rf"(?:제\s*(?P<{p}para>\d+)\s*항|(?P<{p}circ>[{_CIRCLED}]))"
        rf"(?:\s*제\s*(?P<{p}item>\d+)\s*호(?:의(?P<{p}itbr>\d+))?)?"
        rf"(?:\s*(?P<{p}sub>[{_SUBITEM_LETTERS}])\s*목)?"
    )


def _item_required(p: str) -> str:
    return rf"제\s*(?P<{p}item>\d+)\s*호(?:의(?P<{p}itbr>\d+))?(?:\s*(?P<{p}sub>[{_SUBITEM_LETTERS}])\s*목)?"


_CITATION_RE = re.compile(
    rf"(?P<law>{_LAW})\s*(?:{_article('l', allow_missing_jo=True)}|{_section('s')})"
    rf"|(?<![가-힣])(?P<same_article>같은\s*조|동조|이\s*조)\s*{_paragraph_required('a')}"
    rf"|(?<![가-힣])(?P<same_paragraph>같은\s*항|동항)\s*{_item_required('h')}"
    rf"|(?P<bare_article>{_article('b')})"
    rf"|(?P<bare_paragraph>{_paragraph_required('q')})"
    rf"|(?P<bare_item>{_item_required('i')})"
)

# A law named without an article ("「감정평가 및 감정평가사에 관한 법률」에 따른 … (같은 법 제29조") is what a later
# "같은 법" points to, so law names are tracked on their own too.
_LAW_MENTION_RE = re.compile(
    _NOT_HANGUL_BEFORE
    + rf"(?:[{_OPEN_BRACKETS}]\s*(?P<bracketed>[^{_CLOSE_BRACKETS}\n]{{1,80}}?)\s*[{_CLOSE_BRACKETS}]"
    + rf"|(?P<known>{'|'.join(_flexible(n) for n in _KNOWN_NAMES)}))"
    + r"(?:\s*(?P<decree>시행령|시행규칙))?"
)

# What may stand between two provisions for the second to continue the first ("제1항 또는 제2항", "제3조, 제13조",
# "제47조의2부터 제47조의4까지").
_CHAIN_GAP = re.compile(r"(?:\s|[,，ㆍ·･~∼\-]|및|또는|과|와|내지|부터|까지|이나|나)*")


# "…에 관한 법률 제3조" with a name this module does not know: the article belongs to that unknown law, so a bare
# article right after a word ending in 법/법률/조약 is dropped rather than pinned on the default or previous law.
_UNRESOLVED_LAW_BEFORE = re.compile(r"(?:법률|법|조약)\s*$")


def _circled_number(ch: str) -> int:
    code = ord(ch)
    if 0x2460 <= code <= 0x2473:
        return code - 0x2460 + 1
    return code - 0x3251 + 21


def _int(value: str | None) -> int | None:
    return int(value) if value else None


def _provision(m: re.Match[str], p: str) -> dict[str, object]:
    groups = m.groupdict()
    circled = groups.get(f"{p}circ")
    paragraph = _int(groups.get(f"{p}para")) or (_circled_number(circled) if circled else None)
    return {
        "article": _int(groups.get(f"{p}art")),
        "branch": _int(groups.get(f"{p}br")) or _int(groups.get(f"{p}br2")),
        "paragraph": paragraph,
        "item": _int(groups.get(f"{p}item")),
        "item_branch": _int(groups.get(f"{p}itbr")),
        "subitem": groups.get(f"{p}sub"),
    }


def _law_mentions(text: str) -> list[tuple[int, str]]:
    """(end offset, normalized name) of every 「bracketed」 or known law name in `text`."""
    out = []
    for m in _LAW_MENTION_RE.finditer(text):
        name = normalize_law_name(m["bracketed"] if m["bracketed"] is not None else m["known"])
        if m["decree"]:
            name = f"{base_law(name)} {m['decree']}"
        out.append((m.end(), name))
    return out


def _referenced_law(
    start: int, previous: Citation | None, mentions: list[tuple[int, str]], default_law: str | None
) -> str | None:
    """What "같은 법" / "동법" at `start` refers to: the latest law named or cited before it, else the default law."""
    best_end, best = (previous.span[1], previous.law) if previous is not None else (-1, default_law)
    for end, name in mentions:
        if best_end < end <= start:
            best_end, best = end, name
    return best


def _named_law(
    m: re.Match[str], previous: Citation | None, mentions: list[tuple[int, str]], default_law: str | None
) -> str | None:
    """The law a law-prefixed match names, resolving references; None if it cannot be resolved."""
    decree = m["decree"]
    if m["bracketed"] is not None:
        law = normalize_law_name(m["bracketed"])
    elif m["ref"] is not None:
        ref = "".join(m["ref"].split())
        if ref in ("같은법", "동법", "같은영", "동령", "같은규칙"):
            source = _referenced_law(m.start(), previous, mentions, default_law)
            suffix = {"같은영": " 시행령", "동령": " 시행령", "같은규칙": " 시행규칙"}.get(ref, "")
            law = f"{base_law(source)}{suffix}" if source else None
        elif ref in ("이법", "이영"):
            law = default_law
        elif ref == "법":
            law = base_law(default_law) if default_law else None
        elif ref in ("영", "시행령"):
            law = f"{base_law(default_law)} 시행령" if default_law else None
        else:  # 규칙, 시행규칙
            law = f"{base_law(default_law)} 시행규칙" if default_law else None
    else:
        raw = m["treaty"] or m["known"] or m["generic"]
        if m["generic"] is not None and "".join(raw.split()) in _NOT_LAW_WORDS:
            return None
        law = normalize_law_name(raw)
    if law and decree:
        law = f"{base_law(law)} {decree}"
    return law


def find_citations(
    text: str,
    default_law: str | None = None,
    default_article: int | None = None,
    default_branch: int | None = None,
) -> list[Citation]:
    """Every statute citation in `text`, left to right.

    default_law: the law the text belongs to (for a statute unit: its own law, e.g. "법인세법 시행령"); resolves
        "법"/"영"/"이 법" and bare "제N조".
    default_article / default_branch: the article the text belongs to; resolves a bare "제1항" that does not continue
        an earlier citation.
    """
    if default_law:
        default_law = normalize_law_name(default_law)
    mentions = _law_mentions(text)
    found: list[Citation] = []
    previous: Citation | None = None
    previous_end = -1  # end of the last match that produced a citation, for chaining
    for m in _CITATION_RE.finditer(text):
        chained = (
            previous is not None
            and previous_end >= 0
            and _CHAIN_GAP.fullmatch(text, previous_end, m.start()) is not None
        )
        fields: dict[str, object] | None = None
        law: str | None = None
        if m["law"] is not None:
            law = _named_law(m, previous, mentions, default_law)
            fields = _provision(m, "l") if m["lart"] is not None else _provision(m, "s")
        elif m["same_article"] is not None:
            context = previous or (
                Citation(law=default_law, article=default_article, branch=default_branch, span=(0, 0))
                if default_law and default_article
                else None
            )
            if context is not None:
                law = context.law
                fields = _provision(m, "a") | {"article": context.article, "branch": context.branch}
        elif m["same_paragraph"] is not None:
            if previous is not None and previous.paragraph is not None:
                law = previous.law
                fields = _provision(m, "h") | {
                    "article": previous.article,
                    "branch": previous.branch,
                    "paragraph": previous.paragraph,
                }
        elif m["bare_article"] is not None:
            if _UNRESOLVED_LAW_BEFORE.search(text, max(0, m.start() - 10), m.start()):
                law = None
            elif chained:
                law = previous.law  # type: ignore[union-attr]
            elif default_law:
                law = default_law
            elif previous is not None:
                law = previous.law
            fields = _provision(m, "b")
        elif m["bare_paragraph"] is not None:
            if previous is not None and (chained or not (default_law and default_article)):
                law = previous.law
                fields = _provision(m, "q") | {"article": previous.article, "branch": previous.branch}
            elif default_law and default_article:
                law = default_law
                fields = _provision(m, "q") | {"article": default_article, "branch": default_branch}
        elif m["bare_item"] is not None:
            if chained and previous is not None and previous.item is not None:
                law = previous.law
                fields = _provision(m, "i") | {
                    "article": previous.article,
                    "branch": previous.branch,
                    "paragraph": previous.paragraph,
                }
        if law is None or fields is None or fields.get("article") is None:
            previous_end = -1  # an unresolved match breaks any chain across it
            continue
        citation = Citation(law=law, span=m.span(), **fields)  # type: ignore[arg-type]
        found.append(citation)
        previous, previous_end = citation, m.end()
    return found
