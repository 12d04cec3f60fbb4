"""The grammar of a Korean number with money units, read at one position of a text.

Korean groups digits by 10^4 (만, 억, 조). Inside a group a writer may use Arabic digits ("5,000만"), small units
with digit coefficients ("2천5백만"), Hangul numerals ("오천만", "삼십오만"), decimals ("1.5억") or a small unit in
front of a group unit that then works as a multiplier ("620백만" = 620×100×10^4, "1,500천원" = 1,500×1,000).
A coefficient of one may be left out before 십/백/천 and before a leading 만 ("천만원", "만오천원"), never before 억
or 조 ("억원" alone is the tail of "수억원", several hundred million, not an amount).

`read_number(text, pos)` returns the longest amount that starts exactly at `pos` (a `NumberReading`), or None. It
knows nothing about context (signs, 약, tables, whether the figure is money at all): amounts.py decides that.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from decimal import Decimal

GROUP_UNITS: dict[str, int] = {"조": 10**12, "억": 10**8, "만": 10**4}
SMALL_UNITS: dict[str, int] = {"천": 1000, "백": 100, "십": 10}
HANGUL_DIGITS: dict[str, int] = {
    "일": 1,
    "이": 2,
    "삼": 3,
    "사": 4,
    "오": 5,
    "육": 6,
    "륙": 6,
    "칠": 7,
    "팔": 8,
    "구": 9,
}
# Characters an amount written in Hangul can start with ("만원", "천만원", "오백만원", "십억").
HANGUL_STARTS = frozenset(HANGUL_DIGITS) | frozenset(SMALL_UNITS) | {"만"}

_DIGITS_RE = re.compile(r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?")
# One horizontal space may sit between the parts of an amount ("3 억 2천만 원"); a line break never does.
_SPACE = frozenset(" \t\u00a0\u3000")
_WON_RE = re.compile(r"[ \t\u00a0\u3000]?원(?!칙)")  # "3원칙" (three principles) is not money


@dataclass(frozen=True)
class NumberReading:
    """One amount as written: `value` in won (before any sign or table unit), text[start:end] its span."""

    start: int
    end: int  # after 원 when has_won, else after the last unit or digit
    value: Decimal
    has_won: bool
    group_units: tuple[int, ...]  # 10^12/10^8/10^4 for each 조/억/만 group, largest first; () for "12,345원"
    plain: bool  # digits only, no unit at all ("12,345", "2024")
    hangul: bool  # starts with a Hangul numeral or unit ("오천만원", "만원")
    about: bool = False  # "3억여 원", "100여만원": a little over, i.e. approximate


@dataclass(frozen=True)
class _Chunk:
    """The multiplier of one group: "2천5백" = 2500, "삼십오" = 35, "1,500" = 1500, "620백" = 62000."""

    value: Decimal
    end: int
    has_small: bool  # carries 천/백/십
    plain: bool  # one run of Arabic digits and nothing else


def _skip_space(text: str, pos: int) -> int:
    return pos + 1 if pos < len(text) and text[pos] in _SPACE else pos


def _read_coefficient(text: str, pos: int) -> tuple[Decimal, int, bool] | None:
    """(value, end, is_arabic) of the digits or the one Hangul digit at pos."""
    match = _DIGITS_RE.match(text, pos)
    if match:
        return Decimal(match.group(0).replace(",", "")), match.end(), True
    if pos < len(text) and text[pos] in HANGUL_DIGITS:
        return Decimal(HANGUL_DIGITS[text[pos]]), pos + 1, False
    return None


def _followed_by_unit_or_won(text: str, pos: int) -> bool:
    return pos < len(text) and (text[pos] in GROUP_UNITS or text[pos] == "원" or text[pos] == "여")


def _read_chunk(text: str, pos: int) -> _Chunk | None:
    """Items "coefficient? small-unit" with strictly falling units, then an optional last coefficient."""
    value, end, has_small, last_unit, items = Decimal(0), pos, False, 10**4, 0
    while True:
        # A space may separate items that carry a unit ("2천 5백만"), never a bare trailing digit ("5천 3억").
        at = _skip_space(text, end) if items else end
        coefficient = _read_coefficient(text, at)
        unit_at = at if coefficient is None else coefficient[1]
        if coefficient is not None and coefficient[2]:
            unit_at = _skip_space(text, unit_at)  # "3 천만원"
        unit = SMALL_UNITS.get(text[unit_at]) if unit_at < len(text) else None
        if unit is not None and unit < last_unit:
            number = Decimal(1) if coefficient is None else coefficient[0]
            # Only the first item may be a large or decimal coefficient ("620백만", "1.5천만"): "2천15백" is not Korean.
            if items and (number >= 10 or number != number.to_integral_value()):
                break
            value, end, has_small, last_unit, items = value + number * unit, unit_at + 1, True, unit, items + 1
            continue
        if coefficient is None or at != end:
            break
        number, coefficient_end, arabic = coefficient
        if items and number >= last_unit:
            break  # "2천5백35" closes with 35 < 100; "2천5백350" is not one number
        if not arabic and not _followed_by_unit_or_won(text, coefficient_end):
            break  # a Hangul digit closing a chunk must be money-bound: "일억오천이다" is 1억5천, not 1억5천2
        value, end, items = value + number, coefficient_end, items + 1
        return _Chunk(value, end, has_small, plain=arabic and items == 1)
    if not items:
        return None
    return _Chunk(value, end, has_small, plain=False)


def _read_group(text: str, pos: int, first: bool, last_unit: int) -> tuple[_Chunk | None, int, int, bool] | None:
    """(chunk, group unit, end, about) for "chunk 여? group-unit" at pos, or None. A bare 만 only leads ("만오천원")."""
    chunk = _read_chunk(text, pos)
    at, about = pos, False
    if chunk is not None:
        at = chunk.end
        if at < len(text) and text[at] == "여":  # "100여만원", "3천여만원"
            about, at = True, at + 1
        elif chunk.has_small or text[at - 1].isdigit():
            at = _skip_space(text, at)  # "3 억", "5천 만원"; never after a lone Hangul digit ("이 만원짜리" = this one)
    if at >= len(text) or text[at] not in GROUP_UNITS:
        return None
    if chunk is None and not (first and text[at] == "만"):
        return None
    unit = GROUP_UNITS[text[at]]
    multiplier = Decimal(1) if chunk is None else chunk.value
    # After a larger group a group holds less than 10^4 of its unit ("1억 5,000만"): "20억 5억" is two amounts.
    if unit >= last_unit or (not first and multiplier >= 10**4):
        return None
    return chunk, unit, at + 1, about


def read_number(text: str, pos: int) -> NumberReading | None:
    """The longest amount starting exactly at `pos`: groups, an optional tail below 만, 여, and 원."""
    value, end, units, about = Decimal(0), pos, [], False
    last_unit = 10**16
    while True:
        at = _skip_space(text, end) if units else end
        group = _read_group(text, at, first=not units, last_unit=last_unit)
        if group is None:
            break
        chunk, unit, group_end, group_about = group
        value += (Decimal(1) if chunk is None else chunk.value) * unit
        end, last_unit, about = group_end, unit, about or group_about
        units.append(unit)
        if group_about:
            break
    tail = None if about else _read_chunk(text, _skip_space(text, end) if units else end)
    if tail is not None and units:
        won_after_tail = _WON_RE.match(text, tail.end) is not None
        if tail.value >= 10**4 or (tail.plain and not won_after_tail):
            tail = None  # "1억 2,345원" closes with digits only before 원; "2억 10%" does not
        elif not won_after_tail and last_unit > 10**4:
            # Spoken ellipsis: "3억5천" is 3억 5천만, "1조5천" is 1조 5천억 (the unit one step down is left out).
            tail = _Chunk(tail.value * last_unit // 10**4, tail.end, tail.has_small, tail.plain)
    if tail is not None:
        value, end = value + tail.value, tail.end
    hangul = text[pos] in HANGUL_STARTS
    if end == pos or (hangul and not units and not tail.has_small):
        return None  # a Hangul digit needs a unit: "사원" is an employee and "구원" salvation, not 4 or 9 won
    if not about and end < len(text) and text[end] == "여" and (units or tail is not None and tail.has_small):
        about, end = True, end + 1  # "3억여 원", "5천여 원"
    won = _WON_RE.match(text, end)
    plain = not units and tail is not None and tail.plain
    return NumberReading(
        start=pos,
        end=won.end() if won else end,
        value=value,
        has_won=won is not None,
        group_units=tuple(units),
        plain=plain,
        hangul=hangul,
        about=about,
    )
