"""`slm evaluate`: is the tuned model better than its base? Same prompts, same decoding, same metrics, side by side.

Reads `build/test.jsonl` (and `build/val.jsonl` for the loss), the train stage (base + LoRA adapter, loaded once: the
base answers are produced by the same weights with the adapter switched off, so nothing but the adapter differs),
`collect/documents.jsonl` (which articles exist) and the KMMLU-format CSVs in `evaluate.benchmarks`.

For base and tuned:
1. eval loss and perplexity on the assistant tokens of every val/test example (the prompt rendered by the chat
   template with `add_generation_prompt=True` is masked; the answer and its end-of-turn token count);
2. answers to the first `evaluate.max_examples` test questions (chat template, left-padded batches of
   `evaluate.batch_size`, `evaluate.max_new_tokens`, greedy when `evaluate.temperature` is 0), scored with chrF and
   ROUGE-L on characters, citation P/R/F1 by 법령+조+항 and hallucinated citations (`citation_scores`) and, on
   calculation items, the final tax amount to the 원 (`calculator`);
3. each benchmark file under KMMLU's letter protocol through lm-evaluation-harness (`harness`) and the cloze scorer
   (`mcq`), micro and macro per Category (`benchmarks`);
4. the reinforce prompts' held-out calculation questions for base, SFT and (after `slm reinforce`) RL, exact to the 원
   by the calculator, with Wilson intervals and paired-bootstrap deltas (`calc_heldout`, `calc_predictions.jsonl`);
5. optionally (`evaluate.judge`, off by default) an LLM judge's 1–5 scores for correctness, legal basis and
   clarity, with reasons;
6. when the run has an index (`evaluate.retrieve`, `retrieval`): recall@1/5/10 and MRR of each question's source
   article, and step 2 again with the top-k articles in the prompt (`metrics["retrieval"]`).
Every delta gets a paired-bootstrap 95 % interval (`stats`), every multiple-choice accuracy a Wilson interval, and
`metrics["verdict"]` says in one line whether the tuned model is better. Numbers are reported over all examples and
per law and per source kind.

Modules: examples (splits, base/tuned switch), loss, answers (generation and scores), metrics, citation_scores,
calculator, stats, mcq, harness, benchmarks, judge, report; this one runs them in order.

Writes `predictions.jsonl` (one row per test question: both answers and their scores), `predictions_retrieval.jsonl`
(the same with retrieval, when it ran), `benchmark_predictions.jsonl`,
`metrics.json`, and `report.md` with `metrics.png`, `groups.png` and a copy of train's `loss.png`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fine_tuning.evaluate.answers import aggregate, answer_rows
from fine_tuning.evaluate.benchmarks import regressions, run_benchmarks
from fine_tuning.evaluate.calc_heldout import run_calc_heldout
from fine_tuning.evaluate.examples import ALL, read_split
from fine_tuning.evaluate.judge import run_judge
from fine_tuning.evaluate.loss import loss_metrics
from fine_tuning.evaluate.metrics import answer_deltas
from fine_tuning.evaluate.retrieval import evaluate_with_retrieval, open_evaluation_index
from slm_forest.errors import SlmError
from slm_forest.files import write_json, write_jsonl
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console


def headline_rows(metrics: dict[str, Any]) -> list[dict[str, Any]]:
    """The report's main table: one row per metric with base, tuned, the delta and its 95 % interval."""
    from fine_tuning.evaluate.metrics import ANSWER_METRICS

    rows: list[dict[str, Any]] = []
    for split in ("test", "val"):
        loss = metrics["loss"].get(split)
        if loss:
            n = loss["base"].get(ALL, {}).get("examples")
            rows.append(_row(f"{split} loss (answer tokens)", loss["delta"]["loss"], False, n))
            rows.append(_row(f"{split} perplexity", loss["delta"]["perplexity"], False, n))
    gen = metrics.get("generation")
    if gen:
        counts = gen["tuned"][ALL]
        for key, name, higher in ANSWER_METRICS:
            interval = gen["delta"][key]
            if interval["base"] is None and interval["tuned"] is None:
                continue
            n = counts["numeric_n"] if key == "numeric_accuracy" else counts["judge_n"] if key == "judge_mean" else None
            rows.append(_row(name, interval, higher, n or counts["n"]))
    for bench in metrics.get("benchmarks", []):
        for p in bench["protocols"]:
            for average in ("macro", "micro"):
                name = f"{bench['name']} accuracy, {average} ({p['protocol']})"
                rows.append(_row(name, p[f"delta_{average}"], True, p["n"], headline=average == p["headline_average"]))
    return rows


