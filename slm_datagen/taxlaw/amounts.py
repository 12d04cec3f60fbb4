"""Korean money notation <-> whole won.

Korean amounts group digits by 10^4: "6억 2,000만원" is 6×10^8 + 2,000×10^4 = 620,000,000 won. Every common way of
writing them is read (the grammar is in korean_numbers.py): thousands commas ("1,500,000원"), digits with units
("2천5백만원", "3억 2천5백만", "1억 5,000만원"), decimals ("6.4억"), Hangul numerals ("일억오천만원", "삼십오만원",
"십억"), units as multipliers ("620백만원" = 6억 2,000만, "1,500천원"), spaces inside ("3 억 2천만 원"), the formal
"금 오천만원정", the spoken "3억5천" (= 3억 5천만) and tables headed "(단위: 천원)" (amount_tables.py).

    parse_won("1억 5,000만원")  -> 150_000_000
    format_won(620_000_000)     -> "6억 2,000만원"
    find_amounts("증여세는 약 6억 2,000만원이다")
        -> [AmountMention(text="6억 2,000만원", won=620_000_000, approximate=True, ...)]

A minus is "△", "(-)", "마이너스" or a "-"/"−" glued to the number where it cannot be a subtraction ("= -500만원",
not "20억원 -5억원"); it is part of the mention's span. 약/대략/얼추 before and 가량/정도/쯤/내외/안팎/남짓/여 after
mark the mention `approximate` and stay outside the span, like 이하/이상/초과/미만 (`qualifier`).

`find_amounts` is the free-text scanner used by the dataset checks, so it errs on the side of *not* calling something
money. A mention counts when it ends in 원 (or follows ₩), carries an 억 group ("20억", "6.4억"), is the lower end of
a range whose upper end counts ("300만~500만원", "3~5억원" = 3억 to 5억), sits in a table under a unit header, or is a
만/조 figure right after a money word ("연봉 5천만"). So "150만 명", "오천만 국민", "제1조", "2024년", "10%", "3명",
"수억원" and "천원 단위" are never money. `parse_won` reads one string the caller already knows is an amount.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.amount_tables import TableScope, table_scopes, unit_headers
from slm_datagen.taxlaw.korean_numbers import (
    GROUP_UNITS,
    HANGUL_STARTS,
    SMALL_UNITS,
    NumberReading,
    read_number,
)

__all__ = [
    "GROUP_UNITS",
    "QUALIFIERS",
    "SMALL_UNITS",
    "AmountMention",
    "find_amounts",
    "format_won",
    "parse_amount",
    "parse_won",
]

# Words that bound an amount ("1,400만원 이하" = up to 14,000,000 won). Kept on the mention, not in the value.
QUALIFIERS = ("이하", "이상", "초과", "미만")

_QUALIFIER_RE = re.compile(r"\s?(" + "|".join(QUALIFIERS) + r")")
_APPROX_BEFORE_RE = re.compile(r"(?<![가-힣])(?:약|대략|대충|얼추|어림잡아)\s?$")
_APPROX_AFTER_RE = re.compile(r"\s?(?:가량|정도|쯤|내외|안팎|남짓)")
_MINUS_WORD_RE = re.compile(r"(?:△|\(\s*[-−△]\s*\)|마이너스)[ \t]?$")
_WON_SIGN_RE = re.compile(r"(?:₩|￦|KRW)\s?$")
_ARTICLE_PREFIX_RE = re.compile(r"제\s?$")  # "제1조", "제 53조": an article, never 1조 won
_UNIT_NOTE_RE = re.compile(r"\s?단위")  # "천원 단위 절사", "만원 단위로": a rounding unit, not a figure
_RANGE_RE = re.compile(r"[ \t]?[~∼〜\-–—][ \t]?")
_START_RE = re.compile(r"(?<![\d.,])\d|[" + "".join(sorted(HANGUL_STARTS)) + "]")
# Hangul syllables that may sit right before a Hangul-numeral amount: 금 오천만원정, 총천만원, 월 … . Any other
# syllable means the numeral is part of a word ("수천만원" = tens of millions, "이천시").
_HANGUL_PREFIXES = frozenset("금약총월연각")
# Before a minus glued to a number these mean a subtraction or a range, not a sign: "20억원-5억원", "40%−1.6억".
_NOT_BEFORE_SIGN = set("0123456789%)]원조억만천백십×x*+/÷-−~")
_MONEY_WORDS = re.compile(
    "연봉|월급|급여|소득|매출|금액|세액|세금|가액|과세표준|공제|보증금|월세|전세|비용|경비|이자|배당|증여|상속|시가|"
    "대출|차익|수입|원금|가격|대금|환급|납부|벌금|예금|적금|재산|연금|퇴직금|수당|상여|임대료|기부금|의료비|교육비|"
    "보험료|분양가|잔금|계약금|채무|손실|이익|차액|과태료|가산세"
)
_COUNTERS = ("명", "개", "건", "대", "가구", "회", "호", "마리", "권", "장", "표", "평", "톤", "세대", "배", "주", "인")
_PARTICLE_STARTS = frozenset("이가을를은는에의으로과와도씩쯤정인만")
_YEAR_RE = re.compile(r"(?:19|20)\d\d")


class AmountMention(BaseModel):
    """One money amount found in free text. `start`/`end` index the original string (end exclusive)."""

    model_config = ConfigDict(frozen=True)

    text: str
    won: int
    start: int
    end: int
    qualifier: str | None = None  # 이하 / 이상 / 초과 / 미만 right after the amount
    approximate: bool = False  # 약 3억, 3억 원가량, 3억여 원, 대략 …, … 정도
    table_unit: int | None = None  # the "(단위: 천원)" multiplier applied to a bare table figure, else None

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


def _to_int_won(value: Decimal, text: str) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"amount {text!r} is not a whole number of won ({value})")
    return int(value)


def _sign_start(text: str, start: int) -> int | None:
    """Where the minus in front of text[start:] begins, or None when the amount is not negative."""
    word = _MINUS_WORD_RE.search(text, max(0, start - 8), start)
    if word:
        return word.start()
    if start and text[start - 1] in "-−":
        before = start - 2
        while before >= 0 and text[before] in " \t":
            before -= 1
        if before < 0 or text[before] not in _NOT_BEFORE_SIGN:
            return start - 1
    return None


def _hangul_start_allowed(text: str, pos: int) -> bool:
    if not pos:
        return True
    before = text[pos - 1]
    if before.isdigit() or before in ".,":
        return False
    return not ("가" <= before <= "힣") or before in _HANGUL_PREFIXES


def _readings(text: str) -> list[NumberReading]:
    """Every number with or without units, left to right, not overlapping. Money or not is decided later."""
    out: list[NumberReading] = []
    pos = 0
    while (match := _START_RE.search(text, pos)) is not None:
        start = match.start()
        reading = None
        if text[start].isdigit() or _hangul_start_allowed(text, start):
            reading = read_number(text, start)
        if reading is None:
            pos = start + 1
            continue
        if reading.group_units[:1] == (GROUP_UNITS["조"],) and _ARTICLE_PREFIX_RE.search(
            text, max(0, start - 2), start
        ):
            pos = text.index("조", start) + 1  # skip the article number only: "제1조 2억원" still holds 2억원
            continue
        out.append(reading)
        pos = reading.end
    return out


def _money_word_before(text: str, start: int) -> bool:
    window = text[max(0, start - 20) : start]
    window = re.split(r"[.!?。\n]", window)[-1]
    return _MONEY_WORDS.search(window) is not None


def _counter_after(text: str, end: int) -> bool:
    rest = text[end : end + 4].lstrip(" ")
    return rest.startswith(_COUNTERS)


def _is_money(text: str, reading: NumberReading) -> bool:
    """Without a table: 원/₩, an 억 group, or a 만/조 figure after a money word, ending at a particle or a space."""
    if reading.has_won or _WON_SIGN_RE.search(text, max(0, reading.start - 4), reading.start):
        return True
    if GROUP_UNITS["억"] in reading.group_units:
        return True
    if not reading.group_units or text[reading.start] == "만":
        return False  # a bare 만 is "만 19세" (full age) or 만약 (if) far more often than 10,000 won
    after = text[reading.end : reading.end + 1]
    if "가" <= after <= "힣" and after not in _PARTICLE_STARTS:
        return False  # "백만장자", "천만다행": the numeral is part of a word
    return _money_word_before(text, reading.start) and not _counter_after(text, reading.end)


def _bare_table_figure(text: str, reading: NumberReading, scope: TableScope) -> bool:
    """A unit-less number standing alone in a table cell or between spaces ("| 1,500 |", "매출 1,500, 매입 800")."""
    before = text[reading.start - 1] if reading.start else "\n"
    after = text[reading.end] if reading.end < len(text) else "\n"
    if not scope.covers(reading.start) or _YEAR_RE.fullmatch(text, reading.start, reading.end):
        return False
    return before in " \t\n|(△-−" and after in " \t\r\n|),;" and not _counter_after(text, reading.end)


def _mention(text: str, reading: NumberReading, value: Decimal, table_unit: int | None) -> AmountMention | None:
    start = reading.start
    sign_start = _sign_start(text, start)
    if table_unit is not None and start and text[start - 1] == "(" and text[reading.end : reading.end + 1] == ")":
        sign_start = start  # "(1,500)" in a table: accountants' minus; the parentheses stay outside the span
    if sign_start is not None:
        value, start = -value, sign_start
    try:
        won = _to_int_won(value, text[start : reading.end])
    except ValueError:
        return None  # "0.123원": not a real amount of money
    end = reading.end
    approximate = reading.about or _APPROX_BEFORE_RE.search(text, max(0, start - 6), start) is not None
    after = _APPROX_AFTER_RE.match(text, end)
    if after:
        approximate = True
    qualifier = _QUALIFIER_RE.match(text, after.end() if after else end)
    return AmountMention(
        text=text[start:end],
        won=won,
        start=start,
        end=end,
        qualifier=qualifier.group(1) if qualifier else None,
        approximate=approximate,
        table_unit=table_unit,
    )


def find_amounts(text: str) -> list[AmountMention]:
    """Every money amount in `text`, left to right, with its span, 약-style approximation and 이하-style qualifier."""
    headers = unit_headers(text)
    scopes = table_scopes(text, headers)
    readings = [
        r
        for r in _readings(text)
        if not any(h.start <= r.start < h.end for h in headers) and not (r.has_won and _UNIT_NOTE_RE.match(text, r.end))
    ]
    values = [r.value for r in readings]
    money = [_is_money(text, r) for r in readings]
    for i in range(len(readings) - 1):  # "300만~500만원", "3~5억원": the lower end borrows the upper end's standing
        low, high = readings[i], readings[i + 1]
        if money[i] or not money[i + 1] or not _RANGE_RE.fullmatch(text, low.end, high.start):
            continue
        if not low.group_units and high.group_units:
            values[i] = low.value * high.group_units[0]  # "3~5억원": the 3 is 3억
        money[i] = bool(low.group_units) or bool(high.group_units)
    mentions = []
    for reading, value, is_money in zip(readings, values, money):
        table_unit = None
        if not is_money and reading.plain:
            scope = next((s for s in scopes if _bare_table_figure(text, reading, s)), None)
            if scope is not None:
                is_money, table_unit, value = True, scope.unit_won, value * scope.unit_won
        mention = _mention(text, reading, value, table_unit) if is_money else None
        if mention is not None:
            mentions.append(mention)
    return mentions


_PREFIX_RE = re.compile(r"^(?:(?:약|대략|대충|얼추|어림잡아|금|총|₩|￦|KRW)\s?)+")
_SUFFIX_RE = re.compile(r"(?:\s?(?:정|가량|정도|쯤|내외|안팎|남짓|" + "|".join(QUALIFIERS) + r"))+$")
_LEADING_MINUS_RE = re.compile(r"(?:△|\(\s*[-−△]\s*\)|마이너스|[-−])\s?")
_APPROX_WORD_RE = re.compile(r"약|대략|대충|얼추|어림잡아|가량|정도|쯤|내외|안팎|남짓")


def parse_amount(value: str) -> AmountMention:
    """Read one string that is a single amount ("약 1억 5,000만원", "△1,000만원", "금 오천만원정") as a mention.

    The span is the whole string. Raises ValueError unless the string is exactly one amount.
    """
    text = value.strip()
    prefix = _PREFIX_RE.match(text)
    core = text[prefix.end() :] if prefix else text
    suffix = _SUFFIX_RE.search(core)
    words = (prefix.group(0) if prefix else "") + (suffix.group(0) if suffix else "")
    core = (core[: suffix.start()] if suffix else core).strip()
    sign = 1
    minus = _LEADING_MINUS_RE.match(core)
    if minus:
        sign, core = -1, core[minus.end() :]
    reading = read_number(core, 0) if core else None
    if reading is None or reading.end != len(core):
        raise ValueError(f"not a single amount: {value!r}")
    qualifier = next((q for q in QUALIFIERS if q in (suffix.group(0) if suffix else "")), None)
    return AmountMention(
        text=text,
        won=sign * _to_int_won(reading.value, value),
        start=0,
        end=len(text),
        qualifier=qualifier,
        approximate=reading.about or _APPROX_WORD_RE.search(words) is not None,
    )


def parse_won(value: str | int) -> int:
    """Parse one amount ("1억 5,000만원", "6.4억", "1,400만원 이하", "12,345원", "일억오천만") into whole won.

    Accepts an int unchanged (payloads mix both). Signs, 약/금 prefixes, 정/가량 and 이하/이상/초과/미만 suffixes are
    read as parse_amount reads them. Raises ValueError unless the whole string is one amount.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not an amount: {value!r}")
    return parse_amount(value).won


def format_won(won: int) -> str:
    """620_000_000 -> "6억 2,000만원"; 1_950_000_000 -> "19억 5,000만원"; 12_345 -> "12,345원"; 0 -> "0원".

    Groups of 10^4 with thousands commas inside each group, the common style of NTS guides and answers; below
    10만원 the plain comma form. `parse_won(format_won(n)) == n` for every int.
    """
    if isinstance(won, bool) or not isinstance(won, int):
        raise TypeError(f"format_won needs an int, got {won!r}")
    sign = "-" if won < 0 else ""
    rest = abs(won)
    if rest < 100_000:  # "12,345원", not "1만 2,345원": small sums are written plainly
        return f"{sign}{rest:,}원"
    parts: list[str] = []
    for unit, size in GROUP_UNITS.items():  # 조, 억, 만: insertion order is largest first
        count, rest = divmod(rest, size)
        if count:
            parts.append(f"{count:,}{unit}")
    if rest:
        parts.append(f"{rest:,}")
    return sign + " ".join(parts) + "원"
