"""`evaluate/report.md`: base vs tuned tables with deltas, the training loss curve, charts and the worst answers.

Charts are PNGs drawn with matplotlib's Agg backend: `metrics.png` (the 0–1 metrics side by side), `groups.png`
(chrF per law and source kind) and `loss.png` (copied from the train stage, so the report directory stands alone).
matplotlib has no Hangul font by default: labels are romanised unless a Korean font is installed (same rule as the
dataset card, `slm_datagen.dataset.charts`); the tables give the Korean names.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from slm_forest.files import atomic_path, atomic_writer

REPORT = "report.md"
METRICS_PNG = "metrics.png"
GROUPS_PNG = "groups.png"
LOSS_PNG = "loss.png"
WORST_N = 5
SECTIONS = (
    "## Base vs tuned",
    "## Training loss",
    "## Answer loss by split and group",
    "## Generated answers by group",
    "## Benchmarks",
    "## LLM judge",
    "## Worst answers",
    "## How the numbers were computed",
)


def fmt(value: Any, digits: int = 4) -> str:
    if value is None:
        return "–"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return f"{value:.{digits}g}" if abs(value) < 1000 else f"{value:,.1f}"
    return str(value)


def fmt_delta(value: float | None, higher_is_better: bool) -> str:
    if value is None:
        return "–"
    if value == 0:
        return "0"
    better = (value > 0) == higher_is_better
    return f"{value:+.4g} {'▲ better' if better else '▼ worse'}"


def table(header: list[str], rows: list[list[Any]]) -> str:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(header) + " |", "|" + "|".join("---" for _ in header) + "|"]
    lines += ["| " + " | ".join(cell(v) for v in row) + " |" for row in rows]
    return "\n".join(lines)


def _pyplot() -> Any:
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _save(fig: Any, path: Path) -> Path:
    plt = _pyplot()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return path


def _bars(
    labels: list[str], base: list[float], tuned: list[float], title: str, ylabel: str, path: Path, font: str | None
) -> Path:
    plt = _pyplot()
    width = 0.38
    fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.2))
    xs = list(range(len(labels)))
    ax.bar([x - width / 2 for x in xs], base, width, label="base", color="#9aa5b1")
    ax.bar([x + width / 2 for x in xs], tuned, width, label="tuned", color="#2f7ed8")
    ax.set_xticks(xs)
    kwargs = {"fontfamily": font} if font else {}
    ax.set_xticklabels(labels, rotation=30, ha="right", **kwargs)
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.legend()
    ax.grid(axis="y", alpha=0.3)
    return _save(fig, path)


def metric_chart(metrics: dict[str, Any], path: Path) -> Path | None:
    """The headline metrics that live on a 0–1 scale (chrF divided by 100), base and tuned side by side."""
    labels, base, tuned = [], [], []
    for row in metrics.get("headline", []):
        name = row["metric"]
        if "loss" in name or "perplexity" in name or "judge" in name:
            continue
        scale = 100.0 if name == "chrF" else 1.0
        if row["base"] is None and row["tuned"] is None:
            continue
        labels.append("chrF / 100" if name == "chrF" else name)
        base.append((row["base"] or 0.0) / scale)
        tuned.append((row["tuned"] or 0.0) / scale)
    if not labels:
        return None
    return _bars(labels, base, tuned, "base vs tuned (higher is better)", "score (0-1)", path, None)


def group_chart(metrics: dict[str, Any], path: Path) -> Path | None:
    from slm_datagen.dataset.charts import chart_label, hangul_font

    gen = metrics.get("generation")
    if not gen:
        return None
    groups = [g for g in gen["tuned"] if g != "all"]
    if not groups:
        return None
    font = hangul_font()
    labels = [chart_label(g, font) for g in groups]
    base = [gen["base"][g]["chrf"] or 0.0 for g in groups]
    tuned = [gen["tuned"][g]["chrf"] or 0.0 for g in groups]
    return _bars(labels, base, tuned, "chrF by law and source kind", "chrF", path, font)


def _section_summary(metrics: dict[str, Any]) -> list[str]:
    s = metrics["settings"]
    ex = metrics["examples"]
    decoding = "greedy" if not s.get("temperature") else f"sampling, temperature {s['temperature']}"
    lines = [
        f"# Evaluation report — run `{metrics['run_name']}`",
        "",
        f"{ex['generated']} of {ex['test']} test questions answered by the base model and by the tuned model (the same "
        f"weights with the LoRA adapter off and on), same prompts (chat template), {decoding}, at most "
        f"{s['max_new_tokens']} new tokens, batches of {s['batch_size']}. Answer loss over {ex['test']} test and "
        f"{ex['val']} validation examples.",
    ]
    for note in metrics.get("notes", []):
        lines += ["", f"> note: {note}"]
    return lines


def _section_headline(metrics: dict[str, Any], chart: Path | None) -> list[str]:
    rows = [
        [r["metric"], fmt(r["base"]), fmt(r["tuned"]), fmt_delta(r["delta"], r["higher_is_better"])]
        for r in metrics.get("headline", [])
    ]
    lines = ["", SECTIONS[0], "", table(["metric", "base", "tuned", "Δ (tuned − base)"], rows)]
    if chart is not None:
        lines += ["", f"![base vs tuned]({chart.name})"]
    return lines


def _section_loss_curve(loss_png: Path | None) -> list[str]:
    lines = ["", SECTIONS[1], ""]
    if loss_png is None:
        lines.append("The train stage left no `loss.png`.")
    else:
        lines.append(f"![training loss]({loss_png.name})")
    return lines


def _section_loss_groups(metrics: dict[str, Any]) -> list[str]:
    rows = []
    for split, by_model in metrics.get("loss", {}).items():
        for group, base in by_model["base"].items():
            tuned = by_model["tuned"].get(group, {})
            rows.append(
                [
                    split,
                    group,
                    base["examples"],
                    base["tokens"],
                    fmt(base["loss"]),
                    fmt(tuned.get("loss")),
                    fmt(base["perplexity"]),
                    fmt(tuned.get("perplexity")),
                ]
            )
    header = ["split", "group", "examples", "answer tokens", "loss base", "loss tuned", "ppl base", "ppl tuned"]
    return ["", SECTIONS[2], "", table(header, rows)]


def _section_generation(metrics: dict[str, Any], chart: Path | None) -> list[str]:
    gen = metrics.get("generation") or {}
    rows = []
    for group, tuned in gen.get("tuned", {}).items():
        base = gen["base"][group]
        rows.append(
            [
                group,
                tuned["n"],
                fmt(base["chrf"]),
                fmt(tuned["chrf"]),
                fmt(base["rouge_l"]),
                fmt(tuned["rouge_l"]),
                fmt(base["citation_precision"]),
                fmt(tuned["citation_precision"]),
                fmt(base["citation_in_corpus"]),
                fmt(tuned["citation_in_corpus"]),
                f"{fmt(base['numeric_accuracy'])} / {fmt(tuned['numeric_accuracy'])} (n={tuned['numeric_n']})",
            ]
        )
    header = [
        "group",
        "n",
        "chrF base",
        "chrF tuned",
        "ROUGE-L base",
        "ROUGE-L tuned",
        "cite prec. base",
        "cite prec. tuned",
        "in corpus base",
        "in corpus tuned",
        "amount correct base / tuned",
    ]
    lines = ["", SECTIONS[3], "", table(header, rows)]
    if chart is not None:
        lines += ["", f"![chrF by group]({chart.name})"]
    return lines


def _section_benchmarks(metrics: dict[str, Any]) -> list[str]:
    benches = metrics.get("benchmarks") or []
    lines = ["", SECTIONS[4], ""]
    if not benches:
        lines.append("No benchmark configured (`evaluate.benchmarks`: KMMLU-format CSV files).")
        return lines
    from fine_tuning.evaluate.mcq import benchmark_settings

    rows = []
    for b in benches:
        for k, scores in benchmark_settings(b):
            base, tuned = scores["base"], scores["tuned"]
            rows.append(
                [
                    b["name"],
                    b["questions"],
                    f"{k}-shot",
                    b["shots_from"] if k else "–",
                    fmt(base["accuracy"]),
                    fmt(tuned["accuracy"]),
                    fmt_delta(_diff(base["accuracy"], tuned["accuracy"]), True),
                    fmt(base["accuracy_norm"]),
                    fmt(tuned["accuracy_norm"]),
                ]
            )
    header = [
        "benchmark",
        "questions",
        "setting",
        "shots from",
        "acc base",
        "acc tuned",
        "Δ acc",
        "acc_norm base",
        "acc_norm tuned",
    ]
    lines.append(table(header, rows))
    lines += [
        "",
        "Zero-shot is always scored; with `evaluate.few_shot` > 0 the same questions are scored again with that many "
        "solved examples in the prompt. Chance is 0.25 (four options). With a few dozen questions one question moves "
        "accuracy by several points.",
    ]
    return lines


def _diff(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None else round(b - a, 6)


def _section_judge(metrics: dict[str, Any]) -> list[str]:
    lines = ["", SECTIONS[5], ""]
    judge = metrics.get("judge")
    if not judge:
        lines.append(
            "Off (`evaluate.judge` is not set). It sends every base and tuned answer to a teacher model with a "
            "rubric (correctness, legal basis, clarity, 1–5 each) and costs money."
        )
        return lines
    gen = metrics["generation"]
    lines.append(
        f"{judge['provider']}:{judge['model']}: {judge['requests']} requests, {judge['errors']} errors, "
        f"${judge['cost_usd']:.4f}. Mean score (1–5): base {fmt(gen['base']['all']['judge_mean'])}, "
        f"tuned {fmt(gen['tuned']['all']['judge_mean'])}."
    )
    return lines


def _code(text: str) -> list[str]:
    return ["```text", text.replace("```", "ʼʼʼ") or "(empty)", "```"]


def _section_worst(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", SECTIONS[6], ""]
    if not rows:
        lines.append("No answers were generated.")
        return lines
    worst = sorted(rows, key=lambda r: r["tuned"]["scores"]["chrf"])[:WORST_N]
    lines.append(f"The {len(worst)} tuned answers with the lowest chrF against the reference.")
    for rank, row in enumerate(worst, start=1):
        t, b = row["tuned"], row["base"]
        cites = ", ".join(t["scores"]["citations"]["cited"]) or "none"
        lines += [
            "",
            f"### {rank}. `{row['id']}` — {row.get('law_name') or '(no law)'}, {row.get('kind')}, {row.get('style')}",
            "",
            f"chrF tuned {fmt(t['scores']['chrf'])} / base {fmt(b['scores']['chrf'])}; ROUGE-L tuned "
            f"{fmt(t['scores']['rouge_l'])}; cited: {cites}; stopped by: {t['finish_reason']}.",
            "",
            "Question:",
            *_code(row["question"]),
            "Reference:",
            *_code(row["reference"]),
            "Tuned:",
            *_code(t["answer"]),
            "Base:",
            *_code(b["answer"]),
        ]
        judge = t["scores"].get("judge")
        if judge and "reason" in judge:
            lines += ["", f"Judge (tuned): {fmt(judge.get('score'))} — {judge['reason']}"]
    return lines


def _section_method() -> list[str]:
    return [
        "",
        SECTIONS[7],
        "",
        "- **Loss / perplexity**: mean negative log-likelihood per answer token (the assistant turn and its "
        "end-of-turn token, the prompt masked), token-weighted; perplexity = exp(loss).",
        "- **chrF**: sacrebleu CHRF (character n-grams up to 6, no word n-grams), corpus level, 0–100.",
        "- **ROUGE-L**: F1 of the longest common character subsequence, whitespace removed, averaged over answers.",
        "- **Citations**: articles found in the answer by `find_citations`; *in corpus* = the article exists in "
        "`collect/documents.jsonl`; *precision* = share matching the reference (the pair's citations and the "
        "reference answer's), *recall* = share of reference articles cited.",
        "- **Final amount**: on calculation items, the last amount in the answer equals the last amount in the reference.",
        "- **Benchmarks**: option log-likelihood (cloze prompt `질문: …\\n답:`), the option with the highest sum of "
        "token log-probabilities; *acc_norm* divides by the option's length in characters. Zero-shot and (with "
        "`evaluate.few_shot`) k-shot, on the same questions.",
    ]


def write_report(stage_dir: Path, metrics: dict[str, Any], rows: list[dict[str, Any]], train_dir: Path) -> list[Path]:
    """Write report.md and its PNGs into `stage_dir`; returns the files written."""
    written: list[Path] = []
    loss_src = train_dir / LOSS_PNG
    loss_png: Path | None = None
    if loss_src.exists():
        loss_png = stage_dir / LOSS_PNG
        with atomic_path(loss_png) as tmp:
            shutil.copyfile(loss_src, tmp)
        written.append(loss_png)
    chart = metric_chart(metrics, stage_dir / METRICS_PNG)
    groups = group_chart(metrics, stage_dir / GROUPS_PNG)
    written += [p for p in (chart, groups) if p is not None]
    lines = (
        _section_summary(metrics)
        + _section_headline(metrics, chart)
        + _section_loss_curve(loss_png)
        + _section_loss_groups(metrics)
        + _section_generation(metrics, groups)
        + _section_benchmarks(metrics)
        + _section_judge(metrics)
        + _section_worst(rows)
        + _section_method()
    )
    report = stage_dir / REPORT
    with atomic_writer(report) as out:
        out.write("\n".join(lines) + "\n")
    return [report, *written]
