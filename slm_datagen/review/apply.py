"""`slm build` follows the human decisions: the one function the build stage calls, and the edit check it shares
with the review page.

For each pair whose last decision still matches its content (see decisions.pair_sha256):
- reject  -> the pair goes to rejected.jsonl with rule `human_rejected` and the reason;
- approve -> the rules' review holds are lifted (flags stay; a rule that rejects the pair still rejects it, and the
  decision is reported as not applied: approve cannot overrule a reject, an edit that passes can);
- edit    -> the edited pair replaces the original and is checked again by every per-pair rule (checks.check_each_pair,
  the same call the page makes before it accepts the edit); review holds are lifted as for approve.
A decision whose pair changed since, or is gone, is stale: not applied, listed. What was applied, held, stale or
refused is written to build/review_applied.json, which the page, `slm data stats` and the card read.
"""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

from rich.markup import escape

from slm_datagen.dataset.checks import CheckOutcome, check_each_pair
from slm_datagen.dataset.rules import Finding
from slm_datagen.review.decisions import (
    APPLIED_FILE,
    Decision,
    decisions_path,
    pair_sha256,
    read_decisions,
    repair_tear,
)
from slm_forest.config import BuildConfig
from slm_forest.files import write_json
from slm_forest.progress import console
from slm_forest.records import Chunk, Document, QAPair

# Findings about the pair among the others: still true of an edit that kept the question.
QUESTION_RULES = ("duplicate", "near_duplicate", "paraphrase", "contamination")
# Findings a person overrules by deciding: the teacher checks' opinions and the review holds themselves.
HUMAN_OVERRULES = ("judge_low_score", "teacher_disagreement")


def held_rule(findings: list[Finding]) -> str | None:
    """The rule that holds a pair for review (None when it is rejected or accepted)."""
    if any(f.action == "reject" for f in findings):
        return None
    return next((f.rule for f in findings if f.action == "review"), None)


def edited_pair(pair: QAPair, decision: Decision) -> QAPair:
    """The pair as the person edited it; `meta.human_review` records who and the content it replaced."""
    question = pair.question if decision.question is None else decision.question
    answer = pair.answer if decision.answer is None else decision.answer
    meta = pair.meta | {"human_review": _provenance(decision)}
    return pair.model_copy(update={"question": question, "answer": answer, "meta": meta})


def _provenance(decision: Decision) -> dict[str, str]:
    return {
        "decision": decision.decision,
        "reviewer": decision.reviewer,
        "time": decision.time,
        "original_sha256": decision.pair_sha256,
    }


def check_edits(
    edits: list[QAPair], documents: list[Document], chunks: list[Chunk], cfg: BuildConfig
) -> list[list[Finding]]:
    """Every per-pair rule of `slm build` over edited pairs (one call, one statute index)."""
    return check_each_pair(edits, documents, chunks, cfg)[0] if edits else []


def edit_refusal(findings: list[Finding]) -> str | None:
    """Why an edit cannot be accepted: the first rejecting finding (empty, not Korean, a wrong amount …)."""
    reject = next((f for f in findings if f.action == "reject"), None)
    return f"{reject.rule}: {reject.details}" if reject else None


def _lift_holds(findings: list[Finding]) -> list[Finding]:
    return [f for f in findings if f.action != "review" and f.rule not in HUMAN_OVERRULES]


def apply_decisions(
    run_dir: Path,
    stage_dir: Path,
    pairs: list[QAPair],
    outcome: CheckOutcome,
    documents: list[Document],
    chunks: list[Chunk],
    cfg: Any,
) -> tuple[list[QAPair], Path]:
    """The pairs with the edits in place and `outcome.findings` following the decisions; writes review_applied.json."""
    path = decisions_path(run_dir)
    tear = repair_tear(path)
    if tear:
        console.print(f"[yellow]build: {escape(tear)}[/yellow]", highlight=False, soft_wrap=True)
    log = read_decisions(path, cfg.run_name)
    pairs = list(pairs)
    positions = {pair.id: i for i, pair in enumerate(pairs)}
    report: dict[str, Any] = {"decisions_file": str(path), "decisions": len(log.decisions), "tear": tear}
    applied: Counter[str] = Counter()
    stale: list[dict[str, Any]] = []
    refused: list[dict[str, Any]] = []
    held_decided: dict[str, dict[str, str]] = {}
    edits: list[tuple[int, Decision]] = []
    for pair_id, decision in log.latest.items():
        i = positions.get(pair_id)
        if i is None or pair_sha256(pairs[i]) != decision.pair_sha256:
            why = "the pair is no longer in distill/qa_pairs.jsonl" if i is None else "the pair's content changed"
            stale.append({"pair_id": pair_id, "decision": decision.decision, "reviewer": decision.reviewer, "why": why})
            continue
        held = held_rule(outcome.findings[i])
        if held:
            held_decided[pair_id] = {"rule": held, "pair_sha256": decision.pair_sha256, "decision": decision.decision}
        if decision.decision == "reject":
            who = f"by {decision.reviewer} at {decision.time}"
            human = Finding("human_rejected", f"{decision.reason or 'no reason given'} ({who})")
            outcome.findings[i] = [human] + outcome.findings[i]
            applied["reject"] += 1
        elif decision.decision == "approve":
            outcome.findings[i] = _lift_holds(outcome.findings[i])
            pairs[i] = pairs[i].model_copy(update={"meta": pairs[i].meta | {"human_review": _provenance(decision)}})
            _count_or_refuse(applied, refused, pair_id, "approve", outcome.findings[i])
        else:
            edits.append((i, decision))
    new_pairs = [edited_pair(pairs[i], decision) for i, decision in edits]
    for (i, decision), new, found in zip(edits, new_pairs, check_edits(new_pairs, documents, chunks, cfg.build)):
        kept = [f for f in outcome.findings[i] if f.rule in QUESTION_RULES and new.question == pairs[i].question]
        pairs[i] = new
        outcome.findings[i] = _lift_holds(found + kept)
        _count_or_refuse(applied, refused, decision.pair_id, "edit", outcome.findings[i])
    report |= {
        "applied": {kind: applied.get(kind, 0) for kind in ("approve", "reject", "edit")},
        "stale": stale,
        "not_applied": refused,
        "held_decided": held_decided,
        "seen": {pair_id: decision.time for pair_id, decision in log.latest.items()},
    }
    write_json(stage_dir / APPLIED_FILE, report)
    return pairs, stage_dir / APPLIED_FILE


def _count_or_refuse(
    applied: Counter[str], refused: list[dict[str, Any]], pair_id: str, kind: str, findings: list[Finding]
) -> None:
    why = edit_refusal(findings)
    if why is None:
        applied[kind] += 1
    else:
        refused.append({"pair_id": pair_id, "decision": kind, "why": why})
