"""Hand-written real-world Korean amounts: every reported misreading, every style, and the numbers that are not money."""

from __future__ import annotations

import pytest

from slm_datagen.taxlaw.amounts import find_amounts, parse_amount, parse_won

# (sentence, the amounts find_amounts must return in order). The first six are the failures reported in issue 11.
FOUND: list[tuple[str, list[int]]] = [
    ("증여받은 금액은 2천5백만원입니다.", [25_000_000]),
    ("과세표준은 3억2천5백만원이다.", [325_000_000]),
    ("아버지에게 일억오천만원을 받았습니다.", [150_000_000]),
    ("구천만원을 증여받았다.", [90_000_000]),
    ("공제액 오백만원을 뺍니다.", [5_000_000]),
    ("이자소득 1천9백만원이 있습니다.", [19_000_000]),
    # digits with commas, with and without 원, spaces
    ("증여재산가액 1,500,000원", [1_500_000]),
    ("납부할 세액은 12,345원입니다.", [12_345]),
    ("세액 1,234,567,890원", [1_234_567_890]),
    ("150만 원을 냈다", [1_500_000]),
    ("3 억 2천만 원을 받았다", [320_000_000]),
    ("5천 만원이다", [50_000_000]),
    # group units mixed with digits
    ("과세표준 1억 5,000만원", [150_000_000]),
    ("1억5,000만원", [150_000_000]),
    ("3억 2천5백만 원", [325_000_000]),
    ("6억 2,000만원에서 신고세액공제를 빼면", [620_000_000]),
    ("19억 5,000만원", [1_950_000_000]),
    ("1억 2,345원", [100_002_345]),
    ("1조 2,000억원", [1_200_000_000_000]),
    ("5만3천원", [53_000]),
    ("2천5백35만원", [25_350_000]),
    ("3억천만원", [310_000_000]),
    # decimals and 원 left out after a unit
    ("약 1.5억 정도", [150_000_000]),
    ("시가 6.4억", [640_000_000]),
    ("증여세 5억", [500_000_000]),
    ("0.5억원", [50_000_000]),
    ("2.5천만원", [25_000_000]),
    # Hangul numerals
    ("삼십오만원", [350_000]),
    ("십억원을 상속받았다", [1_000_000_000]),
    ("상속재산은 십억이다", [1_000_000_000]),
    ("일억원", [100_000_000]),
    ("만원짜리", [10_000]),
    ("만오천원", [15_000]),
    ("일만 오천원", [15_000]),
    ("천만원", [10_000_000]),
    ("백만원", [1_000_000]),
    ("이십억 원", [2_000_000_000]),
    ("삼억이천오백만원", [325_000_000]),
    ("사천이백만원이었다", [42_000_000]),
    ("금 오천만원정", [50_000_000]),
    ("금오천만원정을 영수함", [50_000_000]),
    ("일억오천이면", [150_000_000]),  # spoken: 1억5천 = 1억 5천만
    # units as multipliers
    ("매출액 620백만원", [620_000_000]),
    ("1,500천원", [1_500_000]),
    ("3,000천 원", [3_000_000]),
    ("전세 3억5천", [350_000_000]),
    ("매출 1조5천", [1_500_000_000_000]),
    # negatives
    ("결손금 △1,000만원", [-10_000_000]),
    ("△ 1,000만원", [-10_000_000]),
    ("차액은 -500만원입니다", [-5_000_000]),
    ("(-)1,000만원", [-10_000_000]),
    ("(-) 2억원", [-200_000_000]),
    ("환급세액 마이너스 300만원", [-3_000_000]),
    ("= -2,000만원", [-20_000_000]),
    ("20억원 - 5억원 = 15억원", [2_000_000_000, 500_000_000, 1_500_000_000]),  # a minus between amounts subtracts
    ("19.5억 × 40% −1.6억 = 6.2억", [1_950_000_000, 160_000_000, 620_000_000]),
    # approximations
    ("약 3억", [300_000_000]),
    ("3억 원가량", [300_000_000]),
    ("대략 5천만원 정도", [50_000_000]),
    ("3억여 원", [300_000_000]),
    ("100여만원", [1_000_000]),
    ("2억쯤", [200_000_000]),
    ("얼추 1억 내외", [100_000_000]),
    # ranges and neighbours
    ("300만~500만원", [3_000_000, 5_000_000]),
    ("3~5억원", [300_000_000, 500_000_000]),
    ("1천~2천만원", [10_000_000, 20_000_000]),
    ("20억 5억", [2_000_000_000, 500_000_000]),
    ("1억 15,000만원", [100_000_000, 150_000_000]),
    ("제1조 2억원", [200_000_000]),
    ("제53조에 따라 5,000만원을 공제", [50_000_000]),
    ("2024년 5억원", [500_000_000]),
    ("10% 3억", [300_000_000]),
    ("세율 10%인 3천만원", [30_000_000]),
    ("3명이 1억원씩", [100_000_000]),
    ("₩1,500,000", [1_500_000]),
    ("연봉 5천만에 세금은", [50_000_000]),
    ("월급 300만, 상여 50만", [3_000_000, 500_000]),
    ("1억원 이하 10%, 1억원 초과 5억원 이하 20%", [100_000_000, 100_000_000, 500_000_000]),
    ("624만원(천원 단위 절사)", [6_240_000]),
]

