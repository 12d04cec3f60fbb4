"""`slm evaluate`: is the tuned model better than its base? Same prompts, same decoding, same metrics, side by side.

Reads `build/test.jsonl` (and `build/val.jsonl` for the loss), the train stage (base + LoRA adapter, loaded once: the
base answers are produced by the same weights with the adapter switched off, so nothing but the adapter differs),
`collect/documents.jsonl` (which articles exist) and the KMMLU-format CSVs in `evaluate.benchmarks`.

For base and tuned:
1. eval loss and perplexity on the assistant tokens of every val/test example (the prompt rendered by the chat
   template with `add_generation_prompt=True` is masked; the answer and its end-of-turn token count);
2. answers to the first `evaluate.max_examples` test questions (chat template, left-padded batches of
   `evaluate.batch_size`, `evaluate.max_new_tokens`, greedy when `evaluate.temperature` is 0), scored with chrF and
   ROUGE-L on characters, citation checks (articles that exist in the corpus, that match the reference) and, on
   calculation items, the final amount;
3. each benchmark's accuracy by option log-likelihood (`fine_tuning.evaluate.mcq`), zero-shot and, when
   `evaluate.few_shot` > 0, also `few_shot`-shot (on the same questions);
4. optionally (`evaluate.judge`, off by default) an LLM judge's 1–5 scores for correctness, legal basis and
   clarity, with reasons.
Every number is reported over all examples and per law and per source kind.

Modules: examples (splits, base/tuned switch), loss, answers (generation and scores), benchmarks, judge, report;
this one runs them in order.

Writes `predictions.jsonl` (one row per test question: both answers and their scores), `benchmark_predictions.jsonl`,
`metrics.json`, and `report.md` with `metrics.png`, `groups.png` and a copy of train's `loss.png`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tuning.evaluate.answers import aggregate, answer_rows
from fine_tuning.evaluate.benchmarks import run_benchmarks
from fine_tuning.evaluate.examples import ALL, read_split
from fine_tuning.evaluate.judge import run_judge
from fine_tuning.evaluate.loss import loss_metrics
from slm_forest.errors import SlmError
from slm_forest.files import write_json, write_jsonl
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console


@dataclass
class Headline:
    """One row of the report's main table."""

    name: str
    base: float | None
    tuned: float | None
    higher_is_better: bool = True


def headline(metrics: dict[str, Any]) -> list[Headline]:
    rows: list[Headline] = []
    for split in ("test", "val"):
        loss = metrics["loss"].get(split)
        if loss:
            b, t = loss["base"].get(ALL, {}), loss["tuned"].get(ALL, {})
            rows.append(Headline(f"{split} loss", b.get("loss"), t.get("loss"), False))
            rows.append(Headline(f"{split} perplexity", b.get("perplexity"), t.get("perplexity"), False))
    gen = metrics.get("generation")
    if gen:
        b, t = gen["base"][ALL], gen["tuned"][ALL]
        for key, name in (
            ("chrf", "chrF"),
            ("rouge_l", "ROUGE-L (chars)"),
            ("citing_share", "answers citing an article"),
            ("citation_in_corpus", "cited articles in corpus"),
            ("citation_precision", "citation precision"),
            ("citation_recall", "citation recall"),
            ("numeric_accuracy", "final amount correct"),
            ("judge_mean", "judge score (1-5)"),
        ):
            if b.get(key) is not None or t.get(key) is not None:
                rows.append(Headline(name, b.get(key), t.get(key)))
    from fine_tuning.evaluate.mcq import benchmark_settings

    for bench in metrics.get("benchmarks", []):
        for k, scores in benchmark_settings(bench):
            label = f"{k}-shot"
            b, t = scores["base"], scores["tuned"]
            rows.append(Headline(f"{bench['name']} accuracy ({label})", b["accuracy"], t["accuracy"]))
            rows.append(
                Headline(
                    f"{bench['name']} accuracy, length-normalised ({label})", b["accuracy_norm"], t["accuracy_norm"]
                )
            )
    return rows


