"""Korean money notation: parse_won, find_amounts, format_won."""

from __future__ import annotations

import random

import pytest

from slm_datagen.taxlaw.amounts import AmountMention, find_amounts, format_won, parse_won

PARSE_CASES = [
    ("20억원", 2_000_000_000),
    ("20억", 2_000_000_000),
    ("1억 5,000만원", 150_000_000),
    ("1억5천만원", 150_000_000),
    ("9,000만원", 90_000_000),
    ("6.4억", 640_000_000),
    ("6억 4,000만원", 640_000_000),
    ("5천만원", 50_000_000),
    ("3억2천만원", 320_000_000),
    ("1,500,000원", 1_500_000),
    ("150만 원", 1_500_000),
    ("1조 2,000억원", 1_200_000_000_000),
    ("2,000억", 200_000_000_000),
    ("0.5억", 50_000_000),
    ("12,345원", 12_345),
    ("1,400만원 이하", 14_000_000),
    ("19억 5,000만원", 1_950_000_000),
    ("6억 140만원", 601_400_000),
    ("천만원", 10_000_000),
    ("1억 2,345원", 100_002_345),
    ("약 6억 2,000만원", 620_000_000),
    ("△1,000원", -1_000),
    ("1500", 1_500),
]


@pytest.mark.parametrize(("text", "won"), PARSE_CASES)
def test_parse_won(text: str, won: int) -> None:
    assert parse_won(text) == won


def test_parse_won_passes_ints_through() -> None:
    assert parse_won(620_000_000) == 620_000_000


@pytest.mark.parametrize("bad", ["", "원", "abc", "20억 5억", "3%", "2024년", "0.12345원"])
def test_parse_won_rejects_non_amounts(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_won(bad)


def test_parse_won_rejects_bool() -> None:
    with pytest.raises(ValueError):
        parse_won(True)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "won"), [c for c in PARSE_CASES if c[0] not in ("1500", "약 6억 2,000만원", "△1,000원")]
)
def test_find_amounts_finds_each_example_in_a_sentence(text: str, won: int) -> None:
    sentence = f"계산한 금액은 {text}입니다."
    found = find_amounts(sentence)
    assert [m.won for m in found] == [won]
    mention = found[0]
    assert sentence[mention.start : mention.end] == mention.text
    assert mention.span == (mention.start, mention.end)


def test_find_amounts_ignores_percentages_years_articles_and_counts() -> None:
    text = "2024년 제26조에 따라 세율 40%를 3회 적용하고 150만 명, 제1조, 12,345명, 3.5%"
    assert find_amounts(text) == []


def test_find_amounts_keeps_amount_after_the_word_gongje() -> None:
    # "공제" ends in 제: it must not be mistaken for an article prefix
    found = find_amounts("누진공제 1억 6,000만원을 빼면")
    assert [m.won for m in found] == [160_000_000]


def test_find_amounts_in_a_full_answer() -> None:
    text = (
        "20억원을 증여받으면 과세표준은 19억 5,000만원이고, 세율 40%, 누진공제 1억 6,000만원을 적용하면 "
        "산출세액은 6억 2,000만원입니다. 1억원 이하 구간은 10%입니다."
    )
    found = find_amounts(text)
    assert [m.won for m in found] == [2_000_000_000, 1_950_000_000, 160_000_000, 620_000_000, 100_000_000]
    assert found[-1].qualifier == "이하"
    assert all(text[m.start : m.end] == m.text for m in found)


def test_find_amounts_splits_same_unit_neighbours() -> None:
    assert [m.won for m in find_amounts("20억 5억")] == [2_000_000_000, 500_000_000]


def test_find_amounts_requires_won_or_eok() -> None:
    # "150만" alone could count people; "150만원" / "150만 원" is money
    assert find_amounts("150만 명") == []
    assert [m.won for m in find_amounts("150만 원을")] == [1_500_000]


def test_amount_mention_is_typed() -> None:
    mention = find_amounts("5천만원")[0]
    assert isinstance(mention, AmountMention)
    assert mention.won == 50_000_000 and mention.qualifier is None


@pytest.mark.parametrize(
    ("won", "text"),
    [
        (620_000_000, "6억 2,000만원"),
        (640_000_000, "6억 4,000만원"),
        (1_950_000_000, "19억 5,000만원"),
        (601_400_000, "6억 140만원"),
        (90_000_000, "9,000만원"),
        (1_500_000, "150만원"),
        (12_345, "12,345원"),
        (0, "0원"),
        (1_200_000_000_000, "1조 2,000억원"),
        (100_002_345, "1억 2,345원"),
        (-18_600_000, "-1,860만원"),
    ],
)
def test_format_won(won: int, text: str) -> None:
    assert format_won(won) == text


def test_format_and_parse_round_trip() -> None:
    rng = random.Random(20240101)
    values = [rng.randrange(0, 10**13) for _ in range(2000)]
    values += [10**k for k in range(14)] + [10**k - 1 for k in range(1, 14)]
    for value in values:
        assert parse_won(format_won(value)) == value, value