# Numbers that are not money, alone or next to one another.
NOT_MONEY = [
    "세율 10%",
    "2024년 귀속",
    "제53조",
    "제 26조",
    "제1조의2",
    "자녀 3명",
    "10년 이내",
    "2024. 3. 15.",
    "2024-01-01",
    "2024.1.1.",
    "150만 명",
    "인구 500만",
    "오천만 국민",
    "수천만원",
    "수억원",
    "몇백만원",
    "수십억 원",
    "천원 단위로 절사",
    "만원 단위",
    "3원칙",
    "사원 3명",
    "이천시",
    "천만에요",
    "12,345명",
    "3.5%",
    "5천",
    "1500",
]


@pytest.mark.parametrize(("text", "won"), FOUND)
def test_find_amounts_reads_real_world_writing(text: str, won: list[int]) -> None:
    found = find_amounts(text)
    assert [m.won for m in found] == won
    assert all(text[m.start : m.end] == m.text for m in found)


@pytest.mark.parametrize("text", NOT_MONEY)
def test_find_amounts_leaves_non_money_alone(text: str) -> None:
    assert find_amounts(text) == []


@pytest.mark.parametrize(
    ("text", "approximate"),
    [
        ("약 3억", True),
        ("3억 원가량", True),
        ("대략 5천만원", True),
        ("5천만원 정도", True),
        ("3억여 원", True),
        ("3억 남짓", True),
        ("안팎 없이 3억원", False),
        ("계약 3억원", False),  # 계약 ends in 약 but is a word, not 약 (about)
        ("요약: 3억원", False),
        ("3억원", False),
    ],
)
def test_approximations_are_marked(text: str, approximate: bool) -> None:
    (mention,) = find_amounts(text)
    assert mention.won == 300_000_000 or mention.won == 50_000_000
    assert mention.approximate is approximate


def test_span_of_a_negative_holds_its_sign_and_of_an_approximation_not_its_word() -> None:
    text = "결손금은 △1,000만원, 세액은 약 3억 원가량입니다."
    negative, approx = find_amounts(text)
    assert negative.text == "△1,000만원" and negative.won == -10_000_000
    assert approx.text == "3억 원" and approx.approximate


@pytest.mark.parametrize(
    ("text", "won", "approximate"),
    [
        ("2천5백만원", 25_000_000, False),
        ("3억2천5백만원", 325_000_000, False),
        ("일억오천만원", 150_000_000, False),
        ("일억오천만", 150_000_000, False),
        ("구천만원", 90_000_000, False),
        ("오백만원", 5_000_000, False),
        ("1천9백만원", 19_000_000, False),
        ("삼십오만", 350_000, False),
        ("십억", 1_000_000_000, False),
        ("620백만원", 620_000_000, False),
        ("1,500천원", 1_500_000, False),
        ("금 오천만원정", 50_000_000, False),
        ("약 3억", 300_000_000, True),
        ("3억 원가량", 300_000_000, True),
        ("대략 1억 정도", 100_000_000, True),
        ("△1,000만원", -10_000_000, False),
        ("-500만원", -5_000_000, False),
        ("(-)1,000만원", -10_000_000, False),
        ("3 억 2천만 원", 320_000_000, False),
        ("₩1,500,000", 1_500_000, False),
        ("1500", 1_500, False),
        ("만원", 10_000, False),
    ],
)
def test_parse_amount_reads_one_amount(text: str, won: int, approximate: bool) -> None:
    mention = parse_amount(text)
    assert (mention.won, mention.approximate) == (won, approximate)
    assert parse_won(text) == won


