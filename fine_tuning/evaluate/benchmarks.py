"""Benchmark accuracy of base and tuned on each KMMLU-format file, under each protocol, with intervals.

Per file (`evaluate.benchmarks` may list several: the target subject and its neighbours, e.g. Taxation with
Accounting and Law, because domain tuning can lower adjacent subjects), one result per protocol:
- `harness`: KMMLU's published letter protocol through lm-evaluation-harness (`harness.py`), `harness_few_shot`-shot;
- `cloze-0` and `cloze-k`: option log-likelihood (`mcq.py`), zero-shot and `few_shot`-shot — the scorer for small
  base models that cannot follow a letter format; not comparable with published numbers.
Each holds, for base and tuned, micro accuracy (over questions) with its Wilson 95 % interval, macro accuracy (the
mean over KMMLU `Category` values, the paper's headline) and per-category accuracy; and the paired-bootstrap interval
of tuned − base for both averages. A significant drop (interval below 0) is flagged as a regression.
"""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path
from typing import Any

from fine_tuning.evaluate.examples import MODELS, as_model
from slm_forest.errors import SlmError
from slm_forest.progress import console, progress_bar

HEADLINE_AVERAGE = "macro"  # KMMLU's paper reports the macro average over categories (the harness: micro)


def accuracy_block(categories: list[str], correct: dict[str, list[bool]], resamples: int, seed: int) -> dict[str, Any]:
    """Micro/macro accuracy of base and tuned over the same questions, intervals and per-category counts."""
    from fine_tuning.evaluate.stats import macro_ratio, paired_bootstrap, ratio, wilson_interval

    names = sorted(set(categories))
    out: dict[str, Any] = {"n": len(categories), "headline_average": HEADLINE_AVERAGE}
    rows: dict[str, list[list[float]]] = {}
    for which in MODELS:
        hits = correct[which]
        k = sum(hits)
        per_cat: dict[str, dict[str, Any]] = {}
        for name in names:
            picked = [h for h, c in zip(hits, categories) if c == name]
            per_cat[name] = {"n": len(picked), "accuracy": round(sum(picked) / len(picked), 4)}
        macro = sum(v["accuracy"] for v in per_cat.values()) / len(per_cat) if per_cat else None
        interval = wilson_interval(k, len(hits))
        out[which] = {
            "correct": k,
            "micro": round(k / len(hits), 4) if hits else None,
            "micro_ci95": [round(v, 4) for v in interval] if interval else None,
            "macro": None if macro is None else round(macro, 4),
            "by_category": per_cat,
        }
        rows[which] = [_category_row(h, c, names) for h, c in zip(hits, categories)]
    micro_rows = {w: [[float(h), 1.0] for h in correct[w]] for w in MODELS}
    out["delta_micro"] = paired_bootstrap(micro_rows["base"], micro_rows["tuned"], ratio, resamples, seed).as_dict()
    out["delta_macro"] = paired_bootstrap(rows["base"], rows["tuned"], macro_ratio, resamples, seed).as_dict()
    headline = out[f"delta_{HEADLINE_AVERAGE}"]
    out["regression"] = bool(headline["significant"] and (headline["delta"] or 0) < 0)
    return out


def _category_row(hit: bool, category: str, names: list[str]) -> list[float]:
    """[hit in category 1, in category 1, hit in category 2, …]: the sums give each category's k and n."""
    row: list[float] = []
    for name in names:
        row += [float(hit and category == name), float(category == name)]
    return row


def cloze_correct(model: Any, tokenizer: Any, scored: list[Any], shots: list[Any], bar: Any) -> dict[str, Any]:
    """Per model: which questions the option log-likelihood picks right (raw and length-normalised), and the picks."""
    from fine_tuning.evaluate.mcq import build_prompt, option_logliks

    out: dict[str, Any] = {}
    for which in MODELS:
        hits, hits_norm, picks = [], [], []
        with as_model(model, which):
            for question in scored:
                result = option_logliks(model, tokenizer, build_prompt(question, shots), list(question.options))
                hits.append(result.pick == question.answer)
                hits_norm.append(result.pick_norm == question.answer)
                picks.append(
                    {
                        "pick": result.pick + 1,
                        "pick_norm": result.pick_norm + 1,
                        "loglik": [round(v, 4) for v in result.loglik],
                    }
                )
                bar.advance()
        out[which] = {"correct": hits, "correct_norm": hits_norm, "picks": picks}
    return out


