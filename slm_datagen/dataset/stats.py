"""The numbers of a built dataset, from its directory alone: what `slm data stats DIR` prints and the card shows.

Reads `train.jsonl` / `val.jsonl` / `test.jsonl` (chat examples whose `meta` carries the provenance), and when
present `rejected.jsonl`, `review.jsonl` and `build_info.json` (corpus fingerprints, knobs, split groups, the judge
and second-teacher spend). A directory of plain `messages` JSONL without meta works too: the provenance columns then
read "unknown".

Teacher cost is everything the dataset cost, itemised: the distilled pairs (accepted, rejected, held for review), the
distill requests that failed after being paid for (their usage is in the distill stage's `failures.jsonl`, read from
`../distill/` beside a build directory in a run), and the build's LLM judge and second teacher (`build_info.json`).

Kept light on purpose (json, statistics, rich): no datasets, no matplotlib, no torch.
"""

from __future__ import annotations

import json
import statistics
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from slm_datagen.review.progress import review_progress, stats_lines
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl

SPLIT_FILES = {"train": "train.jsonl", "val": "val.jsonl", "test": "test.jsonl"}
# Where the distill stage's failures are, relative to a build directory in a run (runs/<run>/build).
DISTILL_FAILURES = Path("..") / "distill" / "failures.jsonl"
UNKNOWN = "unknown"
HISTOGRAM_BINS = 12


def _turn(row: dict[str, Any], role: str) -> str:
    for message in row.get("messages") or []:
        if isinstance(message, dict) and message.get("role") == role:
            return str(message.get("content") or "")
    return ""


