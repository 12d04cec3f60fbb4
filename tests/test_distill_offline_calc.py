"""The offline teacher's calculation pairs, and the demo's planted errors judged by the build's real checks."""

from __future__ import annotations

from collections import Counter
from functools import lru_cache

from slm_datagen.collect.bundled import iter_bundled
from slm_datagen.dataset.checks import check_dataset
from slm_datagen.distill.offline import offline_draft, offline_pair
from slm_datagen.distill.offline_calc import offline_calculation_kinds, rate_articles
from slm_datagen.prepare.chunk import chunk_document
from slm_datagen.taxlaw.citations import find_citations
from slm_datagen.taxlaw.kinds import compute
from slm_forest.config import BuildConfig
from slm_forest.records import Chunk, Document, QAPair, content_id

# Planted kinds (and steps) the build's checks reject today, and those they do not yet: the rewrite of the answer
# checks (every labelled step recomputed, the payload's facts compared with the question) is to close the second set.
CAUGHT_TODAY = {
    ("wrong_bracket", "computed_tax"),
    ("missing_deduction", "deduction_item"),
    ("wrong_final", "payable"),
    ("wrong_intermediate", "taxable_base"),
}
NOT_CAUGHT_YET = {
    ("wrong_intermediate", "computed_tax"),  # only the last stated tax and the last 과세표준 are compared
    ("wrong_intermediate", "deduction_item"),  # a wrong 증여재산공제 line with a right 과세표준 after it
    ("payload_facts_differ", "inputs"),  # the payload is recomputed but never compared with the question
}
# every calculation rule that rejects (calc_unverified only holds for review); with the 상증법 rate articles bundled, a
# wrong 과세표준 line in a gift pair written from 제53조 is caught by calc_step_mismatch alone
CALC_RULES = {
    "calc_mismatch",
    "calc_answer_mismatch",
    "calc_bad_payload",
    "calc_step_mismatch",
    "calc_late_filing_ignored",
    "calc_payload_contradicts_question",
}


@lru_cache(maxsize=1)
def bundled() -> tuple[list[Document], list[Chunk]]:
    docs = [d for _, ds in iter_bundled(["statutes", "rulings"]) for d in ds]
    chunks = [c for d in docs for c in chunk_document(d, 1200, 20).chunks]
    return docs, chunks


def _pair(chunk: Chunk, audience: str, seed: int, rate: float) -> QAPair | None:
    found = offline_draft(chunk, audience, "calculation", seed, rate)
    if found is None:
        return None
    draft, meta = found
    return QAPair(
        id=content_id("qa", chunk.id, audience, seed, rate),
        chunk_id=chunk.id,
        doc_id=chunk.doc_id,
        kind=chunk.kind,
        question=draft.question,
        answer=draft.answer,
        audience=draft.audience,
        style="calculation",
        citations=[c.label() for c in draft.citations],
        calculation=draft.calculation.to_record() if draft.calculation else None,
        teacher="offline",
        model="offline-v1",
        prompt_version="offline@2",
        request_key="k",
        source_citation=chunk.citation,
        law_name=chunk.law_name,
        meta=meta,
    )


def _calc_pairs(seeds: range, rate: float) -> list[QAPair]:
    _, chunks = bundled()
    pairs = [_pair(c, a, s, rate) for s in seeds for c in chunks for a in ("expert", "layperson")]
    return [p for p in pairs if p is not None]


def _corpus_with(pairs: list[QAPair]) -> list[Document]:
    """The bundled corpus plus the rate articles the pairs cite (the bundled sample does not hold them yet)."""
    docs, _ = bundled()
    held = {(d.law_name, d.article_no, d.article_branch or 0) for d in docs if d.kind == "statute_article"}
    extra = {}
    for pair in pairs:
        for citation in find_citations(" ".join(pair.citations)):
            key = (citation.law, citation.article, citation.branch or 0)
            if key not in held and key not in extra:
                branch = f"의{citation.branch}" if citation.branch else ""
                title = f"{citation.law} 제{citation.article}조{branch}"
                extra[key] = Document(
                    id=content_id("doc", *key),
                    kind="statute_article",
                    title=title,
                    text=f"{title}(세율 등) ① 이 조문은 계산에 쓰이는 규정이다.",
                    source="test:rate-articles",
                    law_name=citation.law,
                    article_no=citation.article,
                    article_branch=citation.branch,
                )
    return docs + list(extra.values())


def _verdicts(pairs: list[QAPair]) -> list[list[str]]:
    _, chunks = bundled()
    outcome = check_dataset(pairs, _corpus_with(pairs), chunks, BuildConfig())
    return [[f.rule for f in found] for found in outcome.findings]