def run_benchmarks(model: Any, tokenizer: Any, cfg: Any, stage_dir: Path, seed: int) -> tuple[list, list, list[Path]]:
    """(per-benchmark summaries, per-question rows, files read)."""
    summaries: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    read: list[Path] = []
    for raw in cfg.benchmarks:
        summary, bench_rows, files = one_benchmark(model, tokenizer, Path(raw), cfg, stage_dir, seed)
        summaries.append(summary)
        rows += bench_rows
        read += files
    return summaries, rows, read


def one_benchmark(
    model: Any, tokenizer: Any, path: Path, cfg: Any, stage_dir: Path, seed: int
) -> tuple[dict[str, Any], list[dict[str, Any]], list[Path]]:
    from fine_tuning.evaluate.mcq import dev_file_for, read_benchmark, shot_counts, split_shots

    questions = read_benchmark(path)
    shots, scored, shots_from = split_shots(path, questions, cfg.few_shot)
    files = [path] + ([dev_file_for(path)] if dev_file_for(path) else [])
    resamples = cfg.bootstrap_resamples
    protocols: list[dict[str, Any]] = []
    rows: list[dict[str, Any]] = []
    settings = shot_counts(len(shots))
    with progress_bar(f"evaluate: {path.name} (cloze)", len(scored) * len(MODELS) * len(settings)) as bar:
        for k in settings:
            result = cloze_correct(model, tokenizer, scored, shots[:k], bar)
            cats = [q.category for q in scored]
            for norm, label in ((False, ""), (True, ", length-normalised")):
                key = "correct_norm" if norm else "correct"
                block = accuracy_block(cats, {w: result[w][key] for w in MODELS}, resamples, seed)
                protocols.append(
                    {
                        "protocol": f"cloze {k}-shot{label} (option log-likelihood; not comparable with published KMMLU)",
                        "key": f"cloze-{k}{'-norm' if norm else ''}",
                        "shots": k,
                        "shots_from": shots_from if k else "none",
                        **block,
                    }
                )
            for i, q in enumerate(scored):
                rows.append(
                    {"benchmark": path.name, "protocol": f"cloze-{k}", "row": q.row, "answer": q.answer + 1}
                    | {w: result[w]["picks"][i] for w in MODELS}
                )
    harness = harness_protocol(model, tokenizer, path, questions, cfg, stage_dir, seed)
    if harness is not None:
        protocols.insert(0, harness)
    summary = {
        "name": path.stem,
        "path": str(path),
        "questions": len(questions),
        "options": len(questions[0].options),
        "chance": round(1 / len(questions[0].options), 4),
        "categories": sorted({q.category for q in questions}),
        "protocols": protocols,
    }
    return summary, rows, files


def harness_protocol(
    model: Any, tokenizer: Any, path: Path, questions: list[Any], cfg: Any, stage_dir: Path, seed: int
) -> dict[str, Any] | None:
    """The harness result for one file, or None when `evaluate.harness` is off or (auto) lm-eval is missing."""
    from fine_tuning.evaluate.harness import PROTOCOL, harness_version, run_harness

    if cfg.harness is False or (cfg.harness == "auto" and harness_version() is None):
        if cfg.harness == "auto":
            console.print("evaluate: lm-evaluation-harness not installed; KMMLU letter protocol skipped")
        return None
    k = cfg.harness_few_shot
    run = run_harness(model, tokenizer, path, questions, k, stage_dir / "harness", cfg.batch_size, seed)
    by_row = {q.row: q for q in questions}
    expected = [by_row[r].answer for r in run.scored_rows]
    if run.targets != expected:
        raise SlmError(
            f"{path}: lm-evaluation-harness read other answers than slm ({run.task_file})",
            "report this with the file: the generated answer template does not match the file's answer format",
        )
    cats = [by_row[r].category for r in run.scored_rows]
    block = accuracy_block(cats, run.correct, cfg.bootstrap_resamples, seed)
    return {
        "protocol": PROTOCOL.format(version=run.version, shots=k),
        "key": "harness",
        "shots": k,
        "shots_from": run.shots_from,
        "task_config": str(run.task_file),
        **block,
    }


def regressions(benchmarks: list[dict[str, Any]]) -> list[str]:
    """'<benchmark> <protocol>' for every significant drop of the headline average."""
    found = defaultdict(list)
    for bench in benchmarks:
        for p in bench["protocols"]:
            if p["regression"]:
                found[bench["name"]].append(p["key"])
    return [f"{name} ({', '.join(keys)})" for name, keys in found.items()]
