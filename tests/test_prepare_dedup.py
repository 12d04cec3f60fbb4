"""prepare/dedup.py: exact and near duplicates, statute versions, determinism, and datasketch compatibility."""

from __future__ import annotations

import numpy as np
from datasketch import MinHash

from slm_datagen.prepare.dedup import (
    Deduplicator,
    MinHasher,
    comparison_codes,
    comparison_text,
    fingerprint,
    make_hasher,
)
from slm_forest.config import DedupConfig
from slm_forest.records import Document

RULING = (
    "공익사업을 위한 토지 등의 취득 및 보상에 관한 법률에 따라 지급되는 주거이전비 및 이사비는 국세징수법 제107조제1항제1호에서 "
    "정하는 납세증명서 제출대상에 해당하지 않음. 일용근로소득지급명세서 및 간이지급명세서 제출 불성실 가산세의 부과제척기간 "
    "기산일은 소득세･법인세 신고기한 또는 신고서 제출기한의 다음 날임. 피상속인이 비거주자인 경우 상속인은 국내에 있는 "
    "상속재산 가액의 범위 내에서만 상속세를 납부할 의무가 있으므로, 원고에 대한 상속세 부과처분 중 이 사건 국내재산 가액을 "
    "초과하는 부분은 위법하다. 학교법인이 설치한 의과대학의 부속병원에서 얻은 수익은 그 법인의 고유의 목적인 학교의 유지라고 "
    "보아야 하므로 법인세 과세대상이 될 수 없다. 1세대 1주택 비과세 요건을 판단할 때 보유기간은 해당 주택의 취득일부터 "
    "양도일까지로 하며, 거주기간은 주민등록표 등본에 따른 전입일부터 전출일까지의 기간으로 한다."
)
OTHER = (
    "부가가치세 과세사업과 면세사업을 겸영하는 사업자가 공통으로 사용하던 재화를 공급하는 경우 그 과세표준은 직전 과세기간의 "
    "공급가액 비율로 안분하여 계산한다. 신용카드매출전표등을 발급한 개인사업자는 연간 500만원을 한도로 발급금액의 1.3퍼센트를 "
    "납부세액에서 공제받을 수 있다. 법인이 특수관계인에게 자산을 시가보다 낮은 가액으로 양도한 경우에는 부당행위계산의 부인 "
    "규정이 적용되어 시가와의 차액을 익금에 산입한다. 중간예납세액은 직전 사업연도의 산출세액을 기준으로 계산한다."
)


def _doc(doc_id: str, text: str, kind: str = "ruling", **fields) -> Document:
    return Document(id=doc_id, kind=kind, title=doc_id, text=text, source="test", **fields)


def _statute(doc_id: str, text: str, law: str = "소득세법", article: int = 12, date: str | None = None) -> Document:
    return _doc(doc_id, text, "statute_article", law_name=law, article_no=article, effective_date=date)


def _run(docs: list[Document], **cfg) -> list:
    dedup = Deduplicator(DedupConfig(**cfg))
    hasher = make_hasher(dedup.cfg)
    return [dedup.check(ordinal, fingerprint(doc, hasher)) for ordinal, doc in enumerate(docs)]


def _change(text: str, positions: list[int]) -> str:
    chars = list(text)
    for position in positions:
        chars[position] = "홝" if chars[position] != "홝" else "뷁"
    return "".join(chars)


def test_signature_is_bit_identical_to_datasketch_update_batch():
    hasher = MinHasher(num_perm=128, ngram=5)
    shingles = hasher.shingles(comparison_codes(RULING))
    reference = MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32")
    reference.update_batch(shingles.tolist())
    assert np.array_equal(hasher.signature_of_shingles(shingles), reference.hashvalues)
    # More shingles than one block of the product: the blocked minimum must still match.
    many = np.random.default_rng(0).integers(0, 2**32, 20_000, dtype=np.uint64).astype(np.uint32)
    reference = MinHash(num_perm=128, seed=1, hashfunc=int, scheme="affine32")
    reference.update_batch(many.tolist())
    assert np.array_equal(hasher.signature_of_shingles(many), reference.hashvalues)


