"""Property tests: random amounts rendered in every Korean style parse back exactly, alone and inside sentences."""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

from hypothesis import given, settings
from hypothesis import strategies as st

from slm_datagen.taxlaw.amounts import find_amounts, format_won, parse_amount, parse_won

# Fixed and modest, so the suite stays fast and every run tries the same examples.
settings.register_profile("amounts", max_examples=200, derandomize=True, deadline=None, database=None)
AMOUNTS = settings.get_profile("amounts")

HANGUL = "영일이삼사오육칠팔구"
GROUPS = (("조", 10**12), ("억", 10**8), ("만", 10**4))


def _groups(won: int) -> list[tuple[str, int]]:
    """[(unit, count)] for 조/억/만 groups with a non-zero count, then ("", rest below 만)."""
    parts, rest = [], won
    for unit, size in GROUPS:
        count, rest = divmod(rest, size)
        if count:
            parts.append((unit, count))
    if rest:
        parts.append(("", rest))
    return parts


def _small_units(count: int, draw_one: bool) -> str:
    """2535 -> "2천5백35": thousands and hundreds as digit + unit, the rest as digits ("천" for one when draw_one)."""
    out = ""
    for unit, size in (("천", 1000), ("백", 100)):
        digit, count = divmod(count, size)
        if digit:
            out += ("" if digit == 1 and draw_one else str(digit)) + unit
    return out + (str(count) if count else "")


def _hangul_chunk(count: int, drop_one: bool) -> str:
    """2535 -> "이천오백삼십오"; with drop_one a coefficient of one before 천/백/십 is left out ("천", "백만")."""
    out = ""
    for unit, size in (("천", 1000), ("백", 100), ("십", 10)):
        digit, count = divmod(count, size)
        if digit:
            out += ("" if digit == 1 and drop_one else HANGUL[digit]) + unit
    return out + (HANGUL[count] if count else "")


def commas(won: int, choice: int) -> str:
    return f"{won:,}원"


def mixed_digits(won: int, choice: int) -> str:
    return format_won(won)  # "6억 2,000만원"


def small_units(won: int, choice: int) -> str:
    sep = " " if choice % 2 else ""
    return sep.join(_small_units(count, choice % 3 == 0) + unit for unit, count in _groups(won)) + "원"


def hangul(won: int, choice: int) -> str:
    parts = []
    for i, (unit, count) in enumerate(_groups(won)):
        # 억 and 조 always take their 일 ("일억"); 만 may drop it only in front ("만오천원").
        drop = choice % 2 == 0 and not (count == 1 and (unit in "억조" or i > 0 or unit == ""))
        parts.append(_hangul_chunk(count, drop) + unit)
    return ("" if choice % 3 else " ").join(parts) + "원"


def spaced(won: int, choice: int) -> str:
    """ "3 억 2천만 원": a space between every number and unit."""
    return " ".join(f"{count:,} {unit}".strip() for unit, count in _groups(won)) + " 원"


def millions(won: int, choice: int) -> str:
    return f"{won // 10**6:,}백만원"


def thousands(won: int, choice: int) -> str:
    return f"{won // 1000:,}천원"


def decimal_eok(won: int, choice: int) -> str:
    number = f"{Decimal(won) / 10**8:f}"
    if "." in number:
        number = number.rstrip("0").rstrip(".")
    return number + "억" + ("원" if choice % 2 else "")


# style -> (renderer, the multiple of won every amount in that style is rounded to)
STYLES: dict[str, tuple[Callable[[int, int], str], int]] = {
    "commas": (commas, 1),
    "mixed_digits": (mixed_digits, 1),
    "small_units": (small_units, 1),
    "hangul": (hangul, 1),
    "spaced": (spaced, 1),
    "millions": (millions, 10**6),
    "thousands": (thousands, 1000),
    "decimal_eok": (decimal_eok, 10**6),
}

# A won strategy mixing uniform sizes with "round" amounts made of a few non-zero groups, the way people write money.
_WON = st.one_of(
    st.integers(1, 10**13 - 1),
    st.builds(
        lambda jo, eok, man, rest: jo * 10**12 + eok * 10**8 + man * 10**4 + rest,
        st.sampled_from([0, 0, 0, 1, 3, 12]),
        st.integers(0, 9999),
        st.integers(0, 9999),
        st.sampled_from([0, 0, 0, 1, 5, 500, 2345, 9999]),
    ).filter(lambda won: won > 0),
)


@st.composite
def rendered(draw: st.DrawFn) -> tuple[int, str, str]:
    """(won, style, text) for a random amount in a random style; amounts are rounded to what the style can write."""
    style = draw(st.sampled_from(sorted(STYLES)))
    render, multiple = STYLES[style]
    won = draw(_WON)
    won = max(multiple, won - won % multiple)
    if style == "decimal_eok":
        won = max(won, 10**8)
    if style == "hangul":
        won = max(won, 10)  # "일원" … "구원" need a unit to be money ("사원" is an employee)
    return won, style, render(won, draw(st.integers(0, 5)))


