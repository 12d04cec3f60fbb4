"""Which parser a decoded file calls for, by its content (or by the `format:` the config names), and the call.

Detection looks at content, not names, because people rename files: XML by its root element (`법령`, `PrecService`,
`ExpcService`), JSON by its top-level keys or its record keys (국세청 casebook: 쟁점/답변요지; the seed's
data_main.json: content/response), JSON lines by a first row with 법령명/조/text, Markdown by its front matter.
law.go.kr error bodies and search lists saved by mistake are reported as such rather than as "malformed".
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterable, Iterator
from typing import Any

from slm_datagen.collect.casebook import CASEBOOK_KEYS, SEED_KEYS, casebook_document, seed_judgment_document
from slm_datagen.collect.envelopes import envelope_error, html_error, is_html
from slm_datagen.collect.lawgo_parse import parse_expc, parse_law, parse_prec
from slm_datagen.collect.lawgo_xml import xml_to_dict
from slm_datagen.collect.precedent_md import parse_precedent_markdown
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.statute_units import REQUIRED as UNIT_KEYS
from slm_datagen.collect.statute_units import grouped_responses
from slm_forest.records import Document

_LIST_ROOTS = {"LawSearch", "PrecSearch", "Expc", "ExpcSearch", "DetcSearch", "Decc", "AdmRulSearch", "OrdinSearch"}
_DETAIL_ROOTS = {"법령": "lawgo_law", "PrecService": "lawgo_prec", "ExpcService": "lawgo_expc"}


def _load_json(text: str) -> Any:
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        # An unterminated string runs to the end of the file (a raw newline inside one is a different error).
        truncated = exc.pos >= len(text.rstrip()) or exc.msg.startswith("Unterminated string")
        reason = f"{'truncated' if truncated else 'not valid'} JSON ({exc.msg})"
        raise InputProblem(reason, f"line {exc.lineno}, column {exc.colno}") from None


def _first_row_is_unit(text: str) -> bool:
    first = text.lstrip().split("\n", 1)[0]
    try:
        row = json.loads(first)
    except json.JSONDecodeError:
        return False
    return isinstance(row, dict) and all(key in row for key in UNIT_KEYS)


def _shape_of(parsed: Any) -> str | None:
    if isinstance(parsed, dict):
        for root, fmt in _DETAIL_ROOTS.items():
            if root in parsed:
                return fmt
        return None
    if isinstance(parsed, list) and parsed and isinstance(parsed[0], dict):
        keys = parsed[0].keys()
        if all(k in keys for k in CASEBOOK_KEYS):
            return "nts_casebook"
        if all(k in keys for k in SEED_KEYS):
            return "seed_judgment"
    return None


_NOTHING = object()
_RECORD_PARSERS = {"nts_casebook": casebook_document, "seed_judgment": seed_judgment_document}
# Formats whose files are one JSON array of records: dumps.py streams them item by item.
ARRAY_FORMATS = ("auto", *_RECORD_PARSERS)


def _describe(parsed: Any) -> str:
    if isinstance(parsed, dict):
        return "an object with keys " + ", ".join(list(map(str, parsed))[:6])
    if isinstance(parsed, list):
        first = parsed[0] if parsed else None
        keys = ", ".join(list(map(str, first))[:6]) if isinstance(first, dict) else type(first).__name__
        return f"a list of {len(parsed)} ({keys})"
    return type(parsed).__name__


def documents_from_text(text: str, *, fmt: str = "auto", source: str) -> Iterator[Document]:
    """Every document in one decoded file; InputProblem (with a position) when the file is not usable."""
    head = text.lstrip("\ufeff \t\r\n")
    if not head:
        raise InputProblem("no content (only whitespace)")
    if fmt == "statute_units" or (fmt == "auto" and head[:1] == "{" and _first_row_is_unit(head)):
        for where, response in grouped_responses(iter(text.split("\n"))):
            yield from parse_law(response, source=source, where=where)
        return
    if fmt == "precedent_md" or (fmt == "auto" and head.startswith("---")):
        yield parse_precedent_markdown(head, source=source)
        return
    if head.startswith("<"):
        if is_html(head):
            raise InputProblem(f"law.go.kr error page, not data: {html_error(head)[1]}")
        parsed = xml_to_dict(head)
    elif head[:1] in "{[":
        parsed = _load_json(head)
    else:
        raise InputProblem("unrecognised content (not JSON, XML, JSON lines or Markdown with front matter)", "line 1")
    error = envelope_error(parsed)
    if error is not None:
        raise InputProblem(f"a law.go.kr error response, not data: {error[1]}")
    if isinstance(parsed, dict) and _LIST_ROOTS & parsed.keys():
        raise InputProblem("a lawSearch.do list response: it holds no document text (fetch the details)")
    shape = _shape_of(parsed)
    if fmt != "auto" and shape != fmt:
        raise InputProblem(f"format is set to {fmt}, but the file is {_describe(parsed)}")
    if shape == "lawgo_law":
        yield from parse_law(parsed, source=source)
    elif shape == "lawgo_prec":
        yield parse_prec(parsed, source=source)
    elif shape == "lawgo_expc":
        yield parse_expc(parsed, source=source)
    elif isinstance(parsed, list):
        yield from documents_from_items(parsed, fmt=fmt, source=source)
    else:
        raise InputProblem(f"unrecognised shape: {_describe(parsed)}")


def documents_from_items(items: Iterable[Any], *, fmt: str = "auto", source: str) -> Iterator[Document]:
    """The documents of a JSON array of records (casebook, seed judgment), read one record at a time.

    The shape is decided by the first record, so the array can be streamed (dumps.py); a later record that is
    not an object, or lacks what its shape needs, raises InputProblem naming its index.
    """
    items = iter(items)
    first = next(items, _NOTHING)
    if first is _NOTHING:
        raise InputProblem("an empty list: no records")
    shape = _shape_of([first])
    described = f"a list whose first item is {_describe(first) if isinstance(first, dict) else type(first).__name__}"
    if fmt != "auto" and shape != fmt:
        raise InputProblem(f"format is set to {fmt}, but the file is {described}")
    parse = _RECORD_PARSERS.get(shape or "")
    if parse is None:
        raise InputProblem(f"unrecognised shape: {described}")
    for index, record in enumerate(itertools.chain([first], items)):
        yield parse(record, index, source=source)
