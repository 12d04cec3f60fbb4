"""What the offline teacher reads from a source: a statute article's 항/호/목 outline, statute phrasing in plain
words, which part of a long article a chunk holds, and the laws a ruling cites (its 관련법령, the casebook shorthand).

Pure functions over the chunk's own text; offline.py (explain pairs) and offline_lay.py (layperson questions) use them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from slm_datagen.distill.korean import polite_from_plain, split_sentences
from slm_datagen.distill.schema import CitationDraft
from slm_forest.records import Chunk

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


def sentences_polite(text: str) -> str:
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


def article_citation(chunk: Chunk) -> str:
    if chunk.law_name and chunk.article_no is not None:
        branch = f"의{chunk.article_branch}" if chunk.article_branch else ""
        return f"{chunk.law_name} 제{chunk.article_no}조{branch}"
    return chunk.citation


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


def basis_line(citations: list[CitationDraft], fallback: str) -> str:
    labels = [c.label() for c in citations] or [fallback]
    return f"(근거: {', '.join(labels)})"


def span_label(paragraphs: list[Paragraph]) -> str:
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


def is_part(chunk: Chunk) -> bool:
    return chunk.position > 0 or int(chunk.meta.get("chunks_in_doc", 1) or 1) > 1
