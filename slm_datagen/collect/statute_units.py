"""Flat statute units (one JSON line per 조/항/호: 법령명, 시행본, 조, 항, 호, text) -> law.go.kr `법령` responses.

The rows are regrouped into the lawService.do JSON shape (`조문단위` with 항 / 호 / 목) and then parsed by
`lawgo_parse.parse_law` like any API response, so a unit file and the API give the same text for the same article.
Only fields the rows really give are filled: 법령명_한글, 시행일자 (the row's 시행본), 조문번호, 조문가지번호, 조문여부,
조문제목 (from the heading), 조문내용, 항번호/항내용, 호번호/호내용, 목번호/목내용 — never an invented 법령ID or MST.
A 호 row whose text carries its 목 on following lines ("2. …\\n가. …\\n나. …") gets them split into 목 entries; rows
under no numbered 항 become the single unnumbered `"항": {"호": […]}` dict, as the API sends it.
`slm_datagen/data/make_bundled.py` uses the same conversion to write the bundled corpus.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

from slm_datagen.collect.problems import InputProblem

_ARTICLE = re.compile(r"^제\s*(\d+)\s*조(?:\s*의\s*(\d+))?$")
_HEADING_TITLE = re.compile(r"^제\d+조(?:의\d+)?\((.*?)\)(?:\s|$)")
_SUBITEM = re.compile(r"^([가-하])\.\s")
REQUIRED = ("법령명", "조", "text")


def _subitems(lines: list[str]) -> list[dict[str, Any]]:
    """Lines after a 호's first line -> 목 entries; a line that is not "가." etc. continues the 목 before it."""
    out: list[dict[str, Any]] = []
    for line in lines:
        match = _SUBITEM.match(line)
        if match or not out:
            out.append({"목번호": f"{match.group(1)}." if match else "", "목내용": [[line]]})
        else:
            out[-1]["목내용"][0].append(line)
    for mok in out:  # a one-line 목 is a plain string in the API; only multi-line ones are lists of lists
        if len(mok["목내용"][0]) == 1:
            mok["목내용"] = mok["목내용"][0][0]
    return out


def _item(row: dict[str, Any]) -> dict[str, Any]:
    first, *rest = str(row["text"]).split("\n")
    item: dict[str, Any] = {"호번호": row["호"], "호내용": first}
    if rest:
        item["목"] = _subitems(rest)
    return item


def units_to_articles(rows: list[dict[str, Any]], where: str = "") -> list[dict[str, Any]]:
    """Rows of one (law, 시행본), in source order -> 조문단위 entries."""
    articles: dict[str, dict[str, Any]] = {}
    paragraphs: dict[str, dict[str, dict[str, Any]]] = {}
    for row in rows:
        label = str(row["조"]).strip()
        match = _ARTICLE.match(label)
        if not match:
            raise InputProblem(f"조 is {label!r}, expected 제N조 or 제N조의M", row.get("_where", where))
        article = articles.get(label)
        if article is None:
            article = {"조문번호": match.group(1), "조문여부": "조문"}
            if match.group(2):
                article["조문가지번호"] = match.group(2)
            articles[label] = article
            paragraphs[label] = {}
        hang_no, ho_no = str(row.get("항") or ""), str(row.get("호") or "")
        if not hang_no and not ho_no:
            article["조문내용"] = row["text"]
            title = _HEADING_TITLE.match(str(row["text"]))
            if title:
                article["조문제목"] = title.group(1)
        elif hang_no and not ho_no:
            paragraphs[label][hang_no] = {"항번호": hang_no, "항내용": row["text"]}
        else:
            hang = paragraphs[label].setdefault(hang_no, {"항번호": hang_no} if hang_no else {})
            hang.setdefault("호", []).append(_item({**row, "호": ho_no}))
    for label, article in articles.items():
        hangs = list(paragraphs[label].values())
        if len(hangs) == 1 and "항번호" not in hangs[0]:
            article["항"] = hangs[0]  # the single unnumbered 항, a dict as the API sends it
        elif hangs:
            article["항"] = hangs
    return list(articles.values())


def law_response(law_name: str, version: str, rows: list[dict[str, Any]], where: str = "") -> dict[str, Any]:
    info = {"법령명_한글": law_name}
    if version:
        info["시행일자"] = version
    return {"법령": {"기본정보": info, "조문": {"조문단위": units_to_articles(rows, where)}}}


def grouped_responses(lines: Iterator[str], where: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """JSON lines -> (first line label, `법령` response) per run of rows with the same (법령명, 시행본)."""
    key: tuple[str, str] | None = None
    rows: list[dict[str, Any]] = []
    first_line = 0
    for line_no, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputProblem(f"not valid JSON ({exc.msg})", f"line {line_no}, column {exc.colno}") from None
        if not isinstance(row, dict) or any(k not in row for k in REQUIRED):
            raise InputProblem(f"expected an object with {', '.join(REQUIRED)}", f"line {line_no}")
        row["_where"] = f"line {line_no}"
        row_key = (str(row["법령명"]).strip(), str(row.get("시행본") or "").strip())
        if row_key != key and rows:
            assert key is not None
            yield f"line {first_line}", law_response(key[0], key[1], rows, where)
            rows = []
        if not rows:
            first_line = line_no
        key = row_key
        rows.append(row)
    if rows and key is not None:
        yield f"line {first_line}", law_response(key[0], key[1], rows, where)