@pytest.mark.parametrize("bad", ["수억원", "억원", "3억 5억", "10%", "제53조", "3명", "2024년", "오천만 국민", "약"])
def test_parse_won_rejects_what_is_not_one_amount(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_won(bad)


def test_qualifier_survives_an_approximation_word() -> None:
    assert parse_amount("1,400만원 이하").qualifier == "이하"
    (mention,) = find_amounts("1억원 초과분")
    assert mention.qualifier == "초과"


STATEMENT = """손익계산서 (단위: 천원)

| 구분 | 연도 | 세율(%) | 금액 |
|---|---|---|---|
| 매출액 | 2024 | 10 | 1,500,000 |
| 매출원가 | 2024 | 10 | (300,000) |
| 영업손실 | 2024 | 10 | △25,000 |

본문의 1,000은 표 밖의 숫자라서 금액이 아니다. 법인세 2억원."""


def test_table_figures_take_the_unit_header() -> None:
    found = find_amounts(STATEMENT)
    assert [(m.won, m.table_unit) for m in found] == [
        (1_500_000_000, 1000),
        (-300_000_000, 1000),
        (-25_000_000, 1000),
        (200_000_000, None),  # after the blank line the header no longer applies; 원 speaks for itself
    ]
    assert [m.text for m in found[:3]] == ["1,500,000", "300,000", "△25,000"]


@pytest.mark.parametrize(
    ("header", "unit"),
    [
        ("(단위: 백만원)", 10**6),
        ("(단위 : 천 원)", 1000),
        ("[단위: 만원]", 10**4),
        ("(단위: 억원)", 10**8),
        ("(단위: 원)", 1),
        ("단위: 천원", 1000),
    ],
)
def test_unit_headers_in_every_spelling(header: str, unit: int) -> None:
    text = f"재무상태표 {header}\n| 과목 | 당기 |\n|---|---|\n| 자본금 | 620 |\n| 이익잉여금 | 1,250 |"
    assert [m.won for m in find_amounts(text)] == [620 * unit, 1250 * unit]


def test_a_header_that_is_not_money_scales_nothing() -> None:
    assert find_amounts("(단위: %)\n| 구분 | 비율 |\n|---|---|\n| 세율 | 20 |") == []
    assert find_amounts("(단위: 명)\n| 구분 | 인원 |\n|---|---|\n| 직원 | 120 |") == []


def test_prose_under_a_header_reads_bare_figures_but_not_counts_or_years() -> None:
    text = "(단위: 천원)\n매출 1,500, 매입 800, 직원 12 명, 2024 사업연도, 세율 10%"
    assert [m.won for m in find_amounts(text)] == [1_500_000, 800_000]


def test_header_text_itself_is_not_an_amount_and_next_header_takes_over() -> None:
    text = (
        "(단위: 천원)\n| 항목 | 금액 |\n|---|---|\n| 가 | 5 |\n(단위: 백만원)\n| 항목 | 금액 |\n|---|---|\n| 나 | 5 |"
    )
    assert [m.won for m in find_amounts(text)] == [5_000, 5_000_000]


@pytest.mark.parametrize(
    "text",
    [
        "증여받은 자녀가 만 19세 미만이면",
        "증여세를 만약 내지 않으면",
        "상속재산이 백만장자 수준",
        "세금 문제는 천만다행으로 해결",
        "소득이 500만 명에게",
        "매출 300만 개",
    ],
)
def test_money_words_do_not_turn_ages_words_or_counts_into_money(text: str) -> None:
    assert find_amounts(text) == []
