"""What a `lawgo` source fetches, in which order, and how list rows become detail requests.

- law / eflaw by name (any law: a catalogue name or alias is first made official, other names are searched as
  written): `lawSearch.do?query=<name>&display=100`, paged through every page, keeping rows whose 법령명한글 equals
  the name exactly (spaces and middle-dot variants aside: the query is a substring match, "소득세법" also finds
  소득세법 시행령 and 56 others, and the exact row may not be on page 1). No exact row stops the run with the closest
  names among the search results and in the tax catalogue. Then one version is chosen and fetched by MST, which pins it (`ID` + a past date silently
  returns the current text). eflaw lists one row per (MST, 시행일자) and keeps stale 시행예정 rows: with `ef_yd` the
  latest 시행일자 on or before it wins (ties: the latest 공포일자), without it the row marked 현행.
- law / eflaw by 법령ID: the current version by ID; with `ef_yd` (eflaw), the eflaw list for that ID (`LID`) picks
  the version as above. By MST: that version.
- prec: a list query (query, 법원명 `curt`, 선고일자 range `prncYd`, 사건번호 `nb`) or `ids`, then each detail by ID.
  Rows whose 데이터출처명 is 국세청 are not fetched: law.go.kr serves those bodies as HTML only.
- expc: a list query (query, 해석일자 range `explYd`) or `ids`, then each detail (질의요지 / 회답 / 이유).

Paging: display=100 (the maximum), stop when a page has fewer rows than that, when page × 100 reaches totalCnt,
or at `max_pages` (then the result is marked truncated in the counts).
Each detail is one item for the stage: its documents, or the problem that stops or skips it (per on_error).
Authentication/approval failures stop the run: nothing useful can follow them. So does a failed precedent or
interpretation search (what it would have listed is unknown); a law whose name search still fails after the retries
is one skipped item, with its reason, and the other laws are collected.
"""

from __future__ import annotations

import difflib
from collections import Counter
from collections.abc import Iterator
from typing import Any

from slm_datagen.collect.catalogue import name_key, resolve_laws, suggest
from slm_datagen.collect.dates import iso_date
from slm_datagen.collect.lawgo_client import LawgoClient, LawgoError
from slm_datagen.collect.lawgo_parse import as_list, parse_expc, parse_law, parse_prec
from slm_datagen.collect.problems import InputProblem
from slm_forest.config import LawgoSource
from slm_forest.errors import SlmError
from slm_forest.records import Document

DISPLAY = 100
# The row key of each target's list response (API_NOTES §2): law and eflaw rows are both "law".
_ROW_KEY = {"law": "law", "eflaw": "law", "prec": "prec", "expc": "expc"}
Item = tuple[str, list[Document], InputProblem | None]


def _yyyymmdd(value: str | None, where: str) -> str | None:
    if not value:
        return None
    iso = iso_date(value)
    if iso is None:
        raise SlmError(f"{where}: {value!r} is not a date", "write it as YYYYMMDD or YYYY-MM-DD")
    return iso.replace("-", "")


def search_rows(
    client: LawgoClient, target: str, params: dict[str, Any], max_pages: int, counts: Counter[str], where: str
) -> list[dict[str, Any]]:
    """Every list row for a query, paged; a failure here stops the run (nothing can be fetched without it)."""
    try:
        return _search_rows(client, target, params, max_pages, counts)
    except LawgoError as exc:
        raise exc.to_slm_error(where) from None


def _search_rows(
    client: LawgoClient, target: str, params: dict[str, Any], max_pages: int, counts: Counter[str]
) -> list[dict[str, Any]]:
    rows: list[dict[str, Any]] = []
    for page in range(1, max_pages + 1):
        data = client.search(target, **params, display=DISPLAY, page=page)
        root = next((v for v in data.values() if isinstance(v, dict)), {})
        page_rows = [r for r in as_list(root.get(_ROW_KEY[target])) if isinstance(r, dict)]
        rows += page_rows
        try:
            total = int(str(root.get("totalCnt") or "0").strip() or 0)
        except ValueError:
            total = 0
        if len(page_rows) < DISPLAY or page * DISPLAY >= total:
            return rows
    counts["lawgo_truncated_searches"] += 1
    return rows


def _choose_version(rows: list[dict[str, Any]], target: str, ef_yd: str | None) -> dict[str, Any]:
    def order(row: dict[str, Any]) -> tuple[str, str, int]:
        mst = str(row.get("법령일련번호") or "0")
        return str(row.get("시행일자") or ""), str(row.get("공포일자") or ""), int(mst) if mst.isdigit() else 0

    if target == "eflaw" and ef_yd:
        in_force = [r for r in rows if str(r.get("시행일자") or "") <= ef_yd]
        if in_force:
            return max(in_force, key=order)
        return min(rows, key=order)
    current = [r for r in rows if str(r.get("현행연혁코드") or "") == "현행"]
    return max(current or rows, key=order)


def _law_item(client: LawgoClient, target: str, label: str, params: dict[str, Any], mst: str | None) -> Item:
    source = f"lawgo:{target}?" + "&".join(f"{k}={v}" for k, v in params.items())
    try:
        response = client.detail(target, **params)
        return label, parse_law(response, source=source, mst=mst), None
    except LawgoError as exc:
        if exc.fatal:
            raise exc.to_slm_error() from None
        return label, [], InputProblem(str(exc))
    except InputProblem as problem:
        return label, [], problem


