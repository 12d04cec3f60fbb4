"""legalize-kr Markdown laws (`kr/<법령명>/법률.md`, `시행령.md`, `시행규칙.md`) -> the same Document records as law.go.kr.

The shape (legalize-kr/legalize-kr, e.g. kr/소득세법/법률.md):

    ---
    제목: 소득세법            법령MST: 289363      법령ID: '001565'     법령구분: 법률
    공포일자: 2026-09-08      공포번호: '21901'    시행일자: 2027-09-09 상태: 시행   출처: https://…
    ---
    # 소득세법
    ## 제1장 총칙 <개정 2009.12.31>          (편/장 = ##, 절 = ###, 관 = ####; the words decide the level)
    ##### 제1조의2 (정의)                      (an article; 삭제 articles have no title and a body "삭제 <2009.12.31>")
    **①** 이 법에서 … <개정 2010.12.27>      (항: a bold circled number)
      1\\. "거주자"란 …                        (호: two spaces, escaped dot; also 2의2\\.)
        가\\. …                                (목: four spaces)
     1) … / 　　　1) …                        (deeper items, and continuation lines in full-width spaces)
    <img …> ┌──┐ … </img>                    (tables: box drawing beside an image)
    ## 부칙                                    (the 부칙 are not articles: reading stops there)

The text of each article is laid out as `lawgo_parse` lays out an API response — "제12조(비과세소득) 다음 각 호의 …",
"① …", "1. …", "  가. …", deeper lines "    1) …" — and cleaned by the same `lawtext.clean_field`, so amendment tags
move to `amendments`, tables become "[표]" and the content id is the one the API's copy of the same article gets
(the same article read from both sources is one document). Whole-law files are marked `meta["complete_law"] = True`
(the corpus holds every article of that law version); a trimmed excerpt is read with `complete=False`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import yaml

from slm_datagen.collect.dates import iso_date
from slm_datagen.collect.lawgo_parse import article_label
from slm_datagen.collect.lawtext import TABLE_PLACEHOLDER, CleanText, clean_field, clean_inline, is_deleted_article
from slm_datagen.collect.problems import InputProblem
from slm_forest.records import Document, content_id

REQUIRED_FRONT = ("제목", "시행일자")
_HEADING = re.compile(r"^(#{1,4})\s+(.+?)\s*$")
_ARTICLE = re.compile(r"^#####\s+(.*?)\s*$")
_ARTICLE_LABEL = re.compile(r"^제\s*(\d+)\s*조(?:\s*의\s*(\d+))?\s*(?:\((.*)\))?$")
_LEVEL_WORD = re.compile(r"^제\s*\d+\s*(?:의\s*\d+\s*)?(편|장|절|관)")
_LEVELS = {"편": 0, "장": 1, "절": 2, "관": 3}
_ADDENDA = re.compile(r"^부\s*칙\b")
_PARAGRAPH = re.compile(r"^\*\*\s*(.+?)\s*\*\*\s*(.*)$")
_ITEM = re.compile(r"^(\d+(?:의\d+)?)\\?\.\s*(.*)$")  # 호: "1\\. …", "2의2\\. …" (escaped or not)
_SUBITEM = re.compile(r"^([가-힣])\\?\.\s*(.*)$")  # 목: "가\\. …"
_ESCAPE = re.compile(r"\\([\\`*_{}\[\]()#+\-.!|<>~])")
_WIDE_SPACE = "\u3000"
_SUBITEM_INDENT = "  "
_DETAIL_INDENT = "    "
_FRONT_META = ("법령구분", "소관부처", "공포번호", "상태", "출처", "법령분야")


@dataclass
class LawFile:
    """What the front matter says about one law file."""

    law_name: str
    effective_date: str
    front: dict[str, Any]
    body_start: int  # 0-based index of the first line after the front matter

    @property
    def mst(self) -> str | None:
        return _scalar(self.front.get("법령MST")) or None

    @property
    def law_id(self) -> str | None:
        return _scalar(self.front.get("법령ID")) or None


def _scalar(value: Any) -> str:
    if value is None:
        return ""
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value).strip()


def read_front_matter(text: str) -> LawFile:
    """The front matter of a law file; InputProblem at the line that is wrong."""
    lines = text.split("\n")
    if not lines or lines[0].strip().lstrip("\ufeff") != "---":
        raise InputProblem("no front matter (a legalize-kr law file starts with a '---' line)", "line 1")
    end = next((i for i in range(1, len(lines)) if lines[i].strip() == "---"), None)
    if end is None:
        raise InputProblem("front matter is not closed by a '---' line", "line 1")
    try:
        front = yaml.safe_load("\n".join(lines[1:end])) or {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 2}" if mark else "line 1"
        raise InputProblem(f"front matter is not valid YAML ({getattr(exc, 'problem', exc)})", where) from None
    if not isinstance(front, dict):
        raise InputProblem("front matter is not a mapping of keys to values", "line 2")
    front = {str(k): v for k, v in front.items()}
    for key in REQUIRED_FRONT:
        if not _scalar(front.get(key)):
            raise InputProblem(f"front matter has no {key}", _key_line(lines, end, key))
    effective = iso_date(_scalar(front["시행일자"]))
    if not effective:
        raise InputProblem(f"시행일자 is {_scalar(front['시행일자'])!r}, not a date", _key_line(lines, end, "시행일자"))
    return LawFile(clean_inline(front["제목"]), effective, front, end + 1)


def _key_line(lines: list[str], end: int, key: str) -> str:
    line = next((i + 1 for i in range(1, end) if lines[i].lstrip().startswith(f"{key}:")), 2)
    return f"line {line}"


# ----------------------------------------------------------------------------------------------------- body
@dataclass
class _Article:
    label: str
    article_no: int
    branch: int | None
    title: str | None
    line_no: int
    headings: list[str]
    raw: list[str] = field(default_factory=list)


def _unescape(text: str) -> str:
    return _ESCAPE.sub(r"\1", text)


def _article_head(raw: str, line_no: int) -> tuple[int, int | None, str | None]:
    match = _ARTICLE_LABEL.match(" ".join(_unescape(raw).split()))
    if not match:
        raise InputProblem(f"article heading {raw!r} is not 제N조 (제목) or 제N조의M (제목)", f"line {line_no}")
    title = clean_inline(match.group(3)) if match.group(3) else None
    return int(match.group(1)), int(match.group(2)) if match.group(2) else None, title or None


def _heading_level(text: str, hashes: int) -> int:
    match = _LEVEL_WORD.match(text)
    return _LEVELS[match.group(1)] if match else max(hashes - 1, 1)


def split_articles(lines: list[str], start: int) -> Iterator[_Article]:
    """The articles of the body, each with its heading stack and raw lines; stops at the 부칙."""
    stack: list[tuple[int, str]] = []
    current: _Article | None = None
    for index in range(start, len(lines)):
        line = lines[index].rstrip()
        article = _ARTICLE.match(line)
        heading = None if article else _HEADING.match(line)
        if article or heading:
            if current is not None:
                yield current
                current = None
        if article:
            number, branch, title = _article_head(article.group(1), index + 1)
            label = article_label(number, branch)
            current = _Article(label, number, branch, title, index + 1, [h for _, h in stack])
        elif heading:
            hashes, text = len(heading.group(1)), clean_inline(_unescape(heading.group(2)))
            if _ADDENDA.match(text):
                return
            if hashes == 1 or not text:
                continue  # "# 소득세법": the title of the file
            level = _heading_level(text, hashes)
            while stack and stack[-1][0] >= level:
                stack.pop()
            stack.append((level, text))
        elif current is not None:
            current.raw.append(line)
    if current is not None:
        yield current


class _Body:
    """The article's text as lawgo_parse lays it out, plus the tags and tables lifted out of it."""

    def __init__(self) -> None:
        self.lines: list[str] = []
        self.amendments: list[str] = []
        self.tables = 0
        self.continuation = ""  # indent of a line that continues the unit above (호 -> "  ", 목 -> "    ")

    def add(self, text: str, indent: str, continuation: str) -> None:
        cleaned: CleanText = clean_field(text)
        for position, line in enumerate(cleaned.lines):
            self.lines.append((indent if position == 0 else continuation) + line)
        self.amendments += [a for a in cleaned.amendments if a not in self.amendments]
        self.tables += cleaned.tables
        self.continuation = continuation


