"""All quality rules over a whole dataset, in order: per-pair rules, then the rules that compare pairs.

1. per pair (progress bar): content (content.py), tax arithmetic (arithmetic.py), citation grounding (grounding.py),
   the conclusion of an interpretation or ruling (conclusion.py)
2. among the pairs still standing: duplicate and near-duplicate questions (duplicates.py) — so a broken pair never
   "claims" a question that a good pair also asks
3. benchmark contamination (contamination.py)
4. optional, last because they cost money: the LLM judge and the second teacher (judge.py)

The result keeps every finding per pair position; the stage decides what is rejected, flagged or held for review.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.dataset.arithmetic import CalcCheck, calculation_counts, dataset_as_of, judge_arithmetic
from slm_datagen.dataset.conclusion import check_conclusion
from slm_datagen.dataset.contamination import contamination_finding, find_contamination, load_benchmark_questions
from slm_datagen.dataset.content import check_content
from slm_datagen.dataset.duplicates import find_duplicates
from slm_datagen.dataset.grounding import StatuteIndex, build_statute_index, check_grounding
from slm_datagen.dataset.rules import Finding
from slm_forest.config import BuildConfig
from slm_forest.files import sha256_file
from slm_forest.progress import progress_bar
from slm_forest.records import Chunk, Document, QAPair


@dataclass
class CheckOutcome:
    findings: list[list[Finding]]  # one list per input pair, in input order
    contamination: dict[str, Any] = field(default_factory=dict)  # what was compared, for the card
    judge: dict[str, Any] = field(default_factory=dict)  # judge / second-teacher settings and spend, for the card
    second_answers: dict[int, str] = field(default_factory=dict)  # position -> the second teacher's answer
    citations: dict[str, Any] = field(default_factory=dict)  # citation outcomes and the laws held in full, for the card
    calculations: dict[str, Any] = field(default_factory=dict)  # calculation answers by status and rule, for the card

    def rejected(self, position: int) -> bool:
        return any(f.action == "reject" for f in self.findings[position])

    def standing(self) -> list[int]:
        """Positions not rejected (so far)."""
        return [i for i in range(len(self.findings)) if not self.rejected(i)]


def check_each_pair(
    pairs: list[QAPair],
    documents: list[Document],
    chunks: list[Chunk],
    cfg: BuildConfig,
    calc_checks: list[CalcCheck | None] | None = None,
) -> tuple[list[list[Finding]], dict[str, Any]]:
    """The per-pair findings, and the citation report for the card (see citation_report); each calculation verdict
    is appended to `calc_checks` when given."""
    index = build_statute_index(documents)
    as_of = dataset_as_of(documents)
    docs_by_id = {doc.id: doc for doc in documents}
    chunks_by_id = {chunk.id: chunk for chunk in chunks}
    tally: Counter[str] = Counter()
    findings: list[list[Finding]] = []
    with progress_bar("checking pairs", len(pairs)) as bar:
        for pair in pairs:
            found = check_content(pair, cfg)
            if not any(f.rule in ("empty", "too_short", "too_long") for f in found):
                arithmetic = judge_arithmetic(pair, cfg.unverified_calculations, as_of)
                found += arithmetic.findings
                if calc_checks is not None:
                    calc_checks.append(arithmetic.check)
                found += check_grounding(pair, index, docs_by_id, chunks_by_id, cfg.unresolved_citations, tally)
                found += check_conclusion(pair, docs_by_id, chunks_by_id)
            findings.append(found)
            bar.advance()
    return findings, citation_report(index, tally)


CITATION_OUTCOMES = (
    "verified",
    "grounded_in_source",
    "unverified_partial_law",
    "unverified_not_collected",
    "not_in_full_law",
    "unknown_law",
    "wrong_version",
    "paragraph_missing",
)


def citation_report(index: StatuteIndex, tally: Counter[str]) -> dict[str, Any]:
    """Citations per outcome (every outcome present, zeros included) and which collected laws are whole."""
    return {
        "outcomes": {outcome: tally.get(outcome, 0) for outcome in CITATION_OUTCOMES},
        "laws_in_full": sorted(index.whole_versions),
        "laws_in_part": sorted(index.laws - set(index.whole_versions)),
    }


def check_contamination(pairs: list[QAPair], outcome: CheckOutcome, cfg: BuildConfig) -> None:
    if not cfg.contamination_files:
        return
    benchmark = load_benchmark_questions(cfg.contamination_files, cfg.contamination_ngram)
    standing = outcome.standing()
    hits = find_contamination(
        [pairs[i] for i in standing], benchmark, cfg.contamination_ngram, cfg.contamination_min_share
    )
    for local, (share, item) in hits.items():
        outcome.findings[standing[local]].append(
            contamination_finding(share, item, cfg.contamination_ngram, cfg.contamination_action)
        )
    outcome.contamination = {
        "files": [{"name": Path(p).name, "sha256": sha256_file(Path(p))} for p in cfg.contamination_files],
        "questions": len(benchmark),
        "ngram": cfg.contamination_ngram,
        "min_share": cfg.contamination_min_share,
        "action": cfg.contamination_action,
        "matches": len(hits),
    }


def check_dataset(
    pairs: list[QAPair], documents: list[Document], chunks: list[Chunk], cfg: BuildConfig
) -> CheckOutcome:
    calc_checks: list[CalcCheck | None] = []
    findings, citations = check_each_pair(pairs, documents, chunks, cfg, calc_checks)
    outcome = CheckOutcome(findings, citations=citations)
    outcome.calculations = calculation_counts(calc_checks, cfg.unverified_calculations)
    standing = outcome.standing()
    for local, finding in find_duplicates([pairs[i] for i in standing], cfg.near_duplicate_threshold).items():
        outcome.findings[standing[local]].append(finding)
    check_contamination(pairs, outcome, cfg)
    # The judge and the second teacher (they cost money) run after this, in the build stage: dataset/judge.py.
    return outcome