def _row(name: str, interval: dict[str, Any], higher: bool, n: int | None, headline: bool = True) -> dict[str, Any]:
    delta = interval["delta"]
    better = None if not interval["significant"] or delta is None else (delta > 0) == higher
    return {
        "metric": name,
        "base": interval["base"],
        "tuned": interval["tuned"],
        "delta": delta,
        "ci95": [interval["low"], interval["high"]] if interval["low"] is not None else None,
        "significant": interval["significant"],
        "verdict": "better" if better else "worse" if better is False else "no significant difference",
        "higher_is_better": higher,
        "n": n,
        "headline_average": headline,
    }


def verdict_line(metrics: dict[str, Any]) -> str:
    """One line: is the tuned model better, on which held-out numbers, with the intervals."""
    rows = [r for r in metrics["headline"] if r["headline_average"] and r["delta"] is not None]
    key = [r for r in rows if r["metric"].startswith("test loss") or "citation F1" in r["metric"]]
    key += [r for r in rows if "final tax amount" in r["metric"] or ("accuracy, macro" in r["metric"])]
    better = [r for r in rows if r["verdict"] == "better"]
    worse = [r for r in rows if r["verdict"] == "worse"]
    if worse and not better:
        overall = "Tuned is worse than base"
    elif better and not worse:
        overall = "Tuned is better than base"
    elif better:
        overall = "Tuned is better than base on some metrics and worse on others"
    else:
        overall = "No significant difference between tuned and base"
    level = int(round(100 * metrics["settings"].get("bootstrap_level", 0.95)))
    parts = [_short(r, level) for r in key]
    return f"{overall} ({len(better)} better, {len(worse)} worse of {len(rows)} metrics): " + "; ".join(parts)


def _short(row: dict[str, Any], level: int) -> str:
    ci = row["ci95"]
    interval = f", {level} % CI {ci[0]:+.3g} to {ci[1]:+.3g}" if ci else ""
    mark = " ✔" if row["verdict"] == "better" else " ✘" if row["verdict"] == "worse" else ""
    return (
        f"{row['metric']} {row['base']:.4g} → {row['tuned']:.4g} (Δ {row['delta']:+.3g}{interval}, n={row['n']}){mark}"
    )


def read_metrics(stage_dir: Path) -> dict[str, Any] | None:
    path = stage_dir / "metrics.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else None


def load_corpus(run_dir: Path, notes: list[str]) -> Any:
    """Which articles the corpus knows (collect/documents.jsonl); without it every citation counts as hallucinated."""
    from fine_tuning.evaluate.citation_scores import CorpusIndex

    documents = run_dir / "collect" / "documents.jsonl"
    if documents.exists():
        return CorpusIndex.from_documents(documents)
    notes.append(f"{documents} not found: every cited article counts as hallucinated")
    return CorpusIndex.empty()


def load_model(train_dir: Path) -> tuple[Any, Any]:
    """The trained model and its tokenizer, quietly; base answers switch the adapter off (a full fine-tune swaps
    the base weights in: `fine_tuning.train.tuned.load_for_comparison`)."""
    from transformers.utils import logging as hf_logging

    from fine_tuning.train.tuned import load_for_comparison

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    model, tokenizer = load_for_comparison(train_dir)
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
    retrieval_rows: list[dict[str, Any]] | None = None,
) -> list[Path]:
    from fine_tuning.evaluate.report import write_report

    outputs = [stage_dir / "predictions.jsonl", stage_dir / "metrics.json"]
    write_jsonl(outputs[0], rows)
    write_json(outputs[1], metrics)
    grounded = stage_dir / "predictions_retrieval.jsonl"
    if retrieval_rows:
        write_jsonl(grounded, retrieval_rows)
        outputs.append(grounded)
    else:
        grounded.unlink(missing_ok=True)  # a previous run's answers with retrieval would pass for this run's
    if bench_rows:
        write_jsonl(stage_dir / "benchmark_predictions.jsonl", bench_rows)
        outputs.append(stage_dir / "benchmark_predictions.jsonl")
    return outputs + write_report(stage_dir, metrics, rows, train_dir)