def test_the_calculator_names_the_articles_and_chunks_on_them_get_calculation_pairs():
    articles = rate_articles()
    assert "income_tax" in articles[("소득세법", 55, 0)] and articles[("소득세법", 104, 0)] == ("capital_gains_tax",)
    assert set(articles[("상속세 및 증여세법", 26, 0)]) == {"gift_tax", "inheritance_tax"}
    assert articles[("상속세 및 증여세법", 53, 0)] == ("gift_tax",) and ("상속세 및 증여세법", 57, 0) in articles
    rate = Chunk(id="c55", doc_id="d55", kind="statute_article", title="세율", text="① 거주자의 종합소득에 대한 소득세는 …",
                 citation="소득세법 제55조", law_name="소득세법", article_no=55)  # fmt: skip
    pair = offline_pair(rate, "expert", "calculation", seed=7)
    assert pair is not None and "소득세법 제55조" in [c.label() for c in pair.citations]
    surcharge = rate.model_copy(
        update={"citation": "상속세 및 증여세법 제57조", "law_name": "상속세 및 증여세법", "article_no": 57}
    )
    assert (
        offline_pair(surcharge, "expert", "calculation", seed=7).calculation.to_record().inputs["relationship"]
        == "grandparent"
    )
    other = rate.model_copy(update={"citation": "법인세법 제7조", "law_name": "법인세법", "article_no": 7})
    assert offline_calculation_kinds(other) == () and offline_pair(other, "expert", "calculation") is None
    _, chunks = bundled()
    assert sum(bool(offline_calculation_kinds(c)) for c in chunks) >= 30  # the rulings on 소득세법 / 상증법


def test_calculation_pairs_state_the_facts_and_every_step_and_are_seeded():
    pairs = _calc_pairs(range(1), 0.0)
    assert len(pairs) >= 60 and {p.calculation.kind for p in pairs} == {
        "gift_tax",
        "inheritance_tax",
        "income_tax",
        "capital_gains_tax",
    }
    for pair in pairs:
        calc = pair.calculation
        computed = compute(calc.kind, calc.year, calc.inputs)
        assert calc.result_won == computed.payable and calc.result_field == "payable"
        assert f"{calc.year}년" in pair.question and "?" in pair.question
        for label in ("과세표준", "산출세액", "납부할 세액"):
            assert f"- {label}: " in pair.answer, (label, pair.answer)
        if calc.kind == "gift_tax":
            assert "만 " in pair.question and "세" in pair.question and "- 증여재산공제: " in pair.answer
        if calc.inputs.get("filed_on_time") is False:
            assert "기한이 지나" in pair.question or "놓쳐서" in pair.question
            assert "- 가산세: " in pair.answer and "- 신고세액공제: " not in pair.answer
        assert "(근거: " in pair.answer and not pair.meta
    experts = {p.chunk_id: p.question for p in pairs if p.audience == "expert"}
    assert all(experts.get(p.chunk_id) != p.question for p in pairs if p.audience == "layperson")
    assert [p.question for p in _calc_pairs(range(1), 0.0)] == [p.question for p in pairs]  # same seed, same cases
    assert [p.question for p in _calc_pairs(range(1, 2), 0.0)] != [p.question for p in pairs]


def test_every_unplanted_calculation_pair_passes_every_build_rule():
    for seed in range(3):  # one dataset per seed, as a run makes it
        pairs = _calc_pairs(range(seed, seed + 1), 0.0)
        failed = [(p.question[:60], rules) for p, rules in zip(pairs, _verdicts(pairs), strict=True) if rules]
        assert not failed, failed[:5]


def test_planted_errors_the_checks_cover_are_rejected_and_the_rest_are_listed():
    pairs = _calc_pairs(range(3), 1.0)
    assert all("planted_error" in p.meta for p in pairs)
    tally: Counter[tuple[str, str, bool]] = Counter()
    for pair, rules in zip(pairs, _verdicts(pairs), strict=True):
        planted = pair.meta["planted_error"]
        kind = (planted["kind"], planted["step"])
        assert kind in CAUGHT_TODAY | NOT_CAUGHT_YET, kind
        assert planted["stated_won"] != planted["correct_won"], planted
        caught = bool(CALC_RULES & set(rules))
        tally[(*kind, caught)] += 1
        if kind in CAUGHT_TODAY:
            assert caught, (kind, rules, pair.answer)
    print("planted (kind, step, rejected): count", dict(tally))  # the card's numbers, per kind
    assert {k[:2] for k in tally} == CAUGHT_TODAY | NOT_CAUGHT_YET  # every kind is planted somewhere


def test_the_planted_share_follows_the_rate_and_is_seeded():
    pairs = _calc_pairs(range(2), 0.15)
    share = sum("planted_error" in p.meta for p in pairs) / len(pairs)
    assert 0.07 < share < 0.25, share
    assert [p.meta for p in _calc_pairs(range(2), 0.15)] == [p.meta for p in pairs]
