"""Benchmark contamination: pairs whose question or answer reproduce a benchmark question.

Benchmarks are KMMLU-format CSV files (`question,answer,A,B,C,D,…`). Texts are compared as Hangul-aware keys
(korean.match_key: no whitespace, which also undoes KMMLU's PDF spacing artefacts such as "폐 기") cut into
character n-grams (n = build.contamination_ngram). A pair overlaps a benchmark question when it contains at least
build.contamination_min_share of that question's n-grams; the share (not a single shared n-gram) keeps common
statutory phrases ("대통령령으로 정하는 바에 따라") from counting as leaks.
"""

from __future__ import annotations

import csv
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

from slm_datagen.dataset.korean import char_ngrams, match_key
from slm_datagen.dataset.rules import Finding
from slm_forest.errors import SlmError
from slm_forest.records import QAPair


@dataclass(frozen=True)
class BenchmarkQuestion:
    where: str  # "Taxation-test.csv:57"
    question: str
    grams: frozenset[str]


def load_benchmark_questions(paths: list[str], n: int) -> list[BenchmarkQuestion]:
    """Read the `question` column of each CSV (UTF-8, with or without BOM). Questions shorter than n are skipped."""
    items: list[BenchmarkQuestion] = []
    for index, raw in enumerate(paths):
        path = Path(raw)
        if not path.is_file():
            raise SlmError(
                f"build.contamination_files[{index}]: {path} not found",
                "give the path of a KMMLU-format CSV (relative to the working directory) or remove the entry",
            )
        try:
            with open(path, encoding="utf-8-sig", newline="") as handle:
                reader = csv.DictReader(handle)
                if not reader.fieldnames or "question" not in reader.fieldnames:
                    raise SlmError(
                        f"{path}:1: no 'question' column (columns: {', '.join(reader.fieldnames or [])})",
                        "contamination files use the KMMLU layout: question,answer,A,B,C,D,…",
                    )
                for line_no, row in enumerate(reader, start=2):
                    question = (row.get("question") or "").strip()
                    key = match_key(question)
                    if len(key) >= n:
                        items.append(
                            BenchmarkQuestion(f"{path.name}:{line_no}", question, frozenset(char_ngrams(key, n)))
                        )
        except UnicodeDecodeError:
            raise SlmError(f"{path}: not UTF-8", "convert the benchmark CSV to UTF-8") from None
        except csv.Error as exc:
            raise SlmError(f"{path}: malformed CSV ({exc})", "check the file's quoting") from None
    return items


def find_contamination(
    pairs: list[QAPair], benchmark: list[BenchmarkQuestion], n: int, min_share: float
) -> dict[int, tuple[float, BenchmarkQuestion]]:
    """Position in `pairs` -> (share, the benchmark question it overlaps most) for each pair at or above `min_share`."""
    index: dict[str, list[int]] = {}
    for position, item in enumerate(benchmark):
        for gram in item.grams:
            index.setdefault(gram, []).append(position)
    hits_by_pair: dict[int, tuple[float, BenchmarkQuestion]] = {}
    for position_in_pairs, pair in enumerate(pairs):
        grams = char_ngrams(match_key(pair.question), n) | char_ngrams(match_key(pair.answer), n)
        hits: Counter[int] = Counter()
        for gram in grams:
            for position in index.get(gram, ()):
                hits[position] += 1
        best: tuple[float, BenchmarkQuestion] | None = None
        for position, count in hits.items():
            share = count / len(benchmark[position].grams)
            if share >= min_share and (best is None or share > best[0]):
                best = (share, benchmark[position])
        if best is not None:
            hits_by_pair[position_in_pairs] = best
    return hits_by_pair


def contamination_finding(share: float, item: BenchmarkQuestion, n: int, action: str) -> Finding:
    snippet = item.question if len(item.question) <= 60 else item.question[:57] + "…"
    return Finding(
        "contamination",
        f"shares {share:.0%} of the {n}-grams of benchmark question {item.where} ({snippet!r})",
        "reject" if action == "drop" else "flag",
    )
