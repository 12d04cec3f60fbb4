"""The dataset card: README.md in Hugging Face dataset-card style, next to the data, with two PNG charts.

Everything in it comes from `stats.dataset_stats(directory)` — the same numbers `slm data stats` prints — so the
card and the command never disagree. It names teachers by provider/model only: no keys, no endpoints.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from slm_datagen.dataset.charts import LAWS_PNG, LENGTHS_PNG, chart_label, write_charts
from slm_datagen.dataset.rules import RULES
from slm_datagen.dataset.stats import cost_breakdown, dataset_stats
from slm_datagen.review.progress import card_lines
from slm_forest.files import atomic_writer

CARD_NAME = "README.md"


def size_category(n: int) -> str:
    """Hugging Face size_categories bucket."""
    for limit, label in ((1_000, "n<1K"), (10_000, "1K<n<10K"), (100_000, "10K<n<100K"), (1_000_000, "100K<n<1M")):
        if n < limit:
            return label
    return "1M<n<10M"


def front_matter(stats: dict[str, Any]) -> str:
    info = stats["build_info"]
    meta = {
        "language": ["ko"],
        "license": info.get("license", "other"),
        "pretty_name": f"SLM Forest Korean tax-law Q&A ({info.get('run_name', 'dataset')})",
        "task_categories": ["question-answering", "text-generation"],
        "tags": ["tax", "law", "korean", "synthetic", "instruction-tuning"],
        "size_categories": [size_category(stats["examples"])],
        "configs": [
            {
                "config_name": "default",
                "data_files": [
                    {"split": "train", "path": "train.jsonl"},
                    {"split": "validation", "path": "val.jsonl"},
                    {"split": "test", "path": "test.jsonl"},
                ],
            }
        ],
    }
    return "---\n" + yaml.safe_dump(meta, allow_unicode=True, sort_keys=False) + "---\n"


def _table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "|".join(" --- " for _ in header) + "|"]
    lines += ["| " + " | ".join(str(cell).replace("|", "\\|") for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def _split_rows(by: dict[str, dict[str, int]]) -> list[list[Any]]:
    return [[value, c["train"], c["val"], c["test"], c["total"]] for value, c in by.items()]


def _intro(stats: dict[str, Any]) -> list[str]:
    info = stats["build_info"]
    return [
        f"# Korean tax-law Q&A — run `{info.get('run_name', '?')}`\n",
        f"{stats['examples']} question/answer examples about Korean tax law, distilled from teacher models over "
        f"statutes, court decisions and 국세청 interpretations, and checked by `slm build` (SLM Forest). "
        f"Of {info.get('pairs_in', stats['examples'] + stats['rejected'] + stats['review'])} distilled pairs, "
        f"{stats['rejected']} rejected by the quality rules below and {stats['review']} held for human review "
        f"(accept rate {stats['accept_rate']:.1%}).\n",
    ]


def _splits_section(stats: dict[str, Any]) -> list[str]:
    info = stats["build_info"]
    splits = stats["splits"]
    groups = info.get("split_groups") or {}
    return [
        "## Splits\n",
        "Split by source document: every pair generated from one statute article (all its versions) or one decision "
        f"is in the same split (seed {info.get('seed', '?')}, val share {info.get('val_share', '?')}, "
        f"test share {info.get('test_share', '?')}).\n",
        _table(
            ["split", "file", "examples", "source groups"],
            [[name, f"`{name}.jsonl`", splits[name], groups.get(name, "?")] for name in ("train", "val", "test")],
        )
        + "\n",
    ]


def _composition_sections(stats: dict[str, Any], chart_font: str | None) -> list[str]:
    """Source kinds, laws (with the chart), audience and style, lengths (with the chart)."""
    parts = ["## Source kinds\n"]
    parts.append(_table(["kind", "train", "val", "test", "total"], _split_rows(stats["by_kind"])) + "\n")

    parts.append("## Laws\n")
    law_rows = [
        [law, f"`{chart_label(law, chart_font)}`", c["train"], c["val"], c["test"], c["total"]]
        for law, c in stats["by_law"].items()
    ]
    parts.append(_table(["law", "chart label", "train", "val", "test", "total"], law_rows) + "\n")
    font_note = (
        f"Chart labels use the {chart_font} font."
        if chart_font
        else "No Hangul font is installed on the build machine, so the chart labels law names in romanised form "
        "(the table above maps them)."
    )
    parts.append(f"![examples per law]({LAWS_PNG})\n\n{font_note}\n")

    parts.append("## Audience and style\n")
    parts.append(_table(["audience", "train", "val", "test", "total"], _split_rows(stats["by_audience"])) + "\n")
    parts.append(_table(["style", "train", "val", "test", "total"], _split_rows(stats["by_style"])) + "\n")

    parts.append("## Lengths\n")
    length_rows = []
    for label, key in (("question", "question_chars"), ("answer", "answer_chars")):
        s = stats[key]
        length_rows.append([label, s["min"], s["median"], s["mean"], s["p90"], s["max"]])
    parts.append(_table(["characters", "min", "median", "mean", "p90", "max"], length_rows) + "\n")
    parts.append(f"![question and answer lengths]({LENGTHS_PNG})\n")
    return parts


def _quality_section(stats: dict[str, Any]) -> list[str]:
    parts = ["## Quality checks\n"]
    parts.append(
        "Teacher output is not ground truth. Every pair went through the named rules below; rejected pairs are kept "
        "in `rejected.jsonl` with their rule and details, flagged pairs stay in the data with `meta.flags`.\n"
    )
    check_rows = [
        [f"`{rule}`", description, stats["rejections"].get(rule, 0), stats["flags"].get(rule, 0)]
        for rule, description in RULES.items()
    ]
    check_rows += [
        [f"`{rule}`", "(unknown rule)", n, 0] for rule, n in stats["rejections"].items() if rule not in RULES
    ]
    parts.append(_table(["rule", "what it catches", "rejected", "flagged"], check_rows) + "\n")
    knobs = stats["build_info"].get("checks") or {}
    if knobs:
        parts.append("Settings: " + ", ".join(f"`{k}={v}`" for k, v in knobs.items()) + ".\n")
    parts += card_lines(stats)  # human decisions per kind (slm review)
    calculations = _calculation_lines(stats["build_info"].get("calculations") or {})
    return (
        parts + _citations_lines(stats["build_info"].get("citations") or {}) + _paraphrase_lines(stats) + calculations
    )


def _calculation_lines(calc: dict[str, Any]) -> list[str]:
    """Calculation answers by verdict (slm_datagen/dataset/arithmetic.py) and the rules that rejected them."""
    if not calc:
        return []
    status = calc.get("by_status") or {}
    rules = ", ".join(f"`{rule}` {n}" for rule, n in (calc.get("rejected_by_rule") or {}).items()) or "none"
    why = "; ".join(f"{reason} ({n})" for reason, n in (calc.get("unverified_reasons") or {}).items())
    return [
        f"Calculation answers: {calc.get('calculation_answers', 0)} — {status.get('verified', 0)} verified by "
        f"recomputation, {status.get('rejected', 0)} rejected ({rules}), {status.get('unverified', 0)} unverified "
        f"(`build.unverified_calculations={calc.get('unverified_policy', 'review')}`)"
        + (f": {why}" if why else "")
        + ".\n"
    ]


def _citations_lines(cited: dict[str, Any]) -> list[str]:
    """How each citation was checked against the collected corpus, and which laws it holds in full."""
    if not cited:
        return []
    counts = cited.get("outcomes") or {}
    line = (
        f"Citations: {counts.get('verified', 0)} verified against the corpus, "
        f"{counts.get('grounded_in_source', 0)} grounded in the source; held for review: "
        f"{counts.get('unverified_partial_law', 0)} (law collected in part), "
        f"{counts.get('unverified_not_collected', 0)} (law not collected); rejected: "
        f"{counts.get('not_in_full_law', 0)} (no such article in a law held in full), "
        f"{counts.get('unknown_law', 0)} (unknown law), {counts.get('wrong_version', 0)} (wrong version), "
        f"{counts.get('paragraph_missing', 0)} (missing 항).\n"
    )
    held = [f"Laws held in full: {', '.join(cited.get('laws_in_full') or []) or 'none'}"]
    if cited.get("laws_in_part"):
        held.append(f"in part: {', '.join(cited['laws_in_part'])}")
    return [line, "; ".join(held) + ".\n"]


def _paraphrase_lines(stats: dict[str, Any]) -> list[str]:
    para = stats["build_info"].get("paraphrase") or {}
    if not para:
        return []
    return [
        f"Paraphrased questions are found on Kiwi morphemes at threshold {para['threshold']}, chosen on "
        f"`{para['set']}`: precision {para['precision']:.1%}, recall {para['recall']:.1%} on that set.\n"
    ]


def _contamination_section(stats: dict[str, Any]) -> list[str]:
    parts = ["## Benchmark contamination\n"]
    bench = stats["build_info"].get("contamination") or {}
    if not bench.get("files"):
        parts.append("No benchmark files were given (`build.contamination_files`), so no contamination check ran.\n")
        return parts
    parts.append(
        f"Questions and answers were compared with {bench.get('questions', 0)} benchmark questions "
        f"(character {bench.get('ngram')}-grams, overlap share ≥ {bench.get('min_share')}, action "
        f"`{bench.get('action')}`): {bench.get('matches', 0)} pairs overlapped.\n"
    )
    parts.append(_table(["benchmark file", "sha256"], [[f["name"], f"`{f['sha256']}`"] for f in bench["files"]]) + "\n")
    return parts


def _teachers_section(stats: dict[str, Any]) -> list[str]:
    parts = ["## Teachers\n"]
    teacher_rows = [
        [
            key,
            int(r["accepted"]),
            int(r["rejected"]),
            int(r["review"]),
            int(r.get("failed", 0)),
            int(r["input_tokens"]),
            int(r["output_tokens"]),
            f"${r['cost_usd']:.4f}",
            # everything the teacher was paid (failed and rejected pairs too) per pair that made it in
            f"${r['cost_usd'] / r['accepted']:.6f}" if r["accepted"] else "-",
            f"{r.get('cached_input_tokens', 0) / r['input_tokens']:.0%}" if r["input_tokens"] else "-",
        ]
        for key, r in stats["teachers"].items()
    ]
    header = ["teacher/model", "accepted", "rejected", "review", "failed", "input tokens", "output tokens", "cost"]
    header += ["$ per accepted pair", "input from cache"]
    parts.append(_table(header, teacher_rows) + "\n")
    versions = ", ".join(f"`{v}` ({n})" for v, n in stats["prompt_versions"].items()) or "none recorded"
    # The total is what the dataset cost, not only its surviving pairs: failed (paid) distill requests and the
    # judge / second-teacher calls are part of it, each named so the sum can be checked.
    parts.append(f"Prompt versions: {versions}.\n\nTotal teacher cost: {cost_breakdown(stats)}.\n")
    checks_by_teacher = stats["build_info"].get("judge") or {}
    for key, title in (("judge", "LLM judge"), ("second_teacher", "Second teacher")):
        spend = checks_by_teacher.get(key)
        if spend:
            parts.append(_check_spend_line(title, spend))
    return parts


def _check_spend_line(title: str, spend: dict[str, Any]) -> str:
    line = (
        f"{title}: {spend['provider']}/{spend['model']}, {spend['requests']} requests, {spend['errors']} errors, "
        f"{spend['input_tokens']} input + {spend['output_tokens']} output tokens, ${spend['cost_usd']:.4f}"
    )
    if "min_score" in spend:
        scores = ", ".join(f"{k}: {v}" for k, v in (spend.get("scores") or {}).items()) or "none"
        line += f"; scores ({scores}), pairs below {spend['min_score']} rejected"
    if spend.get("cost_note"):
        line += f" ({spend['cost_note']})"
    return line + ".\n"


def _fingerprints_section(stats: dict[str, Any]) -> list[str]:
    fingerprints = stats["build_info"].get("fingerprints") or {}
    if not fingerprints:
        return ["## Corpus fingerprints\n", "Not recorded (no build_info.json beside the data).\n"]
    rows = [[f"`{name}`", f"`{digest}`"] for name, digest in fingerprints.items()]
    return ["## Corpus fingerprints\n", _table(["file", "sha256"], rows) + "\n"]


FORMAT_FILES = {
    "alpaca": "- `alpaca/`: instruction / input / output JSONL",
    "seed_text": '- `seed_text/`: `{"text": "### 질문: … ### 답변: …"}` JSONL (the seed project\'s format)',
    "openai": "- `openai/`: OpenAI fine-tuning JSONL (`messages` only)",
    "hf": "- `hf/`: a `datasets.DatasetDict` (train / validation / test) for `load_from_disk`",
}

LIMITATIONS = (
    "Answers are machine-generated. The checks catch empty, truncated, refused, duplicated and non-Korean answers, "
    "citations of articles that are not in the collected corpus, and 증여세/상속세/소득세 arithmetic that does not "
    "recompute; they cannot prove an answer's legal reasoning right. Laws change: each pair follows the version of "
    "the law it was generated from. Not legal advice. Korean statutes and court decisions are unprotected works "
    "(저작권법 제7조). Benchmarks used for the contamination check are never part of this dataset.\n"
)


def _files_section(stats: dict[str, Any]) -> list[str]:
    formats = stats["build_info"].get("formats") or []
    file_lines = ["- `train.jsonl`, `val.jsonl`, `test.jsonl`: chat `messages` (system, user, assistant) and `meta`"]
    file_lines += [FORMAT_FILES[f] for f in formats if f in FORMAT_FILES]
    file_lines.append("- `rejected.jsonl`: rejected pairs with the rule and details; `review.jsonl`: held for review")
    return ["## Files\n", "\n".join(file_lines) + "\n"]


def render_card(stats: dict[str, Any], chart_font: str | None) -> str:
    parts = (
        [front_matter(stats)]
        + _intro(stats)
        + _splits_section(stats)
        + _composition_sections(stats, chart_font)
        + _quality_section(stats)
        + _contamination_section(stats)
        + _teachers_section(stats)
        + _fingerprints_section(stats)
        + _files_section(stats)
        + ["## Limitations\n", LIMITATIONS]
    )
    return "\n".join(parts)


def write_card(directory: Path) -> list[Path]:
    """Write README.md and the charts into `directory` from its own data; returns the files written."""
    stats = dataset_stats(directory)
    charts, font = write_charts(stats, directory)
    card = directory / CARD_NAME
    with atomic_writer(card) as out:
        out.write(render_card(stats, font))
    return [card, *charts]
