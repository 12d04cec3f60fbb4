"""`slm build`: check every distilled pair, split by source document, write the dataset, its formats and its card.

Reads  distill/qa_pairs.jsonl (QAPair), prepare/chunks.jsonl (Chunk), collect/documents.jsonl (Document).
Writes train.jsonl / val.jsonl / test.jsonl (SFTExample, always: the train stage reads them), rejected.jsonl and
review.jsonl (RejectedPair: the pair, its rule, the details), the formats in build.formats, build_info.json
(fingerprints and settings), README.md (the dataset card) with lengths.png and laws.png.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.markup import escape

from slm_datagen.dataset.card import write_card
from slm_datagen.dataset.checks import CheckOutcome, check_dataset
from slm_datagen.dataset.formats import to_example, write_formats
from slm_datagen.dataset.hub import hub_token, push_after_build
from slm_datagen.dataset.inputs import load_records
from slm_datagen.dataset.paraphrase import (
    PARAPHRASE_PRECISION,
    PARAPHRASE_RECALL,
    PARAPHRASE_SET,
    PARAPHRASE_THRESHOLD,
)
from slm_datagen.dataset.rules import Finding
from slm_datagen.dataset.splits import SPLITS, split_pairs
from slm_datagen.review.apply import apply_decisions
from slm_forest.errors import SlmError
from slm_forest.files import write_json, write_jsonl
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console
from slm_forest.records import Chunk, Document, QAPair, RejectedPair, SFTExample

# The upstream files whose sha256 the card records, by stage.
FINGERPRINTED = {"collect": "documents.jsonl", "prepare": "chunks.jsonl", "distill": "qa_pairs.jsonl"}


def _details(primary: Finding, others: list[Finding]) -> str:
    rest = [f for f in others if f is not primary]
    if not rest:
        return primary.details
    return primary.details + " | also: " + "; ".join(f"{f.rule}: {f.details}" for f in rest)


def _fingerprints(ctx: StageContext) -> dict[str, str]:
    out: dict[str, str] = {}
    for stage, name in FINGERPRINTED.items():
        manifest = ctx.upstream.get(stage)
        for entry in manifest.outputs if manifest else []:
            if Path(entry.path).name == name:
                out[f"{stage}/{name}"] = entry.sha256
    return out


def _build_info(ctx: StageContext, outcome: CheckOutcome, pairs_in: int, groups: dict[str, int]) -> dict[str, Any]:
    cfg = ctx.cfg.build
    return {
        "run_name": ctx.cfg.run_name,
        "seed": ctx.cfg.seed,
        "val_share": cfg.val_share,
        "test_share": cfg.test_share,
        "formats": list(cfg.formats),
        "license": cfg.card_license,
        "pairs_in": pairs_in,
        "split_groups": groups,
        "fingerprints": _fingerprints(ctx),
        "checks": {
            "min_answer_chars": cfg.min_answer_chars,
            "max_answer_chars": cfg.max_answer_chars,
            "min_hangul_share": cfg.min_hangul_share,
            "near_duplicate_threshold": cfg.near_duplicate_threshold,
            "unresolved_citations": cfg.unresolved_citations,
            "unverified_calculations": cfg.unverified_calculations,
        },
        "calculations": outcome.calculations,
        "contamination": outcome.contamination,
        "judge": outcome.judge,
        "citations": outcome.citations,
        "paraphrase": {
            "set": PARAPHRASE_SET,
            "threshold": PARAPHRASE_THRESHOLD,
            "precision": PARAPHRASE_PRECISION,
            "recall": PARAPHRASE_RECALL,
        },
    }


@dataclass
class _Sorted:
    """The pairs by outcome: accepted (with their flags, in input order), rejected, held for review."""

    accepted: list[QAPair] = field(default_factory=list)
    flags_by_pair: list[list[Finding]] = field(default_factory=list)
    rejected: list[RejectedPair] = field(default_factory=list)
    review: list[RejectedPair] = field(default_factory=list)


def _sort_pairs(pairs: list[QAPair], outcome: CheckOutcome) -> _Sorted:
    """A pair with a `reject` finding is rejected, else one with a `review` finding is held, else it is accepted."""
    out = _Sorted()
    for pair, findings in zip(pairs, outcome.findings):
        reject = next((f for f in findings if f.action == "reject"), None)
        held = next((f for f in findings if f.action == "review"), None)
        if reject is not None:
            out.rejected.append(RejectedPair(pair=pair, rule=reject.rule, details=_details(reject, findings)))
        elif held is not None:
            out.review.append(RejectedPair(pair=pair, rule=held.rule, details=_details(held, findings)))
        else:
            out.accepted.append(pair)
            out.flags_by_pair.append([f for f in findings if f.action == "flag"])
    return out


def _counts(
    pairs: list[QAPair], sorted_pairs: _Sorted, examples: dict[str, list[SFTExample]], outcome: CheckOutcome
) -> dict[str, int]:
    contaminated = sum(1 for findings in outcome.findings for f in findings if f.rule == "contamination")
    return {
        "pairs_in": len(pairs),
        "accepted": len(sorted_pairs.accepted),
        "rejected": len(sorted_pairs.rejected),
        "review": len(sorted_pairs.review),
        "train": len(examples["train"]),
        "val": len(examples["val"]),
        "test": len(examples["test"]),
        "contaminated": contaminated,
        "flagged": sum(1 for pair_flags in sorted_pairs.flags_by_pair if pair_flags),
    }


def _push(stage_dir: Path, repo_id: str, token: str) -> dict[str, Any]:
    """Upload after every file is written; a failed upload is a warning with the retry command, not a failed stage
    (the runner then records the files just written, so the stage stays consistent)."""
    hub = push_after_build(stage_dir, repo_id, token)
    if not hub["pushed"]:
        message = (
            f"build: the dataset is built, but the push to {repo_id} failed: {hub['error']}. Retry: {hub['retry']}"
        )
        console.print(f"[yellow]{escape(message)}[/yellow]", highlight=False, soft_wrap=True)
    return hub


def _teacher_checks(ctx: StageContext, pairs: list[QAPair], chunks: list[Chunk], outcome: CheckOutcome) -> dict:
    """The judge and the second teacher, through build/judge_ledger.jsonl (paid once, capped by build.max_cost_usd);
    returns this run's numbers (sent, from the ledger, dollars), which stay out of the dataset files."""
    cfg = ctx.cfg.build
    if cfg.judge is None and cfg.second_teacher is None:
        return {}
    from slm_datagen.dataset.judge import run_teacher_checks  # noqa: PLC0415 - SDK clients only when asked for

    return run_teacher_checks(pairs, chunks, outcome, cfg, ctx.stage_dir, ctx.cfg.distill.prices)


