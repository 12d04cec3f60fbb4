"""Tables whose figures are in a stated unit: "(단위: 천원)", "[단위 : 백만원]", a line ending "단위: 원".

Financial statements and NTS tables print bare numbers under such a header: "| 매출액 | 1,500 |" under "(단위: 천원)"
is 1,500,000 won. A header governs the text after it up to the end of its table: leading blank lines are skipped,
then the scope runs to the first blank line, the next header, or the end of the text. In a Markdown table, columns
whose heading names a rate, a year or a count ("세율(%)", "연도", "인원") hold no money and are left out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_datagen.taxlaw.korean_numbers import read_number

_UNIT_HEADER_RE = re.compile(
    r"[(\[（［]\s*단위\s*[:：]?\s*(?P<paren>[^()\[\]（）［］\n]{1,10}?)\s*[)\]）］]"
    r"|(?:^|(?<=[ \t]))단위\s*[:：]\s*(?P<line>[^\s,.]{1,8}(?:[ \t]원)?)[ \t]*$",
    re.MULTILINE,
)
_UNIT_WORDS = {"원": 1, "억원": 10**8, "조원": 10**12}  # a bare 억 or 조 is no amount by itself; as a unit it is one
_BLANK_LINE_RE = re.compile(r"\n[ \t]*\n")
# Headings of table columns that hold no money: rates, years, counts, numbering.
_NON_MONEY_HEADINGS = (
    "율",
    "%",
    "연도",
    "년도",
    "귀속",
    "번호",
    "순번",
    "No",
    "no.",
    "인원",
    "수량",
    "개수",
    "건수",
    "기간",
)


@dataclass(frozen=True)
class UnitHeader:
    start: int
    end: int
    unit_won: int  # 1,000 for 천원, 1,000,000 for 백만원


@dataclass(frozen=True)
class TableScope:
    """Where bare numbers mean `unit_won` each: text[start:end], minus the cells in `skipped` (start, end) spans."""

    start: int
    end: int
    unit_won: int
    skipped: tuple[tuple[int, int], ...] = ()

    def covers(self, pos: int) -> bool:
        return self.start <= pos < self.end and not any(a <= pos < b for a, b in self.skipped)


def _unit_won(unit: str) -> int | None:
    unit = unit.replace(" ", "").replace("\t", "")
    if unit in _UNIT_WORDS:
        return _UNIT_WORDS[unit]
    reading = read_number(unit, 0)
    if reading is None or not reading.has_won or reading.end != len(unit) or reading.value <= 0:
        return None
    return int(reading.value) if reading.value == reading.value.to_integral_value() else None


def unit_headers(text: str) -> list[UnitHeader]:
    """Every "(단위: …원)" header in `text` whose unit is an amount of won; "(단위: %)" and "(단위: 명)" are not."""
    headers = []
    for match in _UNIT_HEADER_RE.finditer(text):
        unit = _unit_won(match["paren"] or match["line"] or "")
        if unit is not None:
            headers.append(UnitHeader(match.start(), match.end(), unit))
    return headers


def _non_money_cells(text: str, start: int, end: int) -> tuple[tuple[int, int], ...]:
    """Spans of the cells under non-money headings in the first Markdown table of text[start:end]."""
    skipped: list[tuple[int, int]] = []
    columns: set[int] | None = None
    pos = start
    for line in text[start:end].split("\n"):
        line_start, pos = pos, pos + len(line) + 1
        stripped = line.strip()
        if not stripped.startswith("|"):
            continue
        cells, offset = [], line_start + line.index("|") + 1
        for cell in stripped[1:].split("|"):
            cells.append((cell, offset, offset + len(cell)))
            offset += len(cell) + 1
        if columns is None:  # the heading row
            columns = {i for i, (cell, _, _) in enumerate(cells) if any(h in cell for h in _NON_MONEY_HEADINGS)}
            skipped.extend((a, b) for _, a, b in cells)  # headings are labels, never figures
            continue
        skipped.extend((a, b) for i, (_, a, b) in enumerate(cells) if i in columns)
    return tuple(skipped)


def table_scopes(text: str, headers: list[UnitHeader]) -> list[TableScope]:
    """The stretch of text each header governs (see the module docstring)."""
    scopes = []
    for i, header in enumerate(headers):
        start = header.end
        while start < len(text) and text[start] in " \t\r\n":
            start += 1
        limit = headers[i + 1].start if i + 1 < len(headers) else len(text)
        blank = _BLANK_LINE_RE.search(text, start, limit)
        end = blank.start() if blank else limit
        # The header's own line may carry a caption; the table proper starts on a later line.
        scopes.append(TableScope(header.end, end, header.unit_won, _non_money_cells(text, start, end)))
    return scopes