def read_metrics(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def headline_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    from fine_tuning.evaluate.metrics import delta

    return [
        {
            "metric": h.name,
            "base": h.base,
            "tuned": h.tuned,
            "delta": delta(h.base, h.tuned),
            "higher_is_better": h.higher_is_better,
        }
        for h in headline(metrics)
    ]


def load_corpus(run_dir: Path, notes: list[str]) -> Any:
    """Which articles exist (collect/documents.jsonl); without it every citation counts as not in the corpus."""
    from fine_tuning.evaluate.metrics import CorpusIndex

    documents = run_dir / "collect" / "documents.jsonl"
    if documents.exists():
        return CorpusIndex.from_documents(documents)
    notes.append(f"{documents} not found: 'cited articles in corpus' is 0 for every answer")
    return CorpusIndex(frozenset())


def load_model(train_dir: Path) -> tuple[Any, Any]:
    """The trained PEFT model (base + adapter) and its tokenizer, quietly; base answers switch the adapter off."""
    from transformers.utils import logging as hf_logging

    from fine_tuning.train.loading import load_trained

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model, tokenizer = load_trained(train_dir)
    if not hasattr(model, "disable_adapter"):
        raise SlmError(
            f"{train_dir}: the trained model has no adapter to switch off", "rerun `slm train CONFIG --force`"
        )
    return model, tokenizer


def write_outputs(
    stage_dir: Path,
    metrics: dict[str, Any],
    rows: list[dict[str, Any]],
    bench_rows: list[dict[str, Any]],
    train_dir: Path,
) -> list[Path]:
    from fine_tuning.evaluate.report import write_report

    outputs = [stage_dir / "predictions.jsonl", stage_dir / "metrics.json"]
    write_jsonl(outputs[0], rows)
    write_json(outputs[1], metrics)
    if bench_rows:
        write_jsonl(stage_dir / "benchmark_predictions.jsonl", bench_rows)
        outputs.append(stage_dir / "benchmark_predictions.jsonl")
    return outputs + write_report(stage_dir, metrics, rows, train_dir)


def summary_line(metrics: dict[str, Any], generated: int) -> str:
    from fine_tuning.evaluate.mcq import benchmark_settings

    loss = metrics["loss"]["test"]
    summary = (
        f"test loss {loss['base'][ALL]['loss']} → {loss['tuned'][ALL]['loss']}, "
        f"chrF {metrics['generation']['base'][ALL]['chrf']} → {metrics['generation']['tuned'][ALL]['chrf']} "
        f"(base → tuned, {generated} answers)"
    )
    for bench in metrics["benchmarks"]:
        summary += f"; {bench['name']} " + ", ".join(
            f"{k}-shot {scores['base']['accuracy']} → {scores['tuned']['accuracy']}"
            for k, scores in benchmark_settings(bench)
        )
    return summary


def run_evaluate(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.evaluate
    build_dir, train_dir, stage_dir = ctx.upstream_dir("build"), ctx.upstream_dir("train"), ctx.stage_dir
    test = read_split(build_dir / "test.jsonl", required=True)
    val = read_split(build_dir / "val.jsonl", required=False)
    selected = test[: cfg.max_examples] if cfg.max_examples else test
    notes: list[str] = []
    corpus = load_corpus(ctx.run_dir, notes)
    model, tokenizer = load_model(train_dir)

    metrics: dict[str, Any] = {
        "run_name": ctx.cfg.run_name,
        "settings": cfg.model_dump(mode="json") | {"seed": ctx.cfg.seed},
        "examples": {"test": len(test), "val": len(val), "generated": len(selected)},
        "notes": notes,
    }
    metrics["loss"] = loss_metrics(model, tokenizer, {"test": test, "val": val}, cfg.batch_size)
    rows = answer_rows(model, tokenizer, selected, str(build_dir / "test.jsonl"), cfg, ctx.cfg.seed, corpus)
    judge_cfg = getattr(cfg, "judge", None)
    if judge_cfg is not None:
        metrics["judge"] = run_judge(judge_cfg, rows)
    metrics["generation"] = aggregate(rows, selected)
    bench_summaries, bench_rows, bench_files = run_benchmarks(model, tokenizer, list(cfg.benchmarks), cfg.few_shot)
    metrics["benchmarks"] = bench_summaries
    metrics["headline"] = headline_rows(metrics)

    outputs = write_outputs(stage_dir, metrics, rows, bench_rows, train_dir)
    console.print(f"evaluate: report at {stage_dir / 'report.md'}")
    return StageResult(
        outputs=outputs,
        counts={
            "test_examples": len(test),
            "generated": len(selected),
            "benchmark_questions": sum(b["questions"] for b in bench_summaries),
        },
        stats={"headline": metrics["headline"]},
        extra_inputs=bench_files,
        summary=summary_line(metrics, len(selected)),
    )