def length_summary(lengths: list[int], bins: int = HISTOGRAM_BINS) -> dict[str, Any]:
    """min/median/mean/p90/max and a histogram with equal-width bins (edges has bins + 1 values)."""
    if not lengths:
        return {
            "count": 0,
            "min": 0,
            "median": 0,
            "mean": 0.0,
            "p90": 0,
            "max": 0,
            "histogram": {"edges": [], "counts": []},
        }
    ordered = sorted(lengths)
    low, high = ordered[0], ordered[-1]
    bins = max(1, min(bins, high - low + 1))
    width = max(1, -(-(high - low + 1) // bins))  # ceil, at least one character per bin
    edges = [low + i * width for i in range(bins + 1)]
    counts = [0] * bins
    for value in ordered:
        counts[min((value - low) // width, bins - 1)] += 1
    return {
        "count": len(ordered),
        "min": low,
        "median": int(statistics.median(ordered)),
        "mean": round(statistics.fmean(ordered), 1),
        "p90": ordered[min(len(ordered) - 1, int(0.9 * len(ordered)))],
        "max": high,
        "histogram": {"edges": edges, "counts": counts},
    }


def _by_split(counter: dict[str, Counter[str]]) -> dict[str, dict[str, int]]:
    """{value: {train, val, test, total}} sorted by total, largest first."""
    table: dict[str, dict[str, int]] = {}
    for split, counts in counter.items():
        for value, n in counts.items():
            row = table.setdefault(value, {name: 0 for name in SPLIT_FILES} | {"total": 0})
            row[split] += n
            row["total"] += n
    return dict(sorted(table.items(), key=lambda item: (-item[1]["total"], item[0])))


def _read_rows(path: Path) -> list[dict[str, Any]]:
    return list(read_jsonl(path)) if path.exists() else []


DIMENSIONS = ("kind", "law_name", "audience", "style")


@dataclass
class _TeacherTally:
    """Pairs, tokens and cost per teacher/model, by outcome (accepted, rejected, review, failed)."""

    teachers: dict[str, dict[str, float]] = field(default_factory=dict)
    prompt_versions: Counter[str] = field(default_factory=Counter)
    cost: dict[str, float] = field(
        default_factory=lambda: {"accepted": 0.0, "rejected": 0.0, "review": 0.0, "failed": 0.0}
    )

    def add(self, provenance: dict[str, Any], outcome: str) -> None:
        teacher = provenance.get("teacher") or UNKNOWN
        model = provenance.get("model") or UNKNOWN
        key = f"{teacher}/{model}"
        row = self.teachers.setdefault(
            key,
            {
                "accepted": 0,
                "rejected": 0,
                "review": 0,
                "failed": 0,
                "input_tokens": 0,
                "cached_input_tokens": 0,
                "output_tokens": 0,
                "cost_usd": 0.0,
            },
        )
        row[outcome] += 1
        usage = provenance.get("usage") or {}
        row["input_tokens"] += int(usage.get("input_tokens") or 0)
        row["cached_input_tokens"] += int(usage.get("cached_input_tokens") or 0)  # served from the provider cache
        row["output_tokens"] += int(usage.get("output_tokens") or 0)
        row["cost_usd"] += float(usage.get("cost_usd") or 0.0)
        self.cost[outcome] += float(usage.get("cost_usd") or 0.0)
        if outcome != "failed":  # a failure has no pair, so no prompt version of its own
            self.prompt_versions[provenance.get("prompt_version") or UNKNOWN] += 1


@dataclass
class _SplitTally:
    """What the split files hold: examples per split and per dimension, lengths, flags."""

    splits: dict[str, int] = field(default_factory=lambda: {name: 0 for name in SPLIT_FILES})
    per_dim: dict[str, dict[str, Counter[str]]] = field(
        default_factory=lambda: {d: {s: Counter() for s in SPLIT_FILES} for d in DIMENSIONS}
    )
    question_lengths: list[int] = field(default_factory=list)
    answer_lengths: list[int] = field(default_factory=list)
    flags: Counter[str] = field(default_factory=Counter)

    def add(self, split: str, row: dict[str, Any]) -> None:
        meta = row.get("meta") or {}
        self.splits[split] += 1
        for dim in DIMENSIONS:
            self.per_dim[dim][split][str(meta.get(dim) or UNKNOWN)] += 1
        self.question_lengths.append(len(_turn(row, "user")))
        self.answer_lengths.append(len(_turn(row, "assistant")))
        for flag in meta.get("flags") or []:
            self.flags[flag.get("rule", UNKNOWN) if isinstance(flag, dict) else str(flag)] += 1


def _present_splits(path: Path) -> list[str]:
    if not path.is_dir():
        raise SlmError(f"{path}: not a directory", "pass a built dataset directory, e.g. runs/<run>/build")
    present = [name for name, file in SPLIT_FILES.items() if (path / file).exists()]
    if not present:
        raise SlmError(
            f"{path}: no train.jsonl, val.jsonl or test.jsonl here",
            "pass the build stage's directory (runs/<run>/build) or run `slm build CONFIG` first",
        )
    return present


def dataset_stats(path: Path) -> dict[str, Any]:
    """Every number the card and `slm data stats` show, as plain JSON-able data."""
    path = Path(path)
    present = _present_splits(path)
    data, spend = _SplitTally(), _TeacherTally()
    for split in present:
        for row in read_jsonl(path / SPLIT_FILES[split]):
            data.add(split, row)
            spend.add(row.get("meta") or {}, "accepted")

    rejected_rows = _read_rows(path / "rejected.jsonl")
    rejections = Counter(str(row.get("rule") or UNKNOWN) for row in rejected_rows)
    for row in rejected_rows:
        spend.add(row.get("pair") or {}, "rejected")
    review_rows = _read_rows(path / "review.jsonl")
    for row in review_rows:
        spend.add(row.get("pair") or {}, "review")

    # Paid-for distill requests that gave no pair: without them the card would understate what the dataset cost.
    failures_path = (path / DISTILL_FAILURES).resolve()
    failed_rows = _read_rows(failures_path)
    for row in failed_rows:
        spend.add(row, "failed")

    info_path = path / "build_info.json"
    build_info = json.loads(info_path.read_text(encoding="utf-8")) if info_path.exists() else {}
    checks_spend = build_info.get("judge") or {}
    for key in ("judge", "second_teacher"):
        spend.cost[key] = float((checks_spend.get(key) or {}).get("cost_usd") or 0.0)
    examples = sum(data.splits.values())
    considered = examples + len(rejected_rows) + len(review_rows)
    for row in spend.teachers.values():
        row["cost_usd"] = round(row["cost_usd"], 6)
    return {
        "path": str(path),
        "examples": examples,
        "splits": data.splits,
        "by_kind": _by_split(data.per_dim["kind"]),
        "by_law": _by_split(data.per_dim["law_name"]),
        "by_audience": _by_split(data.per_dim["audience"]),
        "by_style": _by_split(data.per_dim["style"]),
        "question_chars": length_summary(data.question_lengths),
        "answer_chars": length_summary(data.answer_lengths),
        "rejected": len(rejected_rows),
        "rejections": dict(rejections.most_common()),
        "flags": dict(data.flags.most_common()),
        "review": len(review_rows),
        "accept_rate": round(examples / considered, 4) if considered else 0.0,
        "teachers": dict(sorted(spend.teachers.items())),
        "prompt_versions": dict(spend.prompt_versions.most_common()),
        "cost_usd": {k: round(v, 6) for k, v in spend.cost.items()} | {"total": round(sum(spend.cost.values()), 6)},
        "failed_requests": len(failed_rows),
        "failures_file": str(failures_path) if failures_path.exists() else None,
        "build_info": build_info,
        "human_review": review_progress(path),  # the same numbers the review page shows
    }


def cost_breakdown(stats: dict[str, Any]) -> str:
    """The total teacher cost and its items: distilled pairs by outcome, failed distill requests, judge, 2nd teacher."""
    cost = stats["cost_usd"]
    if stats.get("failures_file"):
        failed = f"failed distill requests ${cost['failed']:.4f} ({stats['failed_requests']} requests)"
    else:
        failed = f"failed distill requests not counted (no {DISTILL_FAILURES.as_posix()} beside the data)"
    return (
        f"${cost['total']:.4f} (distilled pairs: accepted ${cost['accepted']:.4f}, rejected ${cost['rejected']:.4f}, "
        f"review ${cost['review']:.4f}; {failed}; LLM judge ${cost['judge']:.4f}; "
        f"second teacher ${cost['second_teacher']:.4f})"
    )


def _split_table(title: str, rows: dict[str, dict[str, int]], first: str) -> Table:
    table = Table(title=title)
    for column in (first, "train", "val", "test", "total"):
        table.add_column(column, justify="left" if column == first else "right")
    for value, counts in rows.items():
        table.add_row(value, *(str(counts[c]) for c in ("train", "val", "test", "total")))
    return table


def _checks_table(stats: dict[str, Any]) -> Table | str:
    """Rejections and flags per rule; in words when no check rejected or flagged anything (an empty table reads as
    a failure to count)."""
    rules = sorted(set(stats["rejections"]) | set(stats["flags"]))
    if not rules:
        return "quality checks: no rule rejected or flagged any pair"
    checks = Table(title="quality checks")
    for column in ("rule", "rejected", "flagged"):
        checks.add_column(column, justify="left" if column == "rule" else "right")
    for rule in rules:
        checks.add_row(rule, str(stats["rejections"].get(rule, 0)), str(stats["flags"].get(rule, 0)))
    return checks


def print_dataset_stats(path: Path, console: Console | None = None) -> dict[str, Any]:
    """Print the numbers as rich tables (stdout by default); returns them too."""
    stats = dataset_stats(path)
    out = console or Console()
    splits = stats["splits"]
    out.print(
        f"[bold]{stats['path']}[/bold]: {stats['examples']} examples "
        f"(train {splits['train']}, val {splits['val']}, test {splits['test']}); "
        f"{stats['rejected']} rejected, {stats['review']} held for review; accept rate {stats['accept_rate']:.1%}"
    )
    out.print(_split_table("by source kind", stats["by_kind"], "kind"))
    out.print(_split_table("by law", stats["by_law"], "law"))
    out.print(_split_table("by audience", stats["by_audience"], "audience"))
    out.print(_split_table("by style", stats["by_style"], "style"))
    lengths = Table(title="lengths (characters)")
    for column in ("", "min", "median", "mean", "p90", "max"):
        lengths.add_column(column, justify="right")
    for label, key in (("question", "question_chars"), ("answer", "answer_chars")):
        s = stats[key]
        lengths.add_row(label, str(s["min"]), str(s["median"]), str(s["mean"]), str(s["p90"]), str(s["max"]))
    out.print(lengths)
    out.print(_checks_table(stats))
    teachers = Table(title="teachers")
    columns = ("teacher/model", "accepted", "rejected", "review", "failed", "input tokens", "output tokens", "cost $")
    for column in columns:
        teachers.add_column(column, justify="left" if column == "teacher/model" else "right", overflow="fold")
    for key, row in stats["teachers"].items():
        teachers.add_row(
            key,
            *(str(int(row[c])) for c in ("accepted", "rejected", "review", "failed", "input_tokens", "output_tokens")),
            f"{row['cost_usd']:.4f}",
        )
    out.print(teachers)
    out.print(f"prompt versions: {', '.join(f'{k} ({v})' for k, v in stats['prompt_versions'].items()) or 'none'}")
    out.print(f"teacher cost: {cost_breakdown(stats)}")
    for line in stats_lines(stats["human_review"]):  # the page's numbers, per rule as in its header
        out.print(line, highlight=False)
    fingerprints = stats["build_info"].get("fingerprints") or {}
    for name, digest in fingerprints.items():
        out.print(f"sha256 {name}: {digest}")
    return stats
