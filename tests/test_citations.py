"""Korean statute citations: find_citations, normalize_law_name, format_citation, on examples and on real text."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from slm_datagen.taxlaw.citations import (
    OFFICIAL_LAW_NAMES,
    TAX_LAWS,
    Citation,
    find_citations,
    format_citation,
    is_known_law,
    normalize_law_name,
)

SHARED_CORPUS = Path(__file__).resolve().parents[2] / "shared" / "corpus"


def labels(text: str, **kwargs: object) -> list[str]:
    return [format_citation(c) for c in find_citations(text, **kwargs)]  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("소득세법 제12조제3호", ["소득세법 제12조 제3호"]),
        ("「상속세 및 증여세법」 제53조 제1항", ["상속세 및 증여세법 제53조 제1항"]),
        ("상속세 및 증여세법 제26조", ["상속세 및 증여세법 제26조"]),
        ("국세기본법 제26조의2", ["국세기본법 제26조의2"]),
        ("국세기본법 시행령 제12조의3", ["국세기본법 시행령 제12조의3"]),
        ("법인세법 시행령 제19조제1항제2호가목", ["법인세법 시행령 제19조 제1항 제2호 가목"]),
        ("국세징수법 제107조 【납세증명서의 제출】", ["국세징수법 제107조"]),
        ("조세범 처벌법 제10조", ["조세범 처벌법 제10조"]),
        ("교통ㆍ에너지ㆍ환경세법 제2조", ["교통ㆍ에너지ㆍ환경세법 제2조"]),
        ("교통·에너지·환경세법 제2조", ["교통ㆍ에너지ㆍ환경세법 제2조"]),
        ("국제조세조정에 관한 법률 제27조", ["국제조세조정에 관한 법률 제27조"]),
        ("조세특례제한법 시행령 제106조", ["조세특례제한법 시행령 제106조"]),
        ("상속세 및 증여세법 제26조 ①", ["상속세 및 증여세법 제26조 제1항"]),
        ("소득세법 제999조", ["소득세법 제999조"]),
        ("소득세법 제12조제2호의2", ["소득세법 제12조 제2호의2"]),
        ("상속세및증여세법 제53조", ["상속세 및 증여세법 제53조"]),
    ],
)
def test_named_citations(text: str, expected: list[str]) -> None:
    assert labels(text) == expected


def test_citation_record_fields_and_span() -> None:
    text = "이 경우 법인세법 시행령 제19조제1항제2호가목에 따라"
    (c,) = find_citations(text)
    assert isinstance(c, Citation)
    assert (c.law, c.article, c.branch, c.paragraph, c.item, c.subitem) == ("법인세법 시행령", 19, None, 1, 2, "가")
    assert text[c.span[0] : c.span[1]] == "법인세법 시행령 제19조제1항제2호가목"
    (d,) = find_citations("국세기본법 제26조의2")
    assert (d.article, d.branch, d.paragraph) == (26, 2, None)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("상속세 및 증여세법 제53조 및 같은 법 제56조", ["상속세 및 증여세법 제53조", "상속세 및 증여세법 제56조"]),
        ("상속세 및 증여세법 제53조, 동법 제56조", ["상속세 및 증여세법 제53조", "상속세 및 증여세법 제56조"]),
        ("소득세법 제89조 및 같은 법 시행령 제3조", ["소득세법 제89조", "소득세법 시행령 제3조"]),
        ("소득세법 시행령 제155조 및 같은 법 제89조", ["소득세법 시행령 제155조", "소득세법 제89조"]),
        ("국세기본법 제45조 및 같은 조 제2항", ["국세기본법 제45조", "국세기본법 제45조 제2항"]),
        # a law named without an article is what "같은 법" points to
        (
            "「감정평가 및 감정평가사에 관한 법률」에 따른 감정평가법인등(같은 법 제29조에 따른",
            ["감정평가 및 감정평가사에 관한 법률 제29조"],
        ),
    ],
)
def test_references_to_the_previous_law(text: str, expected: list[str]) -> None:
    assert labels(text) == expected


def test_references_relative_to_the_default_law() -> None:
    assert labels("법 제26조 및 영 제3조", default_law="상속세 및 증여세법") == [
        "상속세 및 증여세법 제26조",
        "상속세 및 증여세법 시행령 제3조",
    ]
    # inside a 시행령, "법" is the parent Act
    assert labels("①법 제61조제1항에 따라", default_law="법인세법 시행령") == ["법인세법 제61조 제1항"]
    # without a default law "법 제26조" cannot be resolved and is skipped
    assert labels("법 제26조") == []


def test_bare_paragraphs_follow_the_default_or_previous_citation() -> None:
    assert labels("제1항 또는 제2항", default_law="국세징수법", default_article=112) == [
        "국세징수법 제112조 제1항",
        "국세징수법 제112조 제2항",
    ]
    assert labels("국세징수법 제112조에 따라 제1항 또는 제2항의 요구") == [
        "국세징수법 제112조",
        "국세징수법 제112조 제1항",
        "국세징수법 제112조 제2항",
    ]
    assert labels("제1항 또는 제2항") == []  # nothing to attach them to


def test_circled_paragraph_after_an_article() -> None:
    assert labels("제26조 ①", default_law="상속세 및 증여세법") == ["상속세 및 증여세법 제26조 제1항"]
    (c,) = find_citations("국세기본법 제26조의2 ⑥")
    assert (c.article, c.branch, c.paragraph) == (26, 2, 6)


def test_chains_continue_the_previous_law_and_article() -> None:
    text = "구 상속세 및 증여세법(2016. 12. 20. 법률 제14388호로 개정되기 전의 것) 제3조, 제3조의2 제1항, 제3항, 제13조"
    assert labels(text) == [
        "상속세 및 증여세법 제3조",
        "상속세 및 증여세법 제3조의2 제1항",
        "상속세 및 증여세법 제3조의2 제3항",
        "상속세 및 증여세법 제13조",
    ]
    assert labels("「국세기본법」 제47조의2부터 제47조의4까지") == ["국세기본법 제47조의2", "국세기본법 제47조의4"]
    assert labels("「고등교육법」 제2조제1호부터 제4호까지의 규정") == [
        "고등교육법 제2조 제1호",
        "고등교육법 제2조 제4호",
    ]
    # a bare article after other words belongs to the text's own law, not to the last one cited
    assert labels("「발명진흥법」 제2조제2호에 따른 종업원등(이하 이 조, 제20조", default_law="소득세법") == [
        "발명진흥법 제2조 제2호",
        "소득세법 제20조",
    ]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("조특법 제64조", ["조세특례제한법 제64조"]),
        ("(법인법§45④)", ["법인세법 제45조 제4항"]),
        ("(법인령§81③(2)나)", ["법인세법 시행령 제81조 제3항 제2호 나목"]),
        ("상증법§48⑪(1)[운용소득 사용요건]", ["상속세 및 증여세법 제48조 제11항 제1호"]),
        ("(상증령§41의2⑤)", ["상속세 및 증여세법 시행령 제41조의2 제5항"]),
        ("조세특례제한법법 제6조", ["조세특례제한법 제6조"]),
        ("상속세 및 증여세법 제45의4 【특수관계법인으로부터】", ["상속세 및 증여세법 제45조의4"]),
        ("한･미 조세조약 제19조", ["한ㆍ미 조세조약 제19조"]),
        ("주택법 시행령 제4조", ["주택법 시행령 제4조"]),
    ],
)
def test_shorthand_and_odd_forms_from_the_nts_casebook(text: str, expected: list[str]) -> None:
    assert labels(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "제2장 과세표준과 세액의 계산",
        "제3절 세율",
        "서면-2024-법규 제2024-12호",
        "제1회 개정",
        "법률 제14388호",
        "이 방법 제3조",  # "방법" ends in 법 but is not a law
        "어느 특별한 사항에 관한 법률 제3조",  # an unknown law: not pinned on some other law
        "2024년 3회 40%",
    ],
)
def test_non_citations(text: str) -> None:
    assert find_citations(text) == []


# The 국세청 casebook brackets law names with the half-width ｢｣ (U+FF62/U+FF63), sometimes closed by a full-width 」;
# they must parse exactly like 「」.
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("｢소득세법｣ 제119조제7호", ["소득세법 제119조 제7호"]),
        ("｢조세특례제한법｣ 제69조의2", ["조세특례제한법 제69조의2"]),
        ("｢소득세법 시행령｣ 제155조 제20항", ["소득세법 시행령 제155조 제20항"]),
        ("｢소득세법 시행령｣제155조 제2항", ["소득세법 시행령 제155조 제2항"]),
        ("｢조세특례제한법 시행령」 제23조제13항제3호", ["조세특례제한법 시행령 제23조 제13항 제3호"]),
        ("｢조세특례 제한법｣ 제71조", ["조세특례제한법 제71조"]),
        ("『상속세 및 증여세법』 제53조 제1항", ["상속세 및 증여세법 제53조 제1항"]),
        (
            "｢소득세법｣ 제119조제7호 및 ｢한･미조세조약｣ 제19조에 따라",
            ["소득세법 제119조 제7호", "한ㆍ미조세조약 제19조"],
        ),
        (
            "｢민간임대주택에 관한 특별법｣에 따라 … 같은 법 제6조제5항에 따라 등록이 말소된 후",
            ["민간임대주택에 관한 특별법 제6조 제5항"],
        ),
        (
            "｢상속세 및 증여세법｣ 제48조 제9항에 따른 가산세 … 같은 조 제11항 제1호의 요건",
            ["상속세 및 증여세법 제48조 제9항", "상속세 및 증여세법 제48조 제11항 제1호"],
        ),
    ],
)
def test_half_width_and_double_corner_brackets(text: str, expected: list[str]) -> None:
    assert labels(text) == expected


def test_half_width_bracket_span_covers_the_brackets() -> None:
    text = "동 대가는 ｢소득세법｣ 제119조제7호에 따라"
    (c,) = find_citations(text)
    assert text[c.span[0] : c.span[1]] == "｢소득세법｣ 제119조제7호"
    assert labels("｢소득세법｣ 제20조제1항제6호") == labels("「소득세법」 제20조제1항제6호")


@pytest.mark.parametrize(
    ("raw", "official"),
    [
        ("「상속세 및 증여세법」", "상속세 및 증여세법"),
        ("상속세및증여세법", "상속세 및 증여세법"),
        ("조세범처벌법", "조세범 처벌법"),
        ("국제조세조정에관한법률", "국제조세조정에 관한 법률"),
        ("교통·에너지·환경세법", "교통ㆍ에너지ㆍ환경세법"),
        ("소득세법시행령", "소득세법 시행령"),
        ("조세특례제한법   시행령", "조세특례제한법 시행령"),
        ("상증령", "상속세 및 증여세법 시행령"),
        ("조특법", "조세특례제한법"),
        ("조세특례제한법법", "조세특례제한법"),
        ("주택법시행령", "주택법 시행령"),
        ("구 소득세법", "소득세법"),
        ("｢상속세 및 증여세법｣", "상속세 및 증여세법"),  # half-width corner brackets (U+FF62/U+FF63)
        ("『소득세법 시행령』", "소득세법 시행령"),
        ("｢조세특례 제한법｣", "조세특례제한법"),
    ],
)
def test_normalize_law_name(raw: str, official: str) -> None:
    assert normalize_law_name(raw) == official


def test_known_law_list() -> None:
    for law in TAX_LAWS:
        assert law in OFFICIAL_LAW_NAMES and f"{law} 시행령" in OFFICIAL_LAW_NAMES
    assert is_known_law("상증법") and is_known_law("국세기본법 시행규칙")
    assert not is_known_law("가나다법")


def test_format_citation() -> None:
    c = Citation(law="소득세법", article=12, item=3, span=(0, 0))
    assert format_citation(c) == "소득세법 제12조 제3호"
    full = Citation(
        law="국세기본법", article=26, branch=2, paragraph=1, item=2, item_branch=3, subitem="가", span=(0, 0)
    )
    assert full.label == "국세기본법 제26조의2 제1항 제2호의3 가목"


# --- real inputs (skipped when ../shared is absent) --------------------------------------------------------------

needs_shared = pytest.mark.skipif(not SHARED_CORPUS.is_dir(), reason="../shared/corpus is not available")
ARTICLE_MARKER = re.compile(r"제\s*\d+\s*조|제\d+의\d+|§\s*\d+")


@needs_shared
def test_every_casebook_related_law_yields_a_citation() -> None:
    rulings = json.loads((SHARED_CORPUS / "rulings" / "nts_casebook_2025.json").read_text(encoding="utf-8"))
    without_marker = []
    for ruling in rulings:
        related = ruling["관련법령"]
        citations = find_citations(related)
        if not ARTICLE_MARKER.search(related):
            # one entry is a truncated text fragment from the PDF extraction with no provision in it at all
            without_marker.append(ruling["id"])
            continue
        assert citations, (ruling["id"], related)
        for c in citations:
            assert c.law and c.article > 0, (ruling["id"], c)
            assert is_known_law(c.law) or c.law in {"한ㆍ미 조세조약"}, (ruling["id"], c.law)
    assert len(without_marker) <= 1, without_marker
    by_id = {r["id"]: find_citations(r["관련법령"]) for r in rulings}
    assert [format_citation(c) for c in by_id[2]] == ["국세기본법 제26조의2", "국세기본법 시행령 제12조의3"]


def test_casebook_half_width_brackets_yield_citations(shared_dir: Path) -> None:
    """Every 답변요지/관련법령 of the casebook that writes a law as ｢…｣ followed by an article parses, and that article
    is cited (before ｢｣ was recognised none of these yielded anything)."""
    rulings = json.loads((shared_dir / "corpus" / "rulings" / "nts_casebook_2025.json").read_text(encoding="utf-8"))
    texts = [(r["id"], r[field]) for r in rulings for field in ("답변요지", "관련법령") if "｢" in (r.get(field) or "")]
    assert len(texts) == 28  # all in 답변요지
    bracketed_article = re.compile(r"｢[^｣」\n]+[｣」]\s*제\s*\d+\s*조")
    no_article = []
    for ruling_id, text in texts:
        citations = find_citations(text)
        if not ARTICLE_MARKER.search(text):
            # "｢계열편입 유예 통지｣를 받은 경우 …", "｢농공단지에 신축된 공장건물｣을 …": quoted phrases, no provision
            no_article.append(ruling_id)
            continue
        assert citations, (ruling_id, text)
        starts = {c.span[0] for c in citations}
        for m in bracketed_article.finditer(text):
            assert m.start() in starts, (ruling_id, m.group(0))
    assert no_article == [55, 59]
    by_id = dict(texts)
    assert labels(by_id[10]) == ["소득세법 제119조 제7호", "한ㆍ미조세조약 제19조"]
    assert labels(by_id[80]) == ["조세특례제한법 제71조"]


@needs_shared
def test_statute_units_resolve_against_their_own_law() -> None:
    lines = (SHARED_CORPUS / "statutes" / "statute_units_real_text.jsonl").read_text(encoding="utf-8").splitlines()
    rows = [json.loads(line) for line in lines if line.strip()]
    assert rows
    all_labels: set[str] = set()
    for row in rows:
        article = re.match(r"제(\d+)조(?:의(\d+))?", row["조"])
        assert article
        citations = find_citations(
            row["text"],
            default_law=row["법령명"],
            default_article=int(article.group(1)),
            default_branch=int(article.group(2)) if article.group(2) else None,
        )
        if re.search(r"제\s*\d+\s*조", row["text"]):
            assert citations, row["text"][:80]
        for c in citations:
            assert c.law and c.article > 0
            assert row["text"][c.span[0] : c.span[1]].strip()
        all_labels.update(format_citation(c) for c in citations)
    for expected in [
        "국세기본법 제22조 제2항",  # 국세기본법 제22조의2 ① "제22조제2항 각 호에 따른"
        "국세징수법 제112조 제1항",  # 국세징수법 제112조 ③ "제1항 또는 제2항의 요구"
        "법인세법 제25조 제2항 제1호 가목",  # 법인세법 시행령 제41조 ③ "법 제25조제2항제1호가목"
        "소득세법 제144조",  # "「소득세법」 제168조 … 같은 법 제144조 및 제145조"
        "소득세법 제145조",
        "부가가치세법 제35조",  # "「부가가치세법」 제32조 및 제35조"
        "국세기본법 제85조의5 제2항",
        "감정평가 및 감정평가사에 관한 법률 제29조",
    ]:
        assert expected in all_labels, expected
