"""`evaluate/report.md`: base vs tuned tables with deltas, the training loss curve, charts and the worst answers.

Charts are PNGs drawn with matplotlib's Agg backend: `metrics.png` (the 0–1 metrics side by side), `groups.png`
(chrF per law and source kind) and `loss.png` (copied from the train stage, so the report directory stands alone).
Hangul labels use the font `slm_datagen.dataset.charts.hangul_font` finds (NanumGothic from koreanize-matplotlib, a
dependency); they are romanised only on a machine with no Korean font at all.
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
    "## Retrieval",
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


def fmt_delta(value: float | None, higher_is_better: bool, significant: bool | None = None) -> str:
    """`+0.12 ▲ better` only when the interval excludes 0; otherwise the direction with `(n.s.)`."""
    if value is None:
        return "–"
    if value == 0:
        return "0"
    better = (value > 0) == higher_is_better
    if significant is False:
        return f"{value:+.4g} (n.s.)"
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
    """Grouped bars; every text in the Hangul font when there is one (labels may mix Korean and English)."""
    plt = _pyplot()
    with plt.rc_context({"font.family": [font, "DejaVu Sans"]} if font else {}):
        width = 0.38
        fig, ax = plt.subplots(figsize=(max(6.0, 0.9 * len(labels) + 2), 4.2))
        xs = list(range(len(labels)))
        ax.bar([x - width / 2 for x in xs], base, width, label="base", color="#9aa5b1")
        ax.bar([x + width / 2 for x in xs], tuned, width, label="tuned", color="#2f7ed8")
        ax.set_xticks(xs)
        ax.set_xticklabels(labels, rotation=30, ha="right")
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
        if "loss" in name or "perplexity" in name or "judge" in name or "accuracy, micro" in name:
            continue
        scale = 100.0 if name == "chrF" else 1.0
        if row["base"] is None and row["tuned"] is None:
            continue
        labels.append("chrF / 100" if name == "chrF" else name)
        base.append((row["base"] or 0.0) / scale)
        tuned.append((row["tuned"] or 0.0) / scale)
    if not labels:
        return None
    from slm_datagen.dataset.charts import chart_label, hangul_font

    font = hangul_font()
    labels = [chart_label(label, font) for label in labels]
    return _bars(labels, base, tuned, "base vs tuned (higher is better)", "score (0-1)", path, font)


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


def fmt_ci(row: dict[str, Any]) -> str:
    ci = row.get("ci95")
    return "–" if not ci else f"[{ci[0]:+.3g}, {ci[1]:+.3g}]"


def _section_headline(metrics: dict[str, Any], chart: Path | None) -> list[str]:
    rows = [
        [
            r["metric"],
            fmt(r["n"]),
            fmt(r["base"]),
            fmt(r["tuned"]),
            fmt_delta(r["delta"], r["higher_is_better"], r["significant"]),
            fmt_ci(r),
            r["verdict"],
        ]
        for r in metrics.get("headline", [])
        if r["headline_average"]
    ]
    header = ["metric", "n", "base", "tuned", "Δ (tuned − base)", "95 % CI of Δ", "verdict"]
    lines = ["", SECTIONS[0], "", f"**{metrics['verdict']}**", "", table(header, rows)]
    lines += [
        "",
        "Intervals: paired bootstrap over the same examples for base and tuned "
        f"({metrics['settings']['bootstrap_resamples']} resamples, seed {metrics['settings']['seed']}, percentile "
        "95 %); *better*/*worse* only when the interval excludes 0. Benchmark rows show the macro average over "
        "categories (KMMLU's paper); micro is in the benchmark section.",
    ]
    if metrics.get("regressions"):
        lines += ["", f"> ⚠ significant benchmark drop after tuning: {', '.join(metrics['regressions'])}"]
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
                fmt(base["citation_f1"]),
                fmt(tuned["citation_f1"]),
                fmt(base["hallucinated_citation_rate"]),
                fmt(tuned["hallucinated_citation_rate"]),
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
        "citation F1 base",
        "citation F1 tuned",
        "hallucinated base",
        "hallucinated tuned",
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
    rows = []
    for b in benches:
        for p in b["protocols"]:
            base, tuned = p["base"], p["tuned"]
            rows.append(
                [
                    b["name"],
                    p["protocol"],
                    p["n"],
                    p["shots_from"],
                    f"{fmt(base['macro'])} / {fmt(tuned['macro'])}",
                    f"{fmt_delta(p['delta_macro']['delta'], True, p['delta_macro']['significant'])} {_ci(p['delta_macro'])}",
                    f"{fmt(base['micro'])} {_pair(base['micro_ci95'])} / {fmt(tuned['micro'])} {_pair(tuned['micro_ci95'])}",
                    f"{fmt_delta(p['delta_micro']['delta'], True, p['delta_micro']['significant'])} {_ci(p['delta_micro'])}",
                    "⚠ regression" if p["regression"] else "",
                ]
            )
    header = [
        "benchmark",
        "protocol",
        "questions",
        "shots from",
        "macro base / tuned",
        "Δ macro [95 % CI]",
        "micro base [Wilson 95 %] / tuned",
        "Δ micro [95 % CI]",
        "",
    ]
    lines.append(table(header, rows))
    lines += ["", "Per category (accuracy base → tuned, n):", ""]
    for b in benches:
        for p in b["protocols"]:
            cats = ", ".join(
                f"{c} {fmt(v['accuracy'])} → {fmt(p['tuned']['by_category'][c]['accuracy'])} (n={v['n']})"
                for c, v in p["base"]["by_category"].items()
            )
            lines.append(f"- {b['name']}, {p['key']}: {cats}")
    chance = ", ".join(f"{b['name']} {b['chance']:.2g} ({b['options']} options)" for b in benches)
    lines += [
        "",
        "*Macro* is the mean of per-category accuracies (KMMLU's paper, the headline); *micro* the share of all "
        "questions (what lm-evaluation-harness prints). Only the harness protocol is comparable with published "
        f"KMMLU numbers. Chance: {chance}.",
    ]
    return lines


def _ci(interval: dict[str, Any]) -> str:
    low, high = interval.get("low"), interval.get("high")
    return "" if low is None else f"[{low:+.3g}, {high:+.3g}]"


def _pair(values: list[float] | None) -> str:
    return "" if not values else f"[{values[0]:.3g}, {values[1]:.3g}]"


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


def _section_retrieval(metrics: dict[str, Any]) -> list[str]:
    """Recall@k / MRR of the source article, and the answer metrics without and with the articles in the prompt."""
    from fine_tuning.evaluate.metrics import ANSWER_METRICS

    lines = ["", SECTIONS[6], ""]
    found = metrics.get("retrieval")
    if not found:
        return [*lines, "Off: the run has no finished index (`slm index CONFIG`), or `evaluate.retrieve: false`."]
    quality = found["quality"]
    lines.append(
        f"Index `{found['index']}`, the law in force on {found['as_of']}. Each answered test question is searched "
        f"(k = {quality['search_k']}); a hit counts when it is the source the pair was made from."
    )
    rows = [
        [g, m["n"], fmt(m["recall@1"]), fmt(m["recall@5"]), fmt(m["recall@10"]), fmt(m["mrr"])]
        for g, m in quality["groups"].items()
    ]
    lines += ["", table(["questions", "n", "recall@1", "recall@5", "recall@10", "MRR"], rows)]
    if quality["no_source"]:
        lines += ["", f"{quality['no_source']} examples name no source citation and are left out."]
    plain, grounded, gain = metrics["generation"], found["generation"], found["gain_tuned"]
    rows = []
    for key, name, higher in ANSWER_METRICS:
        values = [plain["base"]["all"][key], grounded["base"]["all"][key], plain["tuned"]["all"][key]]
        values.append(grounded["tuned"]["all"][key])
        if all(v is None for v in values):
            continue
        interval = gain[key]
        delta = fmt_delta(interval["delta"], higher, interval["significant"])
        rows.append([name, *(fmt(v) for v in values), delta, _ci(interval)])
    header = ["metric", "base", "base + retrieval", "tuned", "tuned + retrieval", "Δ retrieval (tuned)", "95 % CI"]
    lines += ["", f"Answers with the top {found['k']} articles in the prompt, same questions and decoding:", ""]
    lines.append(table(header, rows))
    shares = ", ".join(
        f"{which} {s['cited_and_retrieved']} of {s['cited_articles']} ({fmt(s['retrieved_share'])})"
        for which, s in found["grounding"].items()
    )
    lines += [
        "",
        f"Cited articles that were among the retrieved ones: {shares}. The rest came from the model's memory.",
    ]
    return lines


def _code(text: str) -> list[str]:
    return ["```text", text.replace("```", "ʼʼʼ") or "(empty)", "```"]


def _section_worst(rows: list[dict[str, Any]]) -> list[str]:
    lines = ["", SECTIONS[7], ""]
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
        SECTIONS[8],
        "",
        "- **Loss / perplexity**: mean negative log-likelihood per answer token (the assistant turn and its "
        "end-of-turn token, the prompt masked), token-weighted; perplexity = exp(loss).",
        "- **chrF**: sacrebleu CHRF (character n-grams up to 6, no word n-grams), corpus level, 0–100.",
        "- **ROUGE-L**: F1 of the longest common character subsequence, whitespace removed, averaged over answers.",
        "- **Citation F1 (law + 조 + 항)**: provisions found by `find_citations` in the answer against the reference "
        "provisions (the reference answer's and the pair's `citations`); a citation matches when law, 조 and 가지번호 "
        "agree and the 항 agree or either names none. Micro over answers: precision = matched cited / cited, recall "
        "= matched reference / reference. *Hallucinated*: cited provisions whose article the corpus does not know "
        "(no statute text in `collect/documents.jsonl` and cited by none of its documents) or whose 항 is past the "
        "article's last paragraph; share of all cited provisions.",
        "- **Final tax amount**: on calculation items, the answer's final stated tax equals the calculator's "
        "recomputation of the item (`slm_datagen.taxlaw`), or without a payload the reference's final tax, "
        "to the 원.",
        "- **Retrieval**: each question searched in the run's index (BM25 over morphemes, cited articles first, "
        "the version in force on the date shown); recall@k = share whose source is among the first k hits, MRR = "
        "mean of 1/rank (0 for a miss). With retrieval the top k articles precede the question in the training "
        "pairs' layout; Δ retrieval pairs each tuned answer with and without them.",
        "- **Intervals**: every Δ has a paired-bootstrap percentile interval (the same resampled examples for base "
        "and tuned, metric recomputed from summed counts, so corpus-level chrF and token-weighted loss are "
        "resampled as computed); multiple-choice accuracy has a Wilson score interval.",
        "- **Benchmarks**: the KMMLU letter protocol through lm-evaluation-harness (task config in "
        "`evaluate/harness/`, the user's CSVs as data, 5-shot from the dev file) and the cloze scorer (option "
        "log-likelihood after `질문: …\\n답:`, zero-shot and `evaluate.few_shot`-shot; *length-normalised* divides "
        "by the option's characters) for small base models. Only the harness numbers compare with published ones.",
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
    from fine_tuning.evaluate.calc_heldout import report_lines as calc_report_lines

    lines = (
        _section_summary(metrics)
        + _section_headline(metrics, chart)
        + _section_loss_curve(loss_png)
        + _section_loss_groups(metrics)
        + _section_generation(metrics, groups)
        + _section_benchmarks(metrics)
        + calc_report_lines(metrics)
        + _section_judge(metrics)
        + _section_retrieval(metrics)
        + _section_worst(rows)
        + _section_method()
    )
    report = stage_dir / REPORT
    with atomic_writer(report) as out:
        out.write("\n".join(lines) + "\n")
    return [report, *written]
