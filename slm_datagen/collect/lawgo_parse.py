"""law.go.kr detail responses -> Document records: `법령` (law/eflaw lawService.do), `PrecService`, `ExpcService`.

Input is the decoded JSON, or XML turned into the same dict shape by `lawgo_xml`. The shape quirks handled here
(see ../shared/corpus/lawgo/API_NOTES.md §4–6):
- 조문단위 / 항 / 호 / 목 arrive as a list, or as a single dict when there is one;
- a single unnumbered 항 arrives as a dict without 항번호 (소득세법 §12, 국세징수법 §41);
- 목내용 may be a string, a list, or a list of lists (`[["머. …", "1) …"]]`);
- 목 may sit beside 호 at 항 level instead of under its 호: regrouped (each run starting again at 가. belongs to the
  next 호 that introduces 목s);
- `전문` rows are 편/장/절/관 headings: they become `headings` of the articles that follow;
- 조문가지번호 -> article_branch; `삭제` articles -> deleted=True;
- amendment tags, `<br/>`, `<img>` tables and full-width spaces are handled by `lawtext.clean_field`;
- precedents name their id `판례정보일련번호` in detail responses and `판례일련번호` in lists and copies.

Statute text keeps the structure one unit per line: the article heading line, then 항, 호 and (indented) 목:
"제12조(비과세소득) 다음 각 호의 …\\n1. …\\n  가. …".
"""

from __future__ import annotations

import re
from typing import Any

from slm_datagen.collect.dates import iso_date
from slm_datagen.collect.lawtext import TABLE_PLACEHOLDER, CleanText, clean_field, clean_inline, is_deleted_article
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.references import parse_references, split_related_laws
from slm_forest.records import Document, content_id

_HEADING_LEVEL = re.compile(r"^제\s*\d+\s*(?:의\s*\d+\s*)?(편|장|절|관)")
_LEVELS = {"편": 0, "장": 1, "절": 2, "관": 3}
_SUBITEM_INDENT = "  "
_DETAIL_INDENT = "    "


def as_list(value: Any) -> list[Any]:
    """The API's list-or-single-dict-or-absent -> a list."""
    if value is None or value == "":
        return []
    return value if isinstance(value, list) else [value]


def _text(value: Any) -> str:
    """A scalar field that XML attributes may have turned into {"content": …}."""
    if isinstance(value, dict):
        value = value.get("content", "")
    return "" if value is None else str(value).strip()


# ------------------------------------------------------------------------------------------------------ statutes
def article_label(article_no: int, branch: int | None) -> str:
    return f"제{article_no}조" + (f"의{branch}" if branch else "")


