"""RAFT-style pairs (`distill.context`): which pairs get retrieved law, which articles, and how the example shows it."""

from __future__ import annotations

from pathlib import Path

import pytest

from slm_datagen.dataset.formats import to_example
from slm_datagen.distill.plan import request_prompt
from slm_datagen.distill.prompts import CONTEXT_VERSION
from slm_datagen.distill.stage import make_plan, run_distill
from slm_datagen.index.build import build_index
from slm_datagen.index.context import ContextArticle, question_with_context
from slm_datagen.index.search import load_index, search
from slm_forest.config import DistillConfig, IndexConfig, load_config
from slm_forest.errors import SlmError
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.records import QAPair
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks

RAFT = {"context": "gold+distractors", "context_share": 0.5, "context_distractors": 2}


def _pairs(ctx) -> list[QAPair]:
    return [QAPair.model_validate(r) for r in read_rows(ctx.stage_dir / "qa_pairs.jsonl")]


def _chunks(shared_dir: Path):
    return statute_chunks(shared_dir / "corpus") + ruling_chunks(shared_dir / "corpus")[:10]


def _built_index(ctx) -> None:
    """The run's index stage, finished: its files and a complete manifest, as `slm index` leaves them."""
    out = ctx.run_dir / "index"
    outcome = build_index(ctx.run_dir / "prepare" / "chunks.jsonl", out, IndexConfig())
    manifest = Manifest(
        stage="index",
        run_name="t",
        complete=True,
        fingerprint="test",
        config={},
        outputs=describe_files(outcome.outputs, ctx.run_dir),
        started_at="2026-01-01T00:00:00+00:00",
        finished_at="2026-01-01T00:00:00+00:00",
        seconds=0.0,
    )
    write_manifest(out, manifest)


def test_without_an_index_distractors_are_other_articles_of_the_same_law(tmp_path, shared_dir):
    chunks = _chunks(shared_dir)
    by_id = {c.id: c for c in chunks}
    ctx = make_ctx(tmp_path, chunks, RAFT)
    run_distill(ctx)
    pairs = _pairs(ctx)
    shown = [p for p in pairs if p.meta.get("context")]
    assert 0.3 < len(shown) / len(pairs) < 0.7  # about context_share, drawn per pair
    statutes = [p for p in shown if p.kind == "statute_article"]
    assert statutes
    for pair in statutes:
        chunk = by_id[pair.chunk_id]
        articles = [ContextArticle.model_validate(a) for a in pair.meta["context"]]
        gold = articles[pair.meta["context_gold"] - 1]
        assert gold.citation == chunk.citation and gold.text == chunk.text  # the source, as the index returns it
        others = [a for a in articles if a is not gold]
        assert len(others) <= 2 and all(a.citation.startswith(chunk.law_name) for a in others)
        assert all(a.citation != chunk.citation for a in others)
        assert pair.meta["context_citations"] == [a.citation for a in articles]
        assert pair.meta["context_distractors_from"] == "same_law"
        # the answer cites the gold article first, by its number in the prompt
        assert pair.answer.startswith(f"참고 법령 [{pair.meta['context_gold']}] {chunk.citation}에 근거해")
    assert {p.meta["context_gold"] for p in statutes} != {1}  # the gold is not always first without a retriever
    plain = [p for p in pairs if not p.meta.get("context")]
    assert plain and not any(p.answer.startswith("참고 ") for p in plain)
    first = (ctx.stage_dir / "qa_pairs.jsonl").read_bytes()
    run_distill(ctx)
    assert (ctx.stage_dir / "qa_pairs.jsonl").read_bytes() == first  # seeded: the same pairs, contexts and order


