"""국세청 interpretations as people keep them -> Document records (kind "interpretation").

Two shapes:
- the 2025 세법해석 사례집 (../shared/corpus/rulings/nts_casebook_2025.json, shipped in the bundled corpus): a list of
  `{id, 분야, 쟁점, 문서번호, 회신일, 쪽, 답변요지, 관련법령}` — 쟁점 is the question, 답변요지 the answer;
- the seed project's `tax-law-judgment/data_main.json`: a list of `{index, title, summary, response, content,
  metadata: {date, answer_type, law_category, department, related_docs, related_topics, related_laws}}` whose
  `content` is the page text of 국세법령정보시스템 with `사실관계` / `질의요지` / `관련법령` sections (and page chrome such
  as "PDF로 보기", "상세내용"), and `response` the answer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from slm_datagen.collect.lawgo_parse import interpretation_document
from slm_datagen.collect.lawtext import clean_field, clean_inline
from slm_datagen.collect.problems import InputProblem
from slm_forest.records import Document

CASEBOOK_KEYS = ("쟁점", "답변요지")
SEED_KEYS = ("content", "response")

# A section header on its own line: "사실관계", "1. 질의요지", "□ 관련법령", "【사실관계】", "[질의요지]", "질의요지 :".
_SECTION_NAMES = ("사실관계", "질의요지", "질의내용", "관련법령", "회신", "답변내용", "회신내용")
_SECTION = re.compile(
    r"^[ \t]*(?:[0-9]+[.)]\s*|[□■○●◎▣\-·]\s*)?[\[【(]?\s*("
    + "|".join(_SECTION_NAMES)
    + r")\s*[\]】)]?\s*[:：]?[ \t]*$",
    re.MULTILINE,
)
_CHROME = {"PDF로 보기", "상세내용", "목록", "인쇄"}


# The casebook PDF's page footer ends up glued to the 관련법령 of the last case on a page: "집필진 징세법무국 법규과
# 행정사무관 박 소 영 … 문의사항 (044) 204-3112~4", "발행일자 2025년 11월 발행처 국세청 …". Staff names and phone
# numbers are not data: 관련법령 is cut at the first such marker that is not inside a 【조문 제목】.
_FOOTER = re.compile(r"\s*(?:집필진|발행일자|발행처|문의사항)(?![^【]*】)")


def strip_footer(related: Any) -> Any:
    """관련법령 (a string or a list of strings) without the casebook's page footer."""
    if isinstance(related, list):
        return [strip_footer(item) for item in related]
    if not isinstance(related, str):
        return related
    match = _FOOTER.search(related)
    return related[: match.start()] if match else related


def _records(data: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(data, list):
        raise InputProblem(f"expected a JSON list of records, got {type(data).__name__}", where)
    for index, record in enumerate(data):
        _check_record(record, index, where)
    return data


def _check_record(record: Any, index: int, where: str) -> None:
    if not isinstance(record, dict):
        raise InputProblem(f"record {index} is a {type(record).__name__}, expected an object", where)


def casebook_document(record: Any, index: int, *, source: str, where: str = "") -> Document:
    """One record of the 2025 casebook (`{id, 분야, 쟁점, 문서번호, 회신일, 쪽, 답변요지, 관련법령}`)."""
    _check_record(record, index, where)
    record_where = f"{where}{' ' if where else ''}record {index} (id {record.get('id', '?')})"
    meta = {k: record[k] for k in ("id", "쪽") if record.get(k) not in (None, "")}
    meta["collection"] = "국세청 세법해석 사례집"
    return interpretation_document(
        title=clean_inline(record.get("쟁점")),
        question=clean_field(record.get("쟁점")).text,
        answer=clean_field(record.get("답변요지")).text,
        doc_no=clean_inline(record.get("문서번호")) or None,
        date=clean_inline(record.get("회신일")) or None,
        related=strip_footer(record.get("관련법령")),
        source=source,
        field_of_law=clean_inline(record.get("분야")) or None,
        meta=meta,
        where=record_where,
    )


def parse_casebook(data: Any, *, source: str, where: str = "") -> Iterator[Document]:
    for index, record in enumerate(_records(data, where)):
        yield casebook_document(record, index, source=source, where=where)


def split_sections(content: str) -> tuple[str, dict[str, str]]:
    """(text before the first header, {section name: body}) for the seed's page text."""
    lines = [line for line in clean_field(content).lines if line not in _CHROME]
    text = "\n".join(lines)
    matches = list(_SECTION.finditer(text))
    if not matches:
        return text, {}
    sections: dict[str, str] = {}
    for match, following in zip(matches, [*matches[1:], None]):
        end = following.start() if following else len(text)
        body = text[match.end() : end].strip()
        name = match.group(1)
        sections[name] = f"{sections[name]}\n{body}".strip() if name in sections else body
    return text[: matches[0].start()].strip(), sections


def seed_judgment_document(record: Any, index: int, *, source: str, where: str = "") -> Document:
    """One record of the seed's tax-law-judgment/data_main.json."""
    _check_record(record, index, where)
    record_where = f"{where}{' ' if where else ''}record {index}"
    metadata = record.get("metadata") or {}
    if not isinstance(metadata, dict):
        raise InputProblem("metadata is not an object", record_where)
    preamble, sections = split_sections(str(record.get("content") or ""))
    title = clean_inline(record.get("title"))
    question = sections.get("질의요지") or sections.get("질의내용") or ""
    facts = sections.get("사실관계", "")
    if not question and not facts:
        # No section headers: the whole page text is the question as asked.
        question = preamble
    related = metadata.get("related_laws") or sections.get("관련법령")
    answer = clean_field(record.get("response")).text or sections.get("회신") or sections.get("회신내용", "")
    meta: dict[str, Any] = {"collection": "seed tax-law-judgment"}
    for key in ("index",):
        if record.get(key) not in (None, ""):
            meta[key] = record[key]
    for key in ("answer_type", "department", "related_docs", "related_topics"):
        if metadata.get(key) not in (None, "", []):
            meta[key] = metadata[key]
    if record.get("summary"):
        meta["summary"] = clean_field(record.get("summary")).text
    return interpretation_document(
        title=title,
        question=question,
        answer=answer,
        doc_no=clean_inline(metadata.get("doc_no")) or None,
        date=clean_inline(metadata.get("date")) or None,
        related=related,
        source=source,
        field_of_law=clean_inline(metadata.get("law_category")) or None,
        extra_sections=[("사실관계", facts)],
        meta=meta,
        where=record_where,
    )


def parse_seed_judgment(data: Any, *, source: str, where: str = "") -> Iterator[Document]:
    for index, record in enumerate(_records(data, where)):
        yield seed_judgment_document(record, index, source=source, where=where)
