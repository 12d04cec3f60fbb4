"""Batch mode against the fake server's OpenAI Batch API and Anthropic Message Batches endpoints."""

from __future__ import annotations

import pytest

from slm_datagen.distill import batch as batch_module
from slm_datagen.distill.stage import run_distill
from tests.fake_teacher_server import FakeTeacherServer
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks
from tests.test_distill_engine import MODELS, teacher


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-batch-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-batch-key")
    with FakeTeacherServer(latency=0.0, batch_polls=2) as srv:
        yield srv


# gpt-4o caches prefixes from 1,024 tokens, so its first cacheable request goes alone in a batch first (the primer);
# Haiku 4.5 caches only from 4,096, above these prompts: no primer.
PRIMER = {"openai": 1, "anthropic": 0}


def batch_cfg(server, provider: str, **extra) -> dict:
    return {"mode": "batch", "batch_poll_s": 0.02, "teachers": [teacher(server, provider)], **extra}


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_round_trip_with_repairs_at_half_price(tmp_path, shared_dir, server, provider):
    chunks = statute_chunks(shared_dir / "corpus")[:3] + ruling_chunks(shared_dir / "corpus")[:2]
    server.on_prompt("대상: 세무사", "english", times=2)  # two first replies (two chunks' pairs) need a repair
    ctx = make_ctx(tmp_path, chunks, batch_cfg(server, provider))
    result = run_distill(ctx)
    assert result.complete and result.counts["pairs"] == 10 and result.counts["failures"] == 0
    # (primer +) first round + repair round; both pairs of the two expert-matching requests were repaired
    assert server.stats()["batches_created"] == 2 + PRIMER[provider] and result.stats["repaired"] == 4
    assert {r.method for r in server.generation_requests()} == {"BATCH"}  # nothing went through the online endpoints
    pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert len({p["id"] for p in pairs}) == 10 and [p["chunk_id"] for p in pairs[::2]] == [c.id for c in chunks]
    label = f"{provider}:{MODELS[provider]}"
    spent = result.stats["cost_by_teacher_this_run"][label]
    from slm_datagen.distill.pricing import find_price

    full = find_price(MODELS[provider], provider).cost(spent["input_tokens"], spent["output_tokens"])
    assert spent["cost_usd"] == pytest.approx(full * 0.5, rel=1e-3)
    again = run_distill(ctx)  # one request per chunk, all answered: nothing is sent again
    assert again.counts["cached"] == 5 and server.stats()["batches_created"] == 2 + PRIMER[provider]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_killed_while_polling_resumes_the_same_batch(tmp_path, shared_dir, server, provider, monkeypatch):
    ctx = make_ctx(tmp_path, statute_chunks(shared_dir / "corpus")[:2], batch_cfg(server, provider))

    async def killed(self, rt, batch_id):
        raise KeyboardInterrupt  # the process dies while waiting for the provider

    with monkeypatch.context() as patch:
        patch.setattr(batch_module.BatchRunner, "_wait", killed)
        with pytest.raises(KeyboardInterrupt):
            run_distill(ctx)
    ledger = read_rows(ctx.stage_dir / "ledger.jsonl")
    assert [row.get("phase") for row in ledger] == ["submitting", "submitted"]
    result = run_distill(ctx)
    assert result.complete and result.counts["pairs"] == 4
    assert server.stats()["batches_created"] == 1 + PRIMER[provider]  # picked up, not resubmitted
    assert ledger[1]["batch_id"] in {
        row.get("batch_id") for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row.get("phase") == "collected"
    }


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_killed_before_the_batch_id_was_written_adopts_the_batch(tmp_path, shared_dir, server, provider, monkeypatch):
    ctx = make_ctx(tmp_path, statute_chunks(shared_dir / "corpus")[:2], batch_cfg(server, provider))
    original = batch_module.BatchRunner._submit

    async def submit_then_die(self, rt, entries, token):
        await original(self, rt, entries, token)
        raise KeyboardInterrupt  # the provider has the batch; the ledger does not have its id

    with monkeypatch.context() as patch:
        patch.setattr(batch_module.BatchRunner, "_submit", submit_then_die)
        with pytest.raises(KeyboardInterrupt):
            run_distill(ctx)
    assert [row.get("phase") for row in read_rows(ctx.stage_dir / "ledger.jsonl")] == ["submitting"]
    result = run_distill(ctx)
    assert result.complete and result.counts["pairs"] == 4
    assert server.stats()["batches_created"] == 1 + PRIMER[provider]  # adopted, not resubmitted