def _add_line(body: _Body, raw: str) -> None:
    stripped = raw.strip(" \t")
    if not stripped.strip(_WIDE_SPACE):
        return
    leading = len(raw) - len(raw.lstrip(" "))
    text = _unescape(stripped)
    paragraph = _PARAGRAPH.match(stripped)
    if paragraph and leading == 0:
        rest = _unescape(paragraph.group(2))
        body.add(f"{_unescape(paragraph.group(1))} {rest}".strip(), "", "")
        return
    item = _ITEM.match(stripped) if 1 <= leading <= 3 else None
    if item:
        body.add(f"{item.group(1)}. {_unescape(item.group(2))}".strip(), "", _SUBITEM_INDENT)
        return
    subitem = _SUBITEM.match(stripped) if leading >= 4 else None
    if subitem:
        body.add(f"{subitem.group(1)}. {_unescape(subitem.group(2))}".strip(), _SUBITEM_INDENT, _DETAIL_INDENT)
        return
    # Anything else continues the unit above it: a 1) item, a line of a table, a line in full-width spaces.
    indent = body.continuation if body.lines else ""
    if body.continuation == "" and (leading or stripped.startswith(_WIDE_SPACE)) and body.lines:
        indent = _SUBITEM_INDENT if re.match(r"^\d+\.", body.lines[-1]) else ""
    body.add(text.strip(_WIDE_SPACE + " "), indent, indent)
    body.continuation = indent or body.continuation