def test_with_the_runs_index_distractors_are_bm25_neighbours_in_the_retrievers_order(tmp_path, shared_dir):
    chunks = _chunks(shared_dir)
    ctx = make_ctx(tmp_path, chunks, {**RAFT, "context_share": 1.0})
    _built_index(ctx)
    run_distill(ctx)
    pairs = _pairs(ctx)
    assert pairs and all(p.meta.get("context_distractors_from") == "index" for p in pairs)
    index = load_index(ctx.run_dir / "index")
    try:
        for pair in pairs[:12]:
            articles = pair.meta["context_citations"]
            gold = pair.meta["context_gold"]
            assert articles[gold - 1] == pair.source_citation and len(articles) == 3
            hits = search(index, pair.question, k=12).hits
            neighbours = list(dict.fromkeys(h.citation for h in hits if h.doc_id != pair.doc_id))[:2]
            assert [c for i, c in enumerate(articles, 1) if i != gold] == neighbours
    finally:
        index.close()
    assert run_distill(ctx).stats["context_gold_positions"]  # where the gold landed, for the card and the report


def test_a_ruling_pair_with_context_names_its_related_laws_first(tmp_path, shared_dir):
    rulings = ruling_chunks(shared_dir / "corpus")[:6]
    ctx = make_ctx(tmp_path, rulings, {"context": "gold", "context_share": 1.0})
    run_distill(ctx)
    for pair in _pairs(ctx):
        assert pair.meta["context_citations"] == [pair.source_citation] and pair.meta["context_gold"] == 1
        lead = pair.answer.splitlines()[0]
        assert lead.startswith(f"참고 자료 [1] {pair.source_citation}") and pair.citations[0] in lead


def test_the_sft_example_shows_the_context_then_the_question(tmp_path, shared_dir):
    ctx = make_ctx(tmp_path, statute_chunks(shared_dir / "corpus")[:6], {**RAFT, "context_max_chars": 200})
    run_distill(ctx)
    pairs = _pairs(ctx)
    shown = next(p for p in pairs if p.meta.get("context"))
    example = to_example(shown, "system")
    articles = [ContextArticle.model_validate(a) for a in shown.meta["context"]]
    assert example.messages[1].content == question_with_context(shown.question, articles, 200)
    assert example.messages[1].content.endswith(shown.question) and "참고 법령:" in example.messages[1].content
    assert example.meta["context_citations"] == shown.meta["context_citations"]
    plain = next(p for p in pairs if not p.meta.get("context"))
    assert to_example(plain, "system").messages[1].content == plain.question
    assert "context_citations" not in to_example(plain, "system").meta


def test_teacher_prompts_ask_for_the_source_first_and_key_it(tmp_path, shared_dir):
    chunks = statute_chunks(shared_dir / "corpus")[:2]
    ctx = make_ctx(tmp_path, chunks)
    path = ctx.run_dir / "prepare" / "chunks.jsonl"
    for pairs_per_request in (1, None):
        teacher = {"provider": "openai", "model": "gpt-4o-mini"}
        plain_cfg = DistillConfig(teachers=[teacher], pairs_per_request=pairs_per_request)
        raft_cfg = DistillConfig(teachers=[teacher], pairs_per_request=pairs_per_request, **RAFT)
        plain, _ = make_plan(path, plain_cfg, None)
        raft, _ = make_plan(path, raft_cfg, None)
        assert all(r.prompt_version.endswith("+" + CONTEXT_VERSION) for r in raft)
        assert not {r.key for r in plain} & {r.key for r in raft}  # a cached plain reply is not reused for RAFT
        prompt = request_prompt(chunks[0], raft_cfg.teachers[0], raft[0], raft_cfg)
        assert f"원문({chunks[0].citation})" in prompt.messages[-1]["content"]


@pytest.mark.parametrize(
    "override, key",
    [
        ("distill.context=retrieved", "distill.context"),
        ("distill.context_share=0", "distill.context_share"),
        ("distill.context_distractors=0", "distill.context_distractors"),
    ],
)
def test_bad_context_settings_name_the_key(override, key):
    with pytest.raises(SlmError, match=key.replace(".", r"\.")):
        load_config(None, [override])
