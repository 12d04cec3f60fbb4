"""Korean money notation <-> whole won.

Korean amounts group digits by 10^4, not 10^3: "6억 2,000만원" is 6×10^8 + 2,000×10^4 = 620,000,000 won. Writers mix
Arabic digits, thousands commas, decimals ("6.4억") and the small units 천/백/십 inside a group ("5천만원" = 5×1,000×10^4).

    parse_won("1억 5,000만원")  -> 150_000_000
    format_won(620_000_000)     -> "6억 2,000만원"
    find_amounts("증여세는 6억 2,000만원이다")  -> [AmountMention(text="6억 2,000만원", won=620_000_000, ...)]

`find_amounts` is the free-text scanner used by the dataset checks, so it errs on the side of *not* calling something
money: a mention counts only when it ends in 원 or carries an 억 group ("20억", "6.4억"). Bare "150만" (could be
150만 명) or "1조" (could be 제1조) without 원 are skipped; `parse_won` still accepts them when the caller already
knows the string is an amount. Percentages, years ("2024년"), article numbers ("제26조") and counts ("3회") never
carry a money unit and so are never matched.
"""

from __future__ import annotations

import re
from decimal import Decimal

from pydantic import BaseModel, ConfigDict

# Powers of ten for the 10^4-grouping units and for the small multipliers used inside a group.
GROUP_UNITS: dict[str, int] = {"조": 10**12, "억": 10**8, "만": 10**4}
SMALL_UNITS: dict[str, int] = {"천": 1000, "백": 100, "십": 10}

# Words that bound an amount ("1,400만원 이하" = up to 14,000,000 won). Kept on the mention, not in the value.
QUALIFIERS = ("이하", "이상", "초과", "미만")

_NUMBER = r"\d{1,3}(?:,\d{3})+(?:\.\d+)?|\d+(?:\.\d+)?"

# One group of an amount: "20억", "5천만", "1,500만", "6.4억", "천만" (a bare 천/백 means one), or a plain number.
# The number must not continue a longer number or decimal on its left ("1.5억" is not "5억").
_TERM_RE = re.compile(
    rf"(?<![\d.,])(?:(?P<num>{_NUMBER})(?P<small>[천백십])?(?P<group>[조억만])?|(?P<bare_small>[천백])(?P<bare_group>[조억만]))"
)
_WON_RE = re.compile(r"\s?원")
_QUALIFIER_RE = re.compile(r"\s?(" + "|".join(QUALIFIERS) + r")")
# "제1조", "제 1조": an article number, never 1조 won. ("공제 1억원" must still count, hence the 조 check below.)
_ARTICLE_PREFIX_RE = re.compile(r"제\s?$")


class AmountMention(BaseModel):
    """One money amount found in free text. `start`/`end` index the original string (end exclusive)."""

    model_config = ConfigDict(frozen=True)

    text: str
    won: int
    start: int
    end: int
    qualifier: str | None = None  # 이하 / 이상 / 초과 / 미만 right after the amount

    @property
    def span(self) -> tuple[int, int]:
        return (self.start, self.end)


class _Term:
    __slots__ = ("start", "end", "value", "group_unit", "is_plain")

    def __init__(self, match: re.Match[str]) -> None:
        self.start, self.end = match.span()
        num, small, group = match["num"], match["small"], match["group"]
        if num is None:  # "천만": the multiplier alone means one of it
            number, small, group = Decimal(1), match["bare_small"], match["bare_group"]
        else:
            number = Decimal(num.replace(",", ""))
        value = number * SMALL_UNITS.get(small or "", 1) * GROUP_UNITS.get(group or "", 1)
        self.value = value
        self.group_unit = GROUP_UNITS.get(group or "", 1)
        self.is_plain = small is None and group is None  # "12,345" with no unit at all


def _to_int_won(value: Decimal, text: str) -> int:
    if value != value.to_integral_value():
        raise ValueError(f"amount {text!r} is not a whole number of won ({value})")
    return int(value)