def test_comparison_text_ignores_spacing_punctuation_and_case():
    assert comparison_text("납세 의무자는,\n「소득세법」 제12조 ABC") == comparison_text(
        "납세의무자는 소득세법제12조 abc"
    )
    assert comparison_text("제12조") != comparison_text("제13조")


def test_exact_duplicate_with_other_spacing_is_dropped_and_first_copy_kept():
    verdicts = _run([_doc("a", RULING), _doc("b", OTHER), _doc("c", RULING.replace(". ", ".\n  "))])
    assert [v.keep for v in verdicts] == [True, True, False]
    assert (verdicts[2].method, verdicts[2].duplicate_of) == ("exact", "a")


def test_near_duplicate_with_one_or_two_characters_changed_is_dropped():
    for positions in ([40], [40, 300]):
        verdicts = _run([_doc("a", RULING), _doc("b", _change(RULING, positions))])
        assert not verdicts[1].keep, positions
        assert verdicts[1].method == "near"
        assert verdicts[1].duplicate_of == "a"
        assert verdicts[1].similarity >= 0.9


def test_substantially_different_text_is_kept():
    # A fifth of the text rewritten: still related, but a different document.
    rewritten = RULING[: len(RULING) * 4 // 5] + OTHER[: len(RULING) // 5]
    assert [v.keep for v in _run([_doc("a", RULING), _doc("b", rewritten), _doc("c", OTHER)])] == [True, True, True]


def test_exact_only_config_keeps_near_duplicates():
    verdicts = _run([_doc("a", RULING), _doc("b", _change(RULING, [40]))], near=False)
    assert [v.keep for v in verdicts] == [True, True]


def test_same_text_in_a_different_article_or_law_is_kept():
    text = "제5조(목적) 이 법은 소득의 성격과 납세자의 부담능력 등에 따라 적정하게 과세함으로써 조세부담의 형평을 도모한다."
    docs = [
        _statute("a", text, "소득세법", 5),
        _statute("b", text, "소득세법", 6),  # another article of the same law
        _statute("c", text, "법인세법", 5),  # the same article number in another law
        _doc("d", text),  # a ruling quoting the article is not a version of it
    ]
    assert [v.keep for v in _run(docs)] == [True, True, True, True]


def test_newest_statute_version_is_kept_whatever_the_order():
    old, new = RULING, _change(RULING, [100])
    # Older first: the newer version replaces it.
    verdicts = _run([_statute("v2020", old, date="2020-01-01"), _statute("v2024", new, date="2024-01-01")])
    assert verdicts[1].keep and verdicts[1].replaces == 0 and verdicts[1].duplicate_of == "v2020"
    # Newer first: the older one is dropped.
    verdicts = _run([_statute("v2024", new, date="2024-01-01"), _statute("v2020", old, date="2020-01-01")])
    assert not verdicts[1].keep and verdicts[1].duplicate_of == "v2024"
    # An exact copy of the replaced text later on matches the replacement, not the dropped version.
    verdicts = _run(
        [_statute("v2020", old, date="2020-01-01"), _statute("v2024", new, date="2024-01-01"), _statute("x", old)]
    )
    assert not verdicts[2].keep and verdicts[2].duplicate_of == "v2024"


def test_decisions_keep_the_first_copy_even_when_a_later_copy_is_newer():
    first, later = _doc("first", RULING, decision_date="2010-01-01"), _doc("later", RULING, decision_date="2020-01-01")
    verdicts = _run([first, later])
    assert [v.keep for v in verdicts] == [True, False]
    assert verdicts[1].duplicate_of == "first"


def test_decisions_are_deterministic():
    docs = [_doc(str(i), _change(RULING, [i * 7 % len(RULING)])) for i in range(12)] + [_doc("o", OTHER)]
    first = [(v.keep, v.duplicate_of) for v in _run(docs)]
    assert first == [(v.keep, v.duplicate_of) for v in _run(docs)]
    assert first[0] == (True, None) and all(v == (False, "0") for v in first[1:12]) and first[12] == (True, None)
