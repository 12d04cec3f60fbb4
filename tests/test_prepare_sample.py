"""prepare/sample.py: N chunks keeping the source-kind ratio, deterministic for a seed, streaming."""

from __future__ import annotations

import json
import random
from collections import Counter
from pathlib import Path

from slm_datagen.prepare.process import prepare_documents
from slm_datagen.prepare.sample import plan_sample, quotas
from slm_forest.config import PrepareConfig, SampleConfig
from slm_forest.files import write_jsonl
from slm_forest.records import Document


def test_quotas_follow_the_ratio_and_add_up_to_n():
    assert quotas({"ruling": 600, "interpretation": 300, "precedent": 100}, 100) == {
        "ruling": 60,
        "interpretation": 30,
        "precedent": 10,
    }
    odd = quotas({"a": 1, "b": 1, "c": 1}, 2)
    assert sum(odd.values()) == 2 and max(odd.values()) == 1
    assert quotas({"a": 5, "b": 7}, 50) == {"a": 5, "b": 7}


def test_plan_is_none_when_everything_is_kept():
    assert plan_sample({"a": 10}, None, 42, True) is None
    assert plan_sample({"a": 10, "b": 5}, 15, 42, True) is None


def test_plan_is_deterministic_for_a_seed_and_changes_with_it():
    counts = {"ruling": 700, "interpretation": 200, "statute_article": 100}
    first = plan_sample(counts, 50, 42, True)
    assert first == plan_sample(counts, 50, 42, True)
    assert first != plan_sample(counts, 50, 43, True)
    assert {kind: len(positions) for kind, positions in first.keep.items()} == {
        "ruling": 35,
        "interpretation": 10,
        "statute_article": 5,
    }
    assert all(0 <= p < counts[kind] for kind, positions in first.keep.items() for p in positions)


def _corpus(path: Path) -> None:
    """60 rulings, 30 interpretations, 10 precedents; random syllables, so no two are near duplicates."""
    rng = random.Random(0)
    kinds = ["ruling"] * 60 + ["interpretation"] * 30 + ["precedent"] * 10
    rng.shuffle(kinds)
    docs = [
        Document(
            id=f"d{i}",
            kind=kind,
            title=f"문서 {i}",
            text="".join(chr(rng.randrange(0xAC00, 0xD7A4)) for _ in range(120)),
            source="t",
        )
        for i, kind in enumerate(kinds)
    ]
    write_jsonl(path, docs)


def _sampled(tmp_path: Path, name: str, seed: int, keep_ratio: bool = True) -> list[dict]:
    cfg = PrepareConfig(sample=SampleConfig(n=20, keep_source_ratio=keep_ratio))
    outcome = prepare_documents(tmp_path / "documents.jsonl", tmp_path / name, cfg, seed)
    rows = [json.loads(line) for line in (tmp_path / name / "chunks.jsonl").read_text(encoding="utf-8").splitlines()]
    assert outcome.totals()["sampled_out"] == 100 - len(rows)
    return rows


def test_prepare_samples_n_chunks_keeping_the_ratio_deterministically(tmp_path):
    _corpus(tmp_path / "documents.jsonl")
    first = _sampled(tmp_path, "a", seed=42)
    assert Counter(row["kind"] for row in first) == {"ruling": 12, "interpretation": 6, "precedent": 2}
    assert first == _sampled(tmp_path, "b", seed=42)
    other_seed = _sampled(tmp_path, "c", seed=7)
    assert {row["id"] for row in other_seed} != {row["id"] for row in first}
    # Sampling keeps input order, so downstream stages see chunks as collect wrote them.
    order = {f"d{i}": i for i in range(100)}
    assert [order[row["doc_id"]] for row in first] == sorted(order[row["doc_id"]] for row in first)


def test_prepare_samples_uniformly_when_the_ratio_is_not_kept(tmp_path):
    _corpus(tmp_path / "documents.jsonl")
    rows = _sampled(tmp_path, "u", seed=42, keep_ratio=False)
    assert len(rows) == 20 and len({row["id"] for row in rows}) == 20