def article_text(article: _Article) -> _Body:
    """Heading line ("제12조(비과세소득)" + the lead sentence when the article has no numbered 항), then the rest."""
    body = _Body()
    for raw in article.raw:
        _add_line(body, raw)
    head = article.label + (f"({article.title})" if article.title else "")
    first = body.lines[0] if body.lines else ""
    if first and not first.startswith(" ") and not re.match(r"^(\d+(의\d+)?\.|[①-⑳㉑-㉟㊱-㊿])", first):
        body.lines[0] = f"{head} {first}"
    else:
        body.lines.insert(0, head)
    return body


def parse_law_markdown(
    text: str,
    *,
    source: str,
    complete: bool = True,
    provenance: dict[str, Any] | None = None,
) -> list[Document]:
    """One legalize-kr law file -> one Document per article (삭제 articles included, marked deleted)."""
    law = read_front_matter(text)
    lines = text.split("\n")
    meta_base: dict[str, Any] = {"complete_law": complete, "legalize": dict(provenance or {})}
    for key in _FRONT_META:
        value = law.front.get(key)
        if value not in (None, "", []):
            meta_base[key] = value if isinstance(value, list) else _scalar(value)
    documents: list[Document] = []
    seen: dict[str, int] = {}
    for article in split_articles(lines, law.body_start):
        if article.label in seen:
            raise InputProblem(
                f"{article.label} appears twice (first at line {seen[article.label]})", f"line {article.line_no}"
            )
        seen[article.label] = article.line_no
        body = article_text(article)
        text_out = "\n".join(body.lines)
        meta = dict(meta_base, line=article.line_no)
        if body.tables:
            meta["tables"] = body.tables
            meta["note"] = f"{body.tables} table(s) given as images upstream; shown as {TABLE_PLACEHOLDER}"
        documents.append(
            Document(
                id=content_id("law", "statute_article", law.law_name, article.label, law.effective_date, text_out),
                kind="statute_article",
                title=f"{law.law_name} {article.label}" + (f"({article.title})" if article.title else ""),
                text=text_out,
                source=source,
                law_name=law.law_name,
                law_id=law.law_id,
                mst=law.mst,
                effective_date=law.effective_date,
                promulgation_date=iso_date(_scalar(law.front.get("공포일자"))) or None,
                article_no=article.article_no,
                article_branch=article.branch,
                article_title=article.title,
                headings=article.headings,
                amendments=body.amendments,
                deleted=is_deleted_article(body.lines[0]) and len(body.lines) == 1,
                meta=meta,
            )
        )
    if not documents:
        raise InputProblem("no articles (no '##### 제N조' heading before the 부칙)", f"line {law.body_start + 1}")
    return documents