def _without_won(text: str) -> str | None:
    """The text without its closing 원 when that stays unambiguous money in free text (it has a 억 group and ends on
    a group unit, so "3억5천" cannot be read as 3억 5천만), else None."""
    core = text.removesuffix("원").rstrip()
    if core[-1:] in ("억", "만", "조") and "억" in core:
        return core
    return None


PREFIXES = [
    "",
    "그래서 납부할 세액은 ",
    "2024년 귀속 과세표준은 ",
    "제53조에 따라 공제하면 ",
    "세율 10%를 적용한 산출세액은 ",
    "자녀 3명이 10년 동안 받은 ",
    "질문: 아버지에게서 ",
    "2024. 3. 15. 증여받은 ",
    "| 증여재산가액 | ",
]
SUFFIXES = [
    "",
    "입니다.",
    "이다.",
    "을 냈습니다.",
    "으로 계산됩니다. 세율은 20%입니다.",
    "(제26조)",
    ", 2024년 기준",
    " |",
]


@AMOUNTS
@given(rendered())
def test_every_style_parses_back_alone(case: tuple[int, str, str]) -> None:
    won, style, text = case
    assert parse_won(text) == won, (style, text)
    assert parse_won("약 " + text) == won and parse_amount("약 " + text).approximate
    assert parse_won("△" + text) == -won
    bare = _without_won(text)
    if bare is not None:
        assert parse_won(bare) == won, (style, bare)


@AMOUNTS
@given(rendered(), st.sampled_from(PREFIXES), st.sampled_from(SUFFIXES), st.sampled_from(["", "약 ", "대략 "]))
def test_every_style_is_found_in_a_sentence(case: tuple[int, str, str], before: str, after: str, about: str) -> None:
    won, style, text = case
    sentence = before + about + text + after
    found = find_amounts(sentence)
    assert [m.won for m in found] == [won], (style, sentence)
    mention = found[0]
    assert sentence[mention.start : mention.end] == mention.text
    assert mention.approximate is bool(about)


@AMOUNTS
@given(rendered(), st.sampled_from(PREFIXES), st.sampled_from(["", "가량", " 정도"]))
def test_amounts_without_won_are_found_when_they_carry_eok(case: tuple[int, str, str], before: str, after: str) -> None:
    won, style, text = case
    bare = _without_won(text)
    if bare is None:
        return
    sentence = f"{before}{bare}{after}입니다."
    found = find_amounts(sentence)
    assert [m.won for m in found] == [won], (style, sentence)
    assert found[0].approximate is bool(after)


@AMOUNTS
@given(
    st.lists(st.integers(1, 10**9), min_size=1, max_size=6),
    st.sampled_from([("천원", 1000), ("백만원", 10**6), ("만원", 10**4), ("원", 1)]),
    st.booleans(),
)
def test_table_figures_are_scaled_by_their_header(figures: list[int], unit: tuple[str, int], markdown: bool) -> None:
    name, size = unit
    if markdown:
        rows = [f"| 항목{i} | 2024 | 10 | {n:,} |" for i, n in enumerate(figures)]
        table = "| 구분 | 연도 | 세율(%) | 금액 |\n|---|---|---|---|\n" + "\n".join(rows)
    else:
        table = "\n".join(f"항목{i} {n:,}" for i, n in enumerate(figures))
    text = f"법인세 신고서 (단위: {name})\n\n{table}\n\n그 밖의 숫자 1,000과 2024년은 금액이 아니다."
    found = find_amounts(text)
    assert [m.won for m in found] == [n * size for n in figures]
    assert all(m.table_unit == size for m in found)


@AMOUNTS
@given(st.lists(rendered(), min_size=2, max_size=4))
def test_neighbouring_amounts_stay_apart(cases: list[tuple[int, str, str]]) -> None:
    """Several amounts in one answer, separated the way answers separate them, come back one by one."""
    sentence = "".join(f"{label} {text}, 세율 10%, " for label, (_, _, text) in zip(["가", "나", "다", "라"], cases))
    assert [m.won for m in find_amounts(sentence)] == [won for won, _, _ in cases]


_NOISE = st.lists(
    st.sampled_from(list("0123456789,.원억만천백십조일이삼사오구△-−()|%년제명약여 \n") + ["(단위: 천원)", "정도"]),
    max_size=40,
).map("".join)


@AMOUNTS
@given(_NOISE)
def test_any_text_scans_without_error_and_spans_match(text: str) -> None:
    for mention in find_amounts(text):
        assert text[mention.start : mention.end] == mention.text
        assert mention.start < mention.end
