"""Numeric accuracy on held-out calculation questions, base vs SFT vs RL side by side (`metrics["calc_heldout"]`).

The questions are the reinforce prompts' test split (`reinforce/prompts.jsonl`, families never trained on by GRPO);
before a reinforce run, the same split regenerated from the `reinforce` section and the seed (`prompts.
generated_rows`, the identical call the stage makes), so SFT vs base is measured either way. At most
`evaluate.calc_questions` of them, in file order (null: 50 when the run uses reinforce, else none).

Each model answers greedily (`reinforce.score.score_rows`: the chat template with the generation prompt, stops on eos
and the end-of-turn token, `reinforce.max_completion_length` new tokens or 1.5 × the longest worked answer to these
questions when that is less) and
the answer is *exact* when its final amount equals the calculator's to the 원; a cut-off or non-Korean answer is not
exact. The three models are one loaded PEFT model: base = the adapter switched off, SFT = train/adapter, RL =
reinforce/adapter loaded beside it, so only the adapter differs between columns.

Reported: accuracy with its Wilson interval per model, accuracy per kind, the mean of every reward, and paired
bootstrap intervals (`stats.paired_bootstrap`, the same resampled questions for both models) of SFT − base, RL − base
and RL − SFT. Plain functions; torch and peft are imported only inside them.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from fine_tuning.evaluate.stats import paired_bootstrap, ratio, wilson_interval
from fine_tuning.reinforce.adapter import rl_adapter
from fine_tuning.reinforce.prompts import PromptRow, generated_rows, read_rows

PAIRS = (("sft", "base"), ("rl", "base"), ("rl", "sft"))
RL_ADAPTER = "rl"


AUTO_QUESTIONS = 50  # evaluate.calc_questions: null, in a run that uses reinforce
RUNAWAY_FACTOR = 1.5  # an answer past 1.5 × the longest worked answer fails the format check anyway


def question_limit(run_dir: Path, cfg: Any) -> int:
    """evaluate.calc_questions, with null resolved: AUTO_QUESTIONS in a run that uses reinforce, else 0 (the test
    split's own calculation items are still scored by `calculator`)."""
    if cfg.evaluate.calc_questions is not None:
        return int(cfg.evaluate.calc_questions)
    uses_rl = cfg.reinforce.enabled or (run_dir / "reinforce" / "manifest.json").exists()
    return AUTO_QUESTIONS if uses_rl else 0


def answer_budget(tokenizer: Any, rows: list[PromptRow], max_completion_length: int) -> int:
    """New tokens per answer: reinforce.max_completion_length, or less when every worked answer to these questions
    is far shorter (the runaway check fails anything past RUNAWAY_FACTOR × the longest one, so generating further
    only costs time)."""
    from fine_tuning.reinforce.prompts import reference_answer

    longest = max(
        len(tokenizer(reference_answer(r.facts.computation, r.audience), add_special_tokens=False)["input_ids"])
        for r in rows
    )
    return min(max_completion_length, int(RUNAWAY_FACTOR * longest) + 8)


def heldout_rows(run_dir: Path, cfg: Any, limit: int) -> tuple[list[PromptRow], str]:
    """(the held-out calculation questions, at most `limit`, where they came from)."""
    from slm_datagen.taxlaw.questions import KINDS

    prompts = run_dir / "reinforce" / "prompts.jsonl"
    if prompts.exists():
        rows, source = [r for r in read_rows(prompts) if r.split == "test"], "reinforce/prompts.jsonl (test split)"
    else:
        rl = cfg.reinforce
        kinds = tuple(rl.kinds) or KINDS
        rows = [
            r for r in generated_rows(rl.questions, cfg.seed, kinds, rl.val_share, rl.test_share) if r.split == "test"
        ]
        source = "generated from the reinforce section (test split; no reinforce run yet)"
    return rows[:limit], source


@contextlib.contextmanager
def as_variant(model: Any, which: str) -> Iterator[None]:
    """base: adapters off; sft: the train adapter ("default"); rl: the reinforce adapter (loaded as "rl")."""
    if which == "base":
        with model.disable_adapter():
            yield
        return
    model.set_adapter(RL_ADAPTER if which == "rl" else "default")
    try:
        yield
    finally:
        model.set_adapter("default")


def statute_index(run_dir: Path) -> Any:
    """The collected statutes for the citation reward, as the reinforce stage builds them; None without documents."""
    from slm_datagen.dataset.grounding import build_statute_index
    from slm_forest.files import read_jsonl
    from slm_forest.records import Document

    path = run_dir / "collect" / "documents.jsonl"
    if not path.exists():
        return None
    return build_statute_index([Document.model_validate(row) for row in read_jsonl(path)])


def run_calc_heldout(model: Any, tokenizer: Any, run_dir: Path, cfg: Any, stage_dir: Path) -> tuple[Any, list[Path]]:
    """The evaluate stage's hook: metrics["calc_heldout"] (None when evaluate.calc_questions is 0) and the files
    written (calc_predictions.jsonl)."""
    from fine_tuning.reinforce.score import stop_ids
    from fine_tuning.train.loading import read_train_summary
    from slm_forest.files import write_jsonl

    limit = question_limit(run_dir, cfg)
    if not limit:
        return None, []
    ends = stop_ids(tokenizer, read_train_summary(run_dir / "train"))
    metrics, rows = calc_heldout(model, tokenizer, run_dir, cfg, statute_index(run_dir), ends, limit)
    if not rows:
        return metrics, []
    write_jsonl(stage_dir / "calc_predictions.jsonl", rows)
    return metrics, [stage_dir / "calc_predictions.jsonl"]


def calc_heldout(
    model: Any, tokenizer: Any, run_dir: Path, cfg: Any, corpus_index: Any, stop_ids: list[int], limit: int
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """(metrics["calc_heldout"], one prediction row per question)."""
    from fine_tuning.reinforce.score import score_rows

    rows, source = heldout_rows(run_dir, cfg, limit)
    if not rows:
        return {"n": 0, "source": source, "note": "the test split holds no question: raise reinforce.questions"}, []
    rl = rl_adapter(run_dir)
    rl_dir = rl.path
    variants = ["base", "sft"] + (["rl"] if rl_dir is not None else [])
    if rl_dir is not None:
        model.load_adapter(str(rl_dir), adapter_name=RL_ADAPTER)
    budget = answer_budget(tokenizer, rows, cfg.reinforce.max_completion_length)
    eos_before = model.generation_config.eos_token_id
    model.generation_config.eos_token_id = stop_ids
    scored: dict[str, list[dict[str, Any]]] = {}
    try:
        for which in variants:
            with as_variant(model, which):
                scored[which] = score_rows(
                    model,
                    tokenizer,
                    rows,
                    system_prompt=cfg.build.system_prompt,
                    max_new_tokens=budget,
                    batch_size=cfg.evaluate.batch_size,
                    index=corpus_index,
                )
    finally:
        model.generation_config.eos_token_id = eos_before
        if rl_dir is not None:
            model.delete_adapter(RL_ADAPTER)
    metrics = summarize_variants(rows, scored, cfg.evaluate.bootstrap_resamples, cfg.seed)
    metrics |= {
        "source": source,
        "max_new_tokens": budget,
        "rl_adapter": str(rl_dir) if rl_dir else None,
        "rl_missing": rl.reason,
    }
    return metrics, prediction_rows(rows, scored)


def summarize_variants(
    rows: list[PromptRow], scored: dict[str, list[dict[str, Any]]], resamples: int, seed: int
) -> dict[str, Any]:
    """Per model: accuracy, Wilson interval, unscorable, reward means, per kind; per pair: the paired delta."""
    from fine_tuning.reinforce.score import summarize

    models: dict[str, Any] = {}
    for which, items in scored.items():
        report = summarize(rows, items, keep_answers=0)
        low_high = wilson_interval(report.exact, report.n)
        models[which] = {
            "n": report.n,
            "exact": report.exact,
            "accuracy": report.accuracy,
            "wilson95": [round(v, 4) for v in low_high] if low_high else None,
            "unscorable": report.unscorable,
            "truncated": sum(item["truncated"] for item in items),
            "reward_means": report.reward_means,
            "by_kind": report.by_kind,
        }
    deltas = {}
    for tuned, base in PAIRS:
        if tuned in scored and base in scored:
            interval = paired_bootstrap(
                [[item["exact"], 1] for item in scored[base]],
                [[item["exact"], 1] for item in scored[tuned]],
                ratio,
                resamples=resamples,
                seed=seed,
            )
            deltas[f"{tuned}-{base}"] = interval.as_dict()
    return {"n": len(rows), "models": models, "deltas": deltas}


def prediction_rows(rows: list[PromptRow], scored: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """calc_predictions.jsonl: the question, the calculator's amount and each model's answer with its rewards."""
    out = []
    for i, row in enumerate(rows):
        computation = row.facts.computation
        entry: dict[str, Any] = {
            "id": row.id,
            "kind": row.facts.kind,
            "question": row.question,
            "expected_payable": computation.payable if computation else None,
        }
        for which, items in scored.items():
            item = items[i]
            entry[which] = {k: item[k] for k in ("answer", "truncated", "exact", "scores")}
        out.append(entry)
    return out


# ------------------------------------------------------------------------------------------------------- report
SECTION = "## Held-out calculations: base, SFT, RL"
NAMES = {"base": "base", "sft": "SFT", "rl": "RL"}


def report_lines(metrics: dict[str, Any]) -> list[str]:
    """report.md's section: accuracy to the 원 per model with its interval, then the paired deltas."""
    from fine_tuning.evaluate.report import fmt, table

    calc = metrics.get("calc_heldout")
    if not calc:
        return []
    lines = ["", SECTION, ""]
    if not calc.get("n"):
        return [*lines, f"Not measured: {calc.get('note', 'no held-out questions')}."]
    models = calc["models"]
    lines += [
        f"{calc['n']} calculation questions from {calc['source']}; *exact* = the final amount equals the "
        "calculator's to the 원 (a cut-off or non-Korean answer is not exact), greedy decoding; the reward means "
        "(partial credit, steps, citations) are over the answers that could be scored (not cut off, Korean).",
        "",
    ]
    if "rl" not in models:
        lines += [f"No RL column: {calc.get('rl_missing') or 'no RL adapter'} (`slm reinforce CONFIG`).", ""]
    header = ["model", "exact", "accuracy", "Wilson 95 %", "cut off", "partial credit", "steps", "citations"]
    rows = []
    for which, m in models.items():
        low_high = m["wilson95"]
        means = m["reward_means"]
        rows.append(
            [
                NAMES[which],
                f"{m['exact']}/{m['n']}",
                fmt(m["accuracy"]),
                f"{low_high[0]:.3f}–{low_high[1]:.3f}" if low_high else "—",
                m["truncated"],
                fmt(means.get("partial_amount")),
                fmt(means.get("steps")),
                fmt(means.get("citations")),
            ]
        )
    lines.append(table(header, rows))
    lines += ["", "Paired bootstrap of the accuracy difference (the same resampled questions for both models):", ""]
    delta_rows = []
    for key, d in calc["deltas"].items():
        tuned, base = key.split("-")
        ci = f"{d['low']:+.3f} to {d['high']:+.3f}" if d["low"] is not None else "—"
        delta_rows.append(
            [f"{NAMES[tuned]} − {NAMES[base]}", f"{d['delta']:+.3f}", ci, "yes" if d["significant"] else "no"]
        )
    lines.append(table(["difference", "Δ accuracy", "95 % interval", "significant"], delta_rows))
    kinds = sorted({k for m in models.values() for k in m["by_kind"]})
    by_kind = [[k, *(_kind_cell(models[w], k) for w in models)] for k in kinds]
    lines += ["", "Accuracy per kind:", "", table(["kind", *(NAMES[w] for w in models)], by_kind)]
    return lines


def _kind_cell(model: dict[str, Any], kind: str) -> str:
    entry = model["by_kind"].get(kind)
    return f"{entry['accuracy']:.3f} (n={entry['n']})" if entry else "—"
