"""Benchmark accuracy (KMMLU-format CSVs) by option log-likelihood, zero-shot and few-shot, for base and tuned."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from fine_tuning.evaluate.examples import MODELS, as_model
from slm_forest.progress import progress_bar


def run_benchmarks(
    model: Any, tokenizer: Any, paths: list[str], few_shot: int
) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[Path]]:
    """(per-benchmark summaries, per-question rows, files read).

    Each summary holds `zero_shot: {base, tuned}` and, when `few_shot` > 0, `few_shot: {base, tuned}` (each
    {n, accuracy, accuracy_norm}), both over the same questions; `shots` is the few-shot count (0 without).
    Each row is one question in one setting (`shots` 0 or k) with both models' picks.
    """
    from fine_tuning.evaluate.mcq import (
        BenchmarkScore,
        build_prompt,
        dev_file_for,
        option_logliks,
        read_benchmark,
        shot_counts,
        split_shots,
    )

    summaries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    read: list[Path] = []
    for raw in paths:
        path = Path(raw)
        questions = read_benchmark(path)
        shots, scored, shots_from = split_shots(path, questions, few_shot)
        read.append(path)
        dev = dev_file_for(path)
        if shots and dev is not None:
            read.append(dev)
        settings = shot_counts(len(shots))
        scores = {(k, which): BenchmarkScore() for k in settings for which in MODELS}
        picks: dict[tuple[int, int], dict[str, Any]] = defaultdict(dict)
        with progress_bar(f"evaluate: {path.name}", len(scored) * len(MODELS) * len(settings)) as bar:
            for which in MODELS:
                with as_model(model, which):
                    for k in settings:
                        for question in scored:
                            prompt = build_prompt(question, shots[:k])
                            result = option_logliks(model, tokenizer, prompt, list(question.options))
                            scores[(k, which)].add(result, question.answer)
                            picks[(k, question.row)][which] = {
                                "pick": result.pick + 1,
                                "pick_norm": result.pick_norm + 1,
                                "loglik": [round(v, 4) for v in result.loglik],
                            }
                            bar.advance()
        for k in settings:
            for question in scored:
                rows.append(
                    {
                        "benchmark": path.name,
                        "shots": k,
                        "row": question.row,
                        "answer": question.answer + 1,
                        **picks[(k, question.row)],
                    }
                )
        summary: dict[str, Any] = {
            "name": path.stem,
            "path": str(path),
            "questions": len(scored),
            "shots": len(shots),
            "shots_from": shots_from,
            "zero_shot": {which: scores[(0, which)].summary() for which in MODELS},
        }
        if shots:
            summary["few_shot"] = {which: scores[(len(shots), which)].summary() for which in MODELS}
        summaries.append(summary)
    return summaries, rows, read
