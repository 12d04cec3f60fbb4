"""law.go.kr XML -> the dict shape its JSON has, so one parser serves both.

The JSON the API sends is a mechanical image of its XML: an element becomes a key, repeated sibling elements become
a list (a single one stays a dict — the list-vs-dict quirk), an element with attributes and text becomes
`{"content": text, <attr>: value}` (`"소관부처": {"content": "재정경제부", "소관부처코드": "1053000"}`), and
attributes of an element with children become keys beside them (`<조문단위 조문키="…">` -> `"조문키"`). Doing the same
here means a saved XML response and a JSON response of the same law give identical documents.

Parsing uses the standard library's expat-based ElementTree: expat >= 2.4.1 (bundled with supported Pythons)
refuses entity-expansion bombs, and the API never sends DTDs, so defusedxml is not needed.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from typing import Any

from slm_datagen.collect.problems import InputProblem


def _convert(element: ET.Element) -> Any:
    children = list(element)
    if not children:
        text = element.text or ""
        return {"content": text, **element.attrib} if element.attrib else text
    grouped: dict[str, list[Any]] = {}
    for child in children:
        grouped.setdefault(child.tag, []).append(_convert(child))
    out: dict[str, Any] = dict(element.attrib)
    for tag, values in grouped.items():
        out[tag] = values if len(values) > 1 else values[0]
    return out


# expat's reasons when the text stops before the document does (a cut-off download or copy).
_TRUNCATED = ("no element found", "unclosed token", "unclosed CDATA section")


def xml_to_dict(text: str) -> dict[str, Any]:
    """`{root_tag: converted}`; malformed XML raises InputProblem with line and column."""
    try:
        root = ET.fromstring(text)
    except ET.ParseError as exc:
        line, column = exc.position
        reason = str(exc).split(":")[0]
        kind = "truncated" if reason in _TRUNCATED and text.strip() else "malformed"
        raise InputProblem(f"{kind} XML ({reason})", f"line {line}, column {column + 1}") from None
    return {root.tag: _convert(root)}
