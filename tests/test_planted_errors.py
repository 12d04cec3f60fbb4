"""The planted-error suite of issue 11: every pair of tests/fixtures/planted/pairs.yaml goes through the build checks
`slm build` runs (checks.check_dataset), one pair at a time so that the suite's own repeated questions are not caught
as duplicates. A planted error counts as caught only when an arithmetic rule rejects it; a correct pair counts as kept
only when it reaches the splits. The expected figures in the fixture are worked by hand from the statute.

Run `python -m tests.test_planted_errors` for the per-kind report with every miss and why.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from slm_datagen.dataset.checks import check_dataset
from slm_forest.config import BuildConfig
from slm_forest.records import Calculation, Document, QAPair

FIXTURE = Path(__file__).parent / "fixtures" / "planted" / "pairs.yaml"
ARITHMETIC_RULES = {
    "calc_mismatch",
    "calc_bad_payload",
    "calc_answer_mismatch",
    "calc_step_mismatch",
    "calc_late_filing_ignored",
    "calc_payload_contradicts_question",
    "deduction_denied",
}
# Stand-ins for the collected articles the planted answers cite, so that grounding (someone else's rule) passes them;
# the 시행일 also sets the dataset's as-of date (2025-01-01: tables unchanged since 2023 for the undated questions).
CITED = {"상속세 및 증여세법": (53, 56, 57), "소득세법": (55, 103)}


@dataclass(frozen=True)
class Outcome:
    kind: str
    expect: str
    got: str  # keep | reject | review
    rule: str | None
    details: str
    case: str


def stand_in_corpus() -> list[Document]:
    return [
        Document(
            id=f"doc-{law}-{article}",
            kind="statute_article",
            title=f"{law} 제{article}조",
            text=f"제{article}조 (planted-suite stand-in for the collected article)",
            source="test:planted",
            law_name=law,
            article_no=article,
            effective_date="2025-01-01",
        )
        for law, articles in CITED.items()
        for article in articles
    ]


def planted_pairs() -> list[tuple[dict, dict, QAPair]]:
    scenarios = yaml.safe_load(FIXTURE.read_text(encoding="utf-8"))
    out = []
    for scenario in scenarios:
        for i, entry in enumerate(scenario["pairs"]):
            calc = entry.get("calculation")
            pair = QAPair(
                id=f"{scenario['id']}-{i}",
                chunk_id="chunk-planted",
                doc_id="doc-planted",
                kind="interpretation",
                question=scenario["question"],
                answer=entry["answer"],
                audience="expert",
                style="calculation" if calc else "explain",
                calculation=Calculation(**calc) if calc else None,
                teacher="planted",
                model="hand",
                prompt_version="planted-v1",
                request_key=f"planted-{scenario['id']}-{i}",
            )
            out.append((scenario, entry, pair))
    return out


def run_suite() -> list[Outcome]:
    documents = stand_in_corpus()
    cfg = BuildConfig()
    outcomes = []
    for scenario, entry, pair in planted_pairs():
        findings = check_dataset([pair], documents, [], cfg).findings[0]
        reject = next((f for f in findings if f.action == "reject"), None)
        review = next((f for f in findings if f.action == "review"), None)
        got = "reject" if reject else "review" if review else "keep"
        shown = reject or review
        outcomes.append(
            Outcome(
                scenario["kind"],
                entry["expect"],
                got,
                shown.rule if shown else None,
                shown.details if shown else "",
                f"{pair.id} ({entry.get('failure', 'correct')})",
            )
        )
    return outcomes


def correct(o: Outcome) -> bool:
    if o.expect == "reject":
        return o.got == "reject" and o.rule in ARITHMETIC_RULES
    if o.expect == "unverified":
        return o.got == "review" and o.rule == "calc_unverified"
    return o.got == "keep"


def report(outcomes: list[Outcome]) -> tuple[str, dict[str, float]]:
    by_kind: dict[str, dict[str, list[Outcome]]] = defaultdict(lambda: defaultdict(list))
    for o in outcomes:
        by_kind[o.kind][o.expect].append(o)
    lines = [f"{'kind':<18} {'wrong rejected':>16} {'right kept':>12} {'unverified held':>16}"]

    def share(items: list[Outcome]) -> str:
        return f"{sum(map(correct, items))}/{len(items)}" if items else "-"

    for kind, groups in sorted(by_kind.items()):
        lines.append(
            f"{kind:<18} {share(groups['reject']):>16} {share(groups['keep']):>12} {share(groups['unverified']):>16}"
        )
    totals = {}
    for expect in ("reject", "keep", "unverified"):
        items = [o for o in outcomes if o.expect == expect]
        totals[expect] = sum(map(correct, items)) / len(items)
    lines.append(
        f"{'overall':<18} {totals['reject']:>16.1%} {totals['keep']:>12.1%} {totals['unverified']:>16.1%}"
        f"   ({len(outcomes)} pairs)"
    )
    misses = [o for o in outcomes if not correct(o)]
    for o in misses:
        lines.append(f"MISS {o.case}: expected {o.expect}, got {o.got} [{o.rule}] {o.details[:300]}")
    return "\n".join(lines), totals


@pytest.fixture(scope="module")
def outcomes() -> list[Outcome]:
    return run_suite()


def test_the_suite_is_big_enough_and_covers_every_failure_kind() -> None:
    pairs = planted_pairs()
    assert len(pairs) >= 150
    kinds = {scenario["kind"] for scenario, _, _ in pairs}
    assert {"gift", "gift_grandparent", "gift_direction", "gift_aggregation", "late_filing", "income"} <= kinds
    assert {"capital_gains", "inheritance", "corporate", "vat", "payload", "explain", "unverifiable"} <= kinds
    expects = {entry["expect"] for _, entry, _ in pairs}
    assert expects == {"keep", "reject", "unverified"}


def test_planted_errors_are_rejected_and_correct_pairs_kept(outcomes: list[Outcome]) -> None:
    text, totals = report(outcomes)
    print("\n" + text)
    assert totals["reject"] >= 0.97, text
    assert totals["keep"] >= 0.97, text
    assert totals["unverified"] >= 0.97, text


def test_the_seed_sample_and_its_correction(outcomes: list[Outcome]) -> None:
    seed = {o.case.split(" ")[0]: o for o in outcomes if o.case.startswith("gift-seed-")}
    assert seed["gift-seed-5"].got == "reject" and "9,000만원" in seed["gift-seed-5"].details
    assert seed["gift-seed-0"].got == "keep"


def test_a_wrong_step_names_the_step_its_stated_and_its_computed_value(outcomes: list[Outcome]) -> None:
    step = next(o for o in outcomes if o.case.startswith("gift-seed-7"))
    assert step.rule == "calc_step_mismatch"
    assert "과세표준" in step.details and "19억 8,000만원" in step.details and "19억 5,000만원" in step.details


def _pair(pair_id: str) -> QAPair:
    return next(pair for _, _, pair in planted_pairs() if pair.id == pair_id)


@pytest.mark.parametrize(("policy", "action"), [("review", "review"), ("keep", "flag"), ("reject", "reject")])
def test_build_unverified_calculations_decides_where_unverified_answers_go(policy: str, action: str) -> None:
    cfg = BuildConfig(unverified_calculations=policy)
    outcome = check_dataset([_pair("gift-after-known-law-0")], stand_in_corpus(), [], cfg)
    assert [(f.rule, f.action) for f in outcome.findings[0]] == [("calc_unverified", action)]
    assert "2025-12-31" in outcome.findings[0][0].details  # why: after the last date the tables are known for


def test_counts_by_status_and_rule_reach_the_card() -> None:
    from slm_datagen.dataset.card import _calculation_lines

    pairs = [_pair("gift-seed-5"), _pair("income-5000-0"), _pair("gift-after-known-law-0"), _pair("explain-0")]
    calc = check_dataset(pairs, stand_in_corpus(), [], BuildConfig()).calculations
    assert calc["calculation_answers"] == 3  # the explanation is not a calculation answer
    assert calc["by_status"] == {"verified": 1, "rejected": 1, "unverified": 1}
    assert calc["rejected_by_rule"] == {"calc_answer_mismatch": 1} and calc["unverified_policy"] == "review"
    line = _calculation_lines(calc)[0]
    assert "1 verified" in line and "`calc_answer_mismatch` 1" in line and "1 unverified" in line


if __name__ == "__main__":
    print(report(run_suite())[0])