class _Lines:
    """Accumulates cleaned lines with their indentation, plus the amendments and tables lifted out of them."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.amendments: list[str] = []
        self.tables = 0

    def add(self, cleaned: CleanText, indent: str = "", continuation: str | None = None) -> None:
        for index, line in enumerate(cleaned.lines):
            prefix = indent if index == 0 else (continuation if continuation is not None else indent)
            self.lines.append(prefix + line)
        for amendment in cleaned.amendments:
            if amendment not in self.amendments:
                self.amendments.append(amendment)
        self.tables += cleaned.tables


def _subitem_key(mok: Any) -> str:
    return _text(mok.get("목번호")) if isinstance(mok, dict) else ""


def _regroup_subitems(items: list[Any], loose: list[Any]) -> list[dict[str, Any]]:
    """Attach 목 rows found at 항 level to their 호.

    A run of 목 starts again at 가.; runs go, in order, to the 호 whose text introduces 목s ("다음 각 목") and that have
    none of their own; if the markers do not account for every run, to the 호 without 목 in order; what is left goes
    to the last 호 rather than being lost.
    """
    runs: list[list[Any]] = []
    for mok in loose:
        if not runs or _subitem_key(mok).startswith("가"):
            runs.append([])
        runs[-1].append(mok)
    items = [dict(item) if isinstance(item, dict) else {"호내용": item} for item in items]
    if not items:
        return [{"호내용": "", "목": [m for run in runs for m in run]}]
    empty = [item for item in items if not as_list(item.get("목"))]
    marked = [item for item in empty if "각 목" in clean_inline(item.get("호내용"))]
    targets = marked if len(marked) >= len(runs) else empty
    for index, run in enumerate(runs):
        target = targets[index] if index < len(targets) else items[-1]
        target["목"] = as_list(target.get("목")) + run
    return items


def _add_subitem(out: _Lines, mok: Any) -> None:
    content = mok.get("목내용") if isinstance(mok, dict) else mok
    if isinstance(content, list) and content and all(isinstance(c, list) for c in content):
        content = [line for group in content for line in group]
    cleaned = clean_field(content)
    number = _subitem_key(mok)
    if number and cleaned.lines and not cleaned.lines[0].startswith(number.rstrip(".")):
        cleaned.lines[0] = f"{number} {cleaned.lines[0]}"
    out.add(cleaned, _SUBITEM_INDENT, _DETAIL_INDENT)


def _add_item(out: _Lines, ho: Any) -> None:
    if not isinstance(ho, dict):
        out.add(clean_field(ho))
        return
    out.add(clean_field(ho.get("호내용")), "", _SUBITEM_INDENT)
    for mok in as_list(ho.get("목")):
        _add_subitem(out, mok)


def _add_paragraph(out: _Lines, hang: Any) -> None:
    if not isinstance(hang, dict):
        out.add(clean_field(hang))
        return
    out.add(clean_field(hang.get("항내용")))
    items = as_list(hang.get("호"))
    loose = as_list(hang.get("목"))
    if loose:
        items = _regroup_subitems(items, loose)
    for ho in items:
        _add_item(out, ho)


def _update_headings(stack: list[tuple[int, str]], unit: dict[str, Any]) -> None:
    heading = clean_inline(unit.get("조문내용"))
    if not heading:
        return
    match = _HEADING_LEVEL.match(heading)
    # Unknown kinds (부칙 headings and the like) are treated as chapter level: they replace what is above sections.
    level = _LEVELS[match.group(1)] if match else 1
    while stack and stack[-1][0] >= level:
        stack.pop()
    stack.append((level, heading))


def _int_field(unit: dict[str, Any], key: str, where: str, *, optional: bool = False) -> int | None:
    raw = _text(unit.get(key))
    if raw in ("", "0") and optional:
        return None
    if not raw.isdigit():
        raise InputProblem(f"{key} is {raw!r}, expected a number", where)
    return int(raw)


def parse_law(response: dict[str, Any], *, source: str, mst: str | None = None, where: str = "") -> list[Document]:
    """A `{"법령": …}` detail response (full law or JO= single article) -> one Document per article."""
    law = response.get("법령")
    if not isinstance(law, dict):
        raise InputProblem("no 법령 object (not a lawService.do law/eflaw response)", where)
    info = law.get("기본정보")
    if not isinstance(info, dict):
        raise InputProblem("법령.기본정보 is missing", where)
    law_name = clean_inline(info.get("법령명_한글") or info.get("법령명한글"))
    if not law_name:
        raise InputProblem("법령.기본정보.법령명_한글 is missing", where)
    effective = iso_date(_text(info.get("시행일자")))
    promulgated = iso_date(_text(info.get("공포일자")))
    law_id = _text(info.get("법령ID")) or None
    mst = mst or _text(info.get("법령일련번호")) or None
    articles = law.get("조문")
    units = as_list(articles.get("조문단위")) if isinstance(articles, dict) else []

    documents: list[Document] = []
    headings: list[tuple[int, str]] = []
    for index, unit in enumerate(units):
        unit_where = f"{where}{' ' if where else ''}법령.조문.조문단위[{index}]"
        if not isinstance(unit, dict):
            raise InputProblem(f"expected an object, got {type(unit).__name__}", unit_where)
        if _text(unit.get("조문여부")) == "전문":
            _update_headings(headings, unit)
            continue
        article_no = _int_field(unit, "조문번호", unit_where)
        branch = _int_field(unit, "조문가지번호", unit_where, optional=True)
        assert article_no is not None
        out = _Lines()
        heading = clean_field(unit.get("조문내용"))
        out.add(heading, "", "")
        for hang in as_list(unit.get("항")):
            _add_paragraph(out, hang)
        reference = clean_field(unit.get("조문참고자료"))
        for amendment in reference.amendments:
            if amendment not in out.amendments:
                out.amendments.append(amendment)
        label = article_label(article_no, branch)
        if not out.lines:
            out.lines = [label]
        text = "\n".join(out.lines)
        title_part = clean_inline(unit.get("조문제목"))
        deleted = is_deleted_article(out.lines[0]) and len(out.lines) == 1
        meta: dict[str, Any] = {}
        for key in ("조문키", "조문시행일자", "조문제개정유형"):
            if _text(unit.get(key)):
                meta[key] = _text(unit.get(key))
        if law.get("법령키"):
            meta["법령키"] = _text(law.get("법령키"))
        if out.tables:
            meta["tables"] = out.tables
            meta["note"] = f"{out.tables} table(s) given as images upstream; shown as {TABLE_PLACEHOLDER}"
        documents.append(
            Document(
                id=content_id("law", "statute_article", law_name, label, effective, text),
                kind="statute_article",
                title=f"{law_name} {label}" + (f"({title_part})" if title_part else ""),
                text=text,
                source=source,
                law_name=law_name,
                law_id=law_id,
                mst=mst,
                effective_date=effective,
                promulgation_date=promulgated,
                article_no=article_no,
                article_branch=branch,
                article_title=title_part or None,
                headings=[h for _, h in headings],
                amendments=out.amendments,
                deleted=deleted,
                meta=meta,
            )
        )
    return documents


# ---------------------------------------------------------------------------------------------------- precedents
_PREC_SECTIONS = ("판시사항", "판결요지", "참조조문", "참조판례", "판례내용")


def _sections_text(title: str, sections: list[tuple[str, str]]) -> str:
    # The title line is left out when it only repeats the first section (the casebook's 쟁점 is both).
    first_body = next((body for _, body in sections if body), "")
    parts = [title] if title and title != first_body else []
    parts += [f"【{name}】\n{body}" for name, body in sections if body]
    return "\n\n".join(parts)


def precedent_document(fields: dict[str, Any], *, source: str, where: str = "") -> Document:
    """A precedent from its fields (PrecService detail, a list row with body fields, or Markdown front matter)."""
    case_no = clean_inline(fields.get("사건번호"))
    if not case_no:
        raise InputProblem("사건번호 is missing", where)
    case_name = clean_inline(fields.get("사건명"))
    court = clean_inline(fields.get("법원명")) or None
    # Front matter parsed by YAML may already hold a datetime.date; iso_date takes both.
    raw_date = fields.get("선고일자")
    decided = iso_date(raw_date if hasattr(raw_date, "isoformat") else _text(raw_date))
    bodies = {name: clean_field(fields.get(name)).text for name in _PREC_SECTIONS}
    text = _sections_text(case_name, [(name, bodies[name]) for name in _PREC_SECTIONS])
    if not any(bodies.values()):
        raise InputProblem(f"precedent {case_no} has no text (판시사항/판결요지/판례내용 all empty)", where)
    serial = _text(fields.get("판례정보일련번호")) or _text(fields.get("판례일련번호"))
    meta: dict[str, Any] = {}
    if serial:
        meta["판례일련번호"] = serial
    for key in ("사건종류명", "사건종류", "판결유형", "선고", "법원종류코드", "데이터출처명", "출처"):
        if _text(fields.get(key)):
            meta[key] = _text(fields.get(key))
    if raw_date and not decided:
        meta["선고일자_raw"] = str(raw_date)
    if bodies["참조판례"]:
        meta["참조판례"] = bodies["참조판례"]
    return Document(
        id=content_id("prec", "precedent", court, case_no, decided, text),
        kind="precedent",
        title=" ".join(p for p in (court, case_no, case_name) if p),
        text=text,
        source=source,
        case_no=case_no,
        court=court,
        decision_date=decided,
        holdings=bodies["판시사항"] or None,
        summary=bodies["판결요지"] or None,
        related_laws=split_related_laws(bodies["참조조문"]),
        references=parse_references(bodies["참조조문"]),
        meta=meta,
    )


def parse_prec(response: dict[str, Any], *, source: str, where: str = "") -> Document:
    body = response.get("PrecService")
    if not isinstance(body, dict):
        raise InputProblem("no PrecService object (not a lawService.do prec response)", where)
    return precedent_document(body, source=source, where=where)


# ----------------------------------------------------------------------------------------------- interpretations
def interpretation_document(
    *,
    title: str,
    question: str,
    answer: str,
    reasoning: str = "",
    doc_no: str | None,
    date: str | None,
    related: str | list[str] | None,
    source: str,
    field_of_law: str | None = None,
    extra_sections: list[tuple[str, str]] | None = None,
    meta: dict[str, Any] | None = None,
    where: str = "",
) -> Document:
    """An interpretation (법제처 법령해석례, 국세청 질의회신) from its question / answer / reasoning parts."""
    if not (question or answer):
        raise InputProblem("neither a question nor an answer", where)
    if isinstance(related, list):
        related_laws = [clean_inline(r) for r in related if clean_inline(r)]
        reference_text = "\n".join(related_laws)
    else:
        reference_text = clean_field(related).text
        related_laws = split_related_laws(reference_text)
    sections = list(extra_sections or []) + [("질의요지", question), ("회답", answer), ("이유", reasoning)]
    sections.append(("관련법령", "\n".join(related_laws)))
    text = _sections_text(title, sections)
    decided = iso_date(date)
    meta = dict(meta or {})
    if date and not decided:
        meta["date_raw"] = str(date)
    return Document(
        id=content_id("intp", "interpretation", doc_no, decided, text),
        kind="interpretation",
        title=title or (question[:80] if question else (doc_no or "")),
        text=text,
        source=source,
        doc_no=doc_no or None,
        # 회신일 / 해석일자: the date the answer was issued (the record has one decision date for every kind).
        decision_date=decided,
        question=question or None,
        answer=answer or None,
        reasoning=reasoning or None,
        field_of_law=field_of_law or None,
        related_laws=related_laws,
        references=parse_references(reference_text),
        meta=meta,
    )


def parse_expc(response: dict[str, Any], *, source: str, where: str = "") -> Document:
    """`ExpcService` (법제처 법령해석례): 질의요지 / 회답 / 이유."""
    body = response.get("ExpcService")
    if not isinstance(body, dict):
        raise InputProblem("no ExpcService object (not a lawService.do expc response)", where)
    meta = {}
    for key in ("법령해석례일련번호", "해석기관명", "질의기관명", "회신기관명"):
        if _text(body.get(key)):
            meta[key] = _text(body.get(key))
    return interpretation_document(
        title=clean_inline(body.get("안건명")),
        question=clean_field(body.get("질의요지")).text,
        answer=clean_field(body.get("회답")).text,
        reasoning=clean_field(body.get("이유")).text,
        doc_no=clean_inline(body.get("안건번호")) or None,
        date=_text(body.get("해석일자")) or _text(body.get("회신일자")) or None,
        related=body.get("관련법령"),
        source=source,
        meta=meta,
        where=where,
    )