def _closest_names_hint(name: str, rows: list[dict[str, Any]]) -> str:
    """Did-you-mean for a name without an exact match: the closest listed names, then catalogue names."""
    listed = sorted({str(r.get("법령명한글")) for r in rows if r.get("법령명한글")})
    by_key = {name_key(n): n for n in listed}
    found = [by_key[k] for k in difflib.get_close_matches(name_key(name), list(by_key), n=5, cutoff=0.5)]
    known = [n for n in suggest(name) if n not in found]
    parts = []
    if found:
        parts.append("closest names on law.go.kr: " + ", ".join(repr(n) for n in found))
    if known:
        parts.append("in the tax catalogue: " + ", ".join(repr(n) for n in known))
    return (
        "; ".join(parts) if parts else "check the name on www.law.go.kr (법령명 as listed there), or use law_ids/msts"
    )


def _laws(client: LawgoClient, source: LawgoSource, where: str, counts: Counter[str]) -> Iterator[Item]:
    target = source.target
    ef_yd = _yyyymmdd(source.ef_yd, f"{where}.ef_yd")
    names = resolve_laws(source.laws, f"{where}.laws") if source.laws else []
    for name in names:
        try:
            rows = _search_rows(client, target, {"query": name}, source.max_pages, counts)
        except LawgoError as exc:
            if exc.fatal:
                raise exc.to_slm_error(f"{where}.laws") from None
            # law.go.kr still failing after the retries: this law is listed as skipped, the others are collected.
            yield f"{target} {name}", [], InputProblem(f"search failed: {exc}")
            continue
        exact = [r for r in rows if name_key(r.get("법령명한글")) == name_key(name)]
        if not exact:
            raise SlmError(
                f"{where}.laws: law.go.kr lists no law named exactly {name!r} ({len(rows)} rows searched)",
                _closest_names_hint(name, rows),
            )
        row = _choose_version(exact, target, ef_yd)
        mst = str(row.get("법령일련번호") or "")
        params: dict[str, Any] = {"MST": mst}
        if target == "eflaw":
            params["efYd"] = str(row.get("시행일자") or "")
        yield _law_item(client, target, f"{target} {name} MST={mst}", params, mst)
    for law_id in source.law_ids:
        if target == "eflaw" and ef_yd:
            rows = search_rows(client, target, {"LID": law_id}, source.max_pages, counts, f"{where}.law_ids")
            if not rows:
                raise SlmError(f"{where}.law_ids: law.go.kr lists no version of 법령ID {law_id}", "check the 법령ID")
            row = _choose_version(rows, target, ef_yd)
            mst = str(row.get("법령일련번호") or "")
            params = {"MST": mst, "efYd": str(row.get("시행일자") or "")}
            yield _law_item(client, target, f"{target} 법령ID={law_id} MST={mst}", params, mst)
        else:
            yield _law_item(client, target, f"{target} 법령ID={law_id}", {"ID": law_id}, None)
    for mst in source.msts:
        params = {"MST": mst}
        if target == "eflaw" and ef_yd:
            params["efYd"] = ef_yd
        yield _law_item(client, target, f"{target} MST={mst}", params, mst)


def _detail_items(client: LawgoClient, target: str, ids: list[str]) -> Iterator[Item]:
    parse = parse_prec if target == "prec" else parse_expc
    for doc_id in ids:
        label = f"{target} ID={doc_id}"
        try:
            response = client.detail(target, ID=doc_id)
            yield label, [parse(response, source=f"lawgo:{target}?ID={doc_id}")], None
        except LawgoError as exc:
            if exc.fatal:
                raise exc.to_slm_error() from None
            yield label, [], InputProblem(str(exc))
        except InputProblem as problem:
            yield label, [], problem


def _date_range(source: LawgoSource, where: str) -> str | None:
    start = _yyyymmdd(source.date_from, f"{where}.date_from")
    end = _yyyymmdd(source.date_to, f"{where}.date_to")
    if not (start or end):
        return None
    return f"{start or '19000101'}~{end or '99991231'}"


def _cases(client: LawgoClient, source: LawgoSource, where: str, counts: Counter[str]) -> Iterator[Item]:
    target = source.target
    ids = list(source.ids)
    if target == "prec":
        params = {
            "query": source.query,
            "curt": source.court,
            "prncYd": _date_range(source, where),
            "nb": source.case_no,
        }
        id_keys = ("판례일련번호", "판례정보일련번호")
    else:
        params = {"query": source.query, "explYd": _date_range(source, where)}
        id_keys = ("법령해석례일련번호", "id")
    params = {k: v for k, v in params.items() if v}
    if not params and not ids:
        raise SlmError(
            f"{where}: a {target} source needs ids or a search (query"
            + (", court, date_from/date_to, case_no)" if target == "prec" else ", date_from/date_to)"),
            "add e.g. `query: 양도소득세`",
        )
    if params:
        for row in search_rows(client, target, params, source.max_pages, counts, where):
            if target == "prec" and "국세청" in str(row.get("데이터출처명") or ""):
                counts["lawgo_html_only_skipped"] += 1  # body served as HTML only (API_NOTES §1)
                continue
            row_id = next((str(row[k]) for k in id_keys if row.get(k)), "")
            if row_id and row_id not in ids:
                ids.append(row_id)
    yield from _detail_items(client, target, ids)


def collect_lawgo(client: LawgoClient, source: LawgoSource, where: str, counts: Counter[str]) -> Iterator[Item]:
    """(label, documents, problem) per detail request of one lawgo source."""
    if source.target in ("law", "eflaw"):
        if not (source.laws or source.law_ids or source.msts):
            raise SlmError(f"{where}: a {source.target} source needs laws, law_ids or msts", "e.g. `laws: tax-all`")
        yield from _laws(client, source, where, counts)
    else:
        yield from _cases(client, source, where, counts)