def test_batch_errors_are_retried_by_the_next_run(tmp_path, shared_dir, server):
    ctx = make_ctx(
        tmp_path,
        statute_chunks(shared_dir / "corpus")[:1],
        batch_cfg(server, "openai", audiences=["expert"], failure_threshold=1.0),
    )
    server.script("server_error")
    first = run_distill(ctx)
    assert [f["reason"] for f in read_rows(ctx.stage_dir / "failures.jsonl")] == ["batch_error"]
    assert first.counts["pairs"] == 0
    again = run_distill(ctx)
    assert again.counts["pairs"] == 1 and server.stats()["batches_created"] == 2


def _batch_traffic(requests, batch_id: str) -> list[str]:
    """Requests that looked up or downloaded `batch_id`, or listed the provider's batches (the orphan search)."""
    return [
        f"{r.method} {r.path}"
        for r in requests
        if batch_id in r.path or (r.method == "GET" and r.path.rstrip("/").endswith("/batches"))
    ]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_collected_batch_is_never_looked_up_or_collected_again(tmp_path, shared_dir, server, provider):
    statutes = statute_chunks(shared_dir / "corpus")
    assert run_distill(make_ctx(tmp_path, statutes[:1], batch_cfg(server, provider))).counts["pairs"] == 2
    ledger_path = tmp_path / "run" / "distill" / "ledger.jsonl"
    first_id = next(row["batch_id"] for row in read_rows(ledger_path) if row.get("phase") == "collected")
    for n in (2, 3):  # later runs with new work: one new batch each, the old ones left alone
        before = len(server.requests)
        result = run_distill(make_ctx(tmp_path, statutes[:n], batch_cfg(server, provider)))
        assert result.complete and result.counts["pairs"] == 2 * n and result.counts["cached"] == n - 1
        assert server.stats()["batches_created"] == n
        assert _batch_traffic(server.requests[before:], first_id) == []
    rows = read_rows(ledger_path)
    assert [row["phase"] for row in rows if row.get("batch_id") == first_id] == ["submitted", "collected"]
    assert [row["phase"] for row in rows if row["type"] == "batch"] == ["submitting", "submitted", "collected"] * 3


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_submission_the_provider_never_got_is_abandoned_once(tmp_path, shared_dir, server, provider, monkeypatch):
    statutes = statute_chunks(shared_dir / "corpus")
    ctx = make_ctx(tmp_path, statutes[:1], batch_cfg(server, provider))

    async def die_before_sending(self, rt, entries, token):
        raise KeyboardInterrupt  # killed after the `submitting` line, before the provider heard of the batch

    with monkeypatch.context() as patch:
        patch.setattr(batch_module.BatchRunner, "_submit", die_before_sending)
        with pytest.raises(KeyboardInterrupt):
            run_distill(ctx)
    assert run_distill(ctx).counts["pairs"] == 2 and server.stats()["batches_created"] == 1
    phases = [row["phase"] for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == "batch"]
    assert phases == ["submitting", "abandoned", "submitting", "submitted", "collected"]
    before = len(server.requests)
    assert run_distill(make_ctx(tmp_path, statutes[:2], batch_cfg(server, provider))).counts["pairs"] == 4
    assert not [r for r in server.requests[before:] if r.method == "GET" and r.path.rstrip("/").endswith("/batches")]