def _checks_summary(checks_run: dict[str, Any]) -> str:
    parts = [
        f"{name.replace('_', ' ')}: {run['sent']} sent, {run['from_ledger']} from the ledger, "
        f"${run['cost_usd_this_run']:.4f} this run"
        for name, run in checks_run.items()
    ]
    return "; ".join(parts)


def run_build(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.build
    stage_dir = ctx.stage_dir
    # A push that cannot happen fails now, before anything is rewritten; the upload itself is the last step.
    token = hub_token(cfg.push_to_hub) if cfg.push_to_hub else None
    documents = load_records(ctx.upstream_dir("collect") / "documents.jsonl", Document, "collect")
    chunks = load_records(ctx.upstream_dir("prepare") / "chunks.jsonl", Chunk, "prepare")
    pairs_path = ctx.upstream_dir("distill") / "qa_pairs.jsonl"
    pairs = load_records(pairs_path, QAPair, "distill")
    if not pairs:
        raise SlmError(f"{pairs_path}: no pairs to build from", "run `slm distill CONFIG` (check its failures.jsonl)")

    outcome = check_dataset(pairs, documents, chunks, cfg)
    checks_run = _teacher_checks(ctx, pairs, chunks, outcome)
    # The human decisions (slm review): rejects, lifted holds, edits re-checked; review_applied.json says which.
    pairs, human_review = apply_decisions(ctx.run_dir, stage_dir, pairs, outcome, documents, chunks, ctx.cfg)
    sorted_pairs = _sort_pairs(pairs, outcome)
    accepted = sorted_pairs.accepted
    write_jsonl(stage_dir / "rejected.jsonl", sorted_pairs.rejected)
    write_jsonl(stage_dir / "review.jsonl", sorted_pairs.review)
    rejections = Counter(r.rule for r in sorted_pairs.rejected)
    if not accepted:
        top = ", ".join(f"{rule} {n}" for rule, n in rejections.most_common(3))
        raise SlmError(
            f"all {len(pairs)} pairs were rejected or held for review ({top}); see {stage_dir / 'rejected.jsonl'}",
            "read the details there: fix the teacher prompts or the corpus, or loosen the build.* knobs named there",
        )

    flags_by_id = {id(pair): flags for pair, flags in zip(accepted, sorted_pairs.flags_by_pair)}
    docs_by_id = {doc.id: doc for doc in documents}
    chunks_by_id = {chunk.id: chunk for chunk in chunks}
    by_split, plan = split_pairs(accepted, docs_by_id, chunks_by_id, cfg.val_share, cfg.test_share, ctx.cfg.seed)
    examples: dict[str, list[SFTExample]] = {
        name: [to_example(pair, cfg.system_prompt, flags_by_id[id(pair)]) for pair in by_split[name]] for name in SPLITS
    }

    outputs: list[Path] = write_formats(stage_dir, list(cfg.formats), examples)
    outputs += [stage_dir / "rejected.jsonl", stage_dir / "review.jsonl", human_review]
    info_path = stage_dir / "build_info.json"
    write_json(info_path, _build_info(ctx, outcome, len(pairs), plan.groups))
    outputs.append(info_path)
    outputs += write_card(stage_dir)
    hub = _push(stage_dir, cfg.push_to_hub, token) if cfg.push_to_hub and token else None

    flag_counts = Counter(f.rule for pair_flags in sorted_pairs.flags_by_pair for f in pair_flags)
    top = ", ".join(f"{rule} {n}" for rule, n in rejections.most_common(4))
    summary = f"{len(accepted)}/{len(pairs)} pairs accepted" + (f"; rejected: {top}" if top else "")
    if checks_run:
        summary += "; " + _checks_summary(checks_run)
    if hub is not None:
        summary += f"; pushed to {hub['url']}" if hub["pushed"] else f"; push to {hub['repo']} failed (see above)"
    return StageResult(
        outputs=outputs,
        counts=_counts(pairs, sorted_pairs, examples, outcome),
        stats={
            "rejections": dict(rejections.most_common()),
            "flags": dict(flag_counts.most_common()),
            "split_groups": plan.groups,
            "judge": outcome.judge,
            "calculations": outcome.calculations,
            # this run's judge / second-teacher requests; a plain rerun retries the ones that ran out of retries
            "teacher_checks_this_run": checks_run,
            "retry_on_rerun": sum(run["retry_on_rerun"] for run in checks_run.values()),
        }
        | ({"hub": hub} if hub is not None else {}),
        extra_inputs=[Path(p) for p in cfg.contamination_files],
        summary=summary,
    )