def _scan(text: str) -> list[tuple[list[_Term], int, bool]]:
    """Group adjacent terms into amounts: [(terms, end_after_원, has_원)].

    Terms join when at most one whitespace separates them and the group units strictly decrease ("6억 4,000만"),
    so "20억 5억" stays two amounts. A unit-less number may only close an amount that ends in 원 ("1억 2,345원").
    """
    out: list[tuple[list[_Term], int, bool]] = []
    terms = [_Term(m) for m in _TERM_RE.finditer(text)]
    i = 0
    while i < len(terms):
        first = terms[i]
        if first.is_plain:
            won = _WON_RE.match(text, first.end)
            if won:
                out.append(([first], won.end(), True))
            i += 1
            continue
        group = [first]
        j = i + 1
        while j < len(terms):
            nxt, last = terms[j], group[-1]
            gap = text[last.end : nxt.start]
            if len(gap) > 1 or (gap and not gap.isspace()) or nxt.group_unit >= last.group_unit:
                break
            if nxt.is_plain and not _WON_RE.match(text, nxt.end):
                break
            group.append(nxt)
            j += 1
            if nxt.is_plain:
                break
        end = group[-1].end
        won = _WON_RE.match(text, end)
        out.append((group, won.end() if won else end, bool(won)))
        i = j
    return out


def find_amounts(text: str) -> list[AmountMention]:
    """Every money amount in `text`, left to right, with its span and a trailing 이하/이상/초과/미만 if present."""
    mentions: list[AmountMention] = []
    for terms, end, has_won in _scan(text):
        start = terms[0].start
        if terms[0].group_unit == GROUP_UNITS["조"] and _ARTICLE_PREFIX_RE.search(text[max(0, start - 2) : start]):
            continue  # 제1조 … is an article, not 1조 won
        # Without 원, only an amount with an 억 group is unambiguous money ("20억", "1조 2,000억"):
        # "150만" may count people and a lone "1조" may be an article fragment.
        if not has_won and not any(t.group_unit == GROUP_UNITS["억"] for t in terms):
            continue
        raw = text[start:end]
        try:
            won = _to_int_won(sum((t.value for t in terms), Decimal(0)), raw)
        except ValueError:
            continue  # "0.123원": not a real amount of money
        qualifier = _QUALIFIER_RE.match(text, end)
        mentions.append(
            AmountMention(text=raw, won=won, start=start, end=end, qualifier=qualifier.group(1) if qualifier else None)
        )
    return mentions


def parse_won(value: str | int) -> int:
    """Parse one amount ("1억 5,000만원", "6.4억", "1,400만원 이하", "12,345원") into whole won.

    Accepts an int unchanged (payloads mix both). A leading "-" or "△" (Korean accounting minus) negates; "약"/"금"
    prefixes and a trailing 이하/이상/초과/미만 are ignored. Raises ValueError unless the whole string is one amount.
    """
    if isinstance(value, bool):
        raise ValueError("a boolean is not an amount")
    if isinstance(value, int):
        return value
    if not isinstance(value, str):
        raise ValueError(f"not an amount: {value!r}")
    text = value.strip()
    sign = 1
    if text[:1] in ("-", "△", "−"):
        sign, text = -1, text[1:].strip()
    for prefix in ("약", "금"):
        if text.startswith(prefix):
            text = text[len(prefix) :].strip()
    for qualifier in QUALIFIERS:
        if text.endswith(qualifier):
            text = text[: -len(qualifier)].strip()
    if not text:
        raise ValueError(f"not an amount: {value!r}")
    scanned = _scan(text)
    if len(scanned) != 1:
        # a unit-less number without 원 ("1500") is not picked up by the scanner; accept it as plain won here
        plain = text.replace(",", "")
        if re.fullmatch(r"\d{1,3}(?:,\d{3})+|\d+", text):
            return sign * int(plain)
        raise ValueError(f"not a single amount: {value!r}")
    terms, end, _ = scanned[0]
    if terms[0].start != 0 or end != len(text):
        raise ValueError(f"not a single amount: {value!r}")
    return sign * _to_int_won(sum((t.value for t in terms), Decimal(0)), value)


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