def summary_line(metrics: dict[str, Any], generated: int) -> str:
    return f"{metrics['verdict']} ({generated} answers)"


def run_evaluate(ctx: StageContext) -> StageResult:
    cfg = ctx.cfg.evaluate
    seed, resamples = ctx.cfg.seed, cfg.bootstrap_resamples
    build_dir, train_dir, stage_dir = ctx.upstream_dir("build"), ctx.upstream_dir("train"), ctx.stage_dir
    test = read_split(build_dir / "test.jsonl", required=True)
    val = read_split(build_dir / "val.jsonl", required=False)
    selected = test[: cfg.max_examples] if cfg.max_examples else test
    notes: list[str] = []
    corpus = load_corpus(ctx.run_dir, notes)
    opened = open_evaluation_index(cfg, ctx.run_dir, notes)  # before the model: a missing index fails fast
    model, tokenizer = load_model(train_dir)

    metrics: dict[str, Any] = {
        "run_name": ctx.cfg.run_name,
        "settings": cfg.model_dump(mode="json") | {"seed": seed, "bootstrap_level": 0.95},
        "examples": {"test": len(test), "val": len(val), "generated": len(selected)},
        "notes": notes,
    }
    metrics["loss"] = loss_metrics(model, tokenizer, {"test": test, "val": val}, cfg.batch_size, resamples, seed)
    rows = answer_rows(model, tokenizer, selected, str(build_dir / "test.jsonl"), cfg, seed, corpus)
    judge_cfg = getattr(cfg, "judge", None)
    if judge_cfg is not None:
        prices = ctx.cfg.distill.prices  # one price table for the run
        metrics["judge"] = run_judge(judge_cfg, rows, stage_dir, max_cost_usd=cfg.max_cost_usd, prices=prices)
    metrics["generation"] = aggregate(rows, selected) | {"delta": answer_deltas(rows, resamples, seed)}
    retrieval_rows: list[dict[str, Any]] = []
    if opened is not None:

        def answer(examples: list[Any]) -> list[dict[str, Any]]:
            return answer_rows(model, tokenizer, examples, str(build_dir / "test.jsonl"), cfg, seed, corpus)

        try:
            metrics["retrieval"], retrieval_rows = evaluate_with_retrieval(opened, selected, answer, rows, cfg, seed)
        finally:
            opened[0].close()
    bench_summaries, bench_rows, bench_files = run_benchmarks(model, tokenizer, cfg, stage_dir, seed)
    metrics["benchmarks"] = bench_summaries
    metrics["calc_heldout"], calc_files = run_calc_heldout(model, tokenizer, ctx.run_dir, ctx.cfg, stage_dir)
    metrics["regressions"] = regressions(bench_summaries)
    metrics["headline"] = headline_rows(metrics)
    metrics["verdict"] = verdict_line(metrics)
    if not metrics["generation"]["tuned"][ALL]["numeric_n"]:
        notes.append(
            "no calculation items among the answered test questions: 'final tax amount correct' is not measured"
        )

    outputs = write_outputs(stage_dir, metrics, rows, bench_rows, train_dir, retrieval_rows) + calc_files
    console.print(f"evaluate: {metrics['verdict']}")
    console.print(f"evaluate: report at {stage_dir / 'report.md'}")
    return StageResult(
        outputs=outputs,
        counts={
            "test_examples": len(test),
            "generated": len(selected),
            "benchmark_questions": sum(b["questions"] for b in bench_summaries),
        },
        stats={"headline": metrics["headline"], "verdict": metrics["verdict"]},
        extra_inputs=bench_files + ([ctx.run_dir / "index" / "index.json"] if opened is not None else []),
        summary=summary_line(metrics, len(selected)),
    )
