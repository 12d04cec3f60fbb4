"""Issue 16: several pairs per request, provider prompt caching and its prices, estimates, through the real SDKs."""

from __future__ import annotations

import json
import re

import pytest

from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.plan import request_key, request_params
from slm_datagen.distill.pricing import find_price
from slm_datagen.distill.prompts import build_messages
from slm_datagen.distill.stage import run_distill
from tests.fake_teacher_server import FakeTeacherServer, Reply, default_responder, last_user_text, prompt_text
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks
from tests.test_distill_engine import MODELS, teacher

CACHE_MODELS = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}  # Haiku 4.5 caches only from 4,096 tokens


@pytest.fixture
def server(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-cost-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-cost-key")
    with FakeTeacherServer(latency=0.0, prompt_cache=True) as srv:
        yield srv


def chunks(shared_dir, statutes: int = 2, rulings: int = 2):
    return statute_chunks(shared_dir / "corpus")[:statutes] + ruling_chunks(shared_dir / "corpus")[:rulings]


def pairs_and_failures(ctx):
    return read_rows(ctx.stage_dir / "qa_pairs.jsonl"), read_rows(ctx.stage_dir / "failures.jsonl")


def ledger_rows(ctx, kind: str = "done"):
    return [row for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == kind]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_all_pairs_of_a_chunk_in_one_structured_reply(tmp_path, shared_dir, server, provider):
    distill = {"teachers": [teacher(server, provider)], "styles": ["explain"]}
    ctx = make_ctx(tmp_path, chunks(shared_dir), distill)
    result = run_distill(ctx)
    pairs, failures = pairs_and_failures(ctx)
    assert result.complete and len(pairs) == 8 and failures == []
    assert len(server.generation_requests()) == 4  # one request per chunk instead of one per pair
    assert {(p["chunk_id"], p["audience"], p["style"]) for p in pairs} == {
        (c.id, a, "explain") for c in chunks(shared_dir) for a in ("expert", "layperson")
    }
    assert len({p["id"] for p in pairs}) == 8 and len({p["request_key"] for p in pairs}) == 4
    body = server.generation_requests()[0]
    assert body.status == 200
    # each pair carries its own share of the request's usage; the shares add up to what was paid
    done = ledger_rows(ctx)
    assert sum(p["usage"]["cost_usd"] for p in pairs) == pytest.approx(sum(r["usage"]["cost_usd"] for r in done))
    assert sum(p["usage"]["input_tokens"] for p in pairs) == sum(r["usage"]["input_tokens"] for r in done)


def _one_bad_pair(bad: dict):
    """A responder that spoils pair p2 of every first reply (the repair, which lists only p2, gets a good one)."""

    def responder(req, provider):
        reply = default_responder(req, provider)
        if "방금 답변에서" in last_user_text(req):
            return reply
        for item in reply["pairs"]:
            if item["id"] == "p2":
                item.update(bad)
        return reply

    return responder


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_one_bad_pair_is_repaired_alone_and_the_others_are_kept(tmp_path, shared_dir, server, provider):
    server.responder = _one_bad_pair({"answer": "This answer is in English, which the checks refuse."})
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 1), {"teachers": [teacher(server, provider)]})
    result = run_distill(ctx)
    pairs, failures = pairs_and_failures(ctx)
    assert len(pairs) == 4 and failures == [] and result.stats["repaired"] == 2
    requests = server.generation_requests()
    assert len(requests) == 4 and sum(r.request_key.endswith(":repair") for r in requests) == 2
    attempt = ledger_rows(ctx, "attempt")[0]
    assert [item["status"] for item in attempt["items"]] == ["ok", "failed"]  # the good first pair was kept
    assert attempt["items"][1]["reason"] == "not_korean"


def test_a_pair_still_bad_after_the_repair_fails_on_its_own(tmp_path, shared_dir, server):
    server.responder = _one_bad_pair({"question": ""})
    spoil_repairs = lambda req, provider: "방금 답변에서" in last_user_text(req)  # noqa: E731
    server.when(spoil_repairs, Reply("ok", content={"pairs": [{"id": "p2", "question": "", "answer": "답"}]}))
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), {"teachers": [teacher(server)], "failure_threshold": 1.0})
    run_distill(ctx)
    pairs, failures = pairs_and_failures(ctx)
    assert [p["audience"] for p in pairs] == ["expert"]
    assert [(f["audience"], f["style"], f["reason"]) for f in failures] == [("layperson", "explain", "schema")]
    assert "after one repair" in failures[0]["detail"]
    (done,) = ledger_rows(ctx)
    assert done["status"] == "partial" and len(server.generation_requests()) == 2


def test_a_truncated_array_keeps_its_complete_pairs(tmp_path, shared_dir, server):
    def cut_after_first_pair(req, provider):
        full = json.dumps(default_responder(req, provider), ensure_ascii=False)
        if "방금 답변에서" in last_user_text(req):
            return full
        cut = full[: full.index('{"id": "p2"') + 30]  # p1 complete, p2 cut mid-string
        # the fake's `truncated` variant sends the first half of the content with finish_reason "length"
        return Reply("truncated", content=cut + " " * len(cut))

    server.responder = cut_after_first_pair
    server.enforce_max_tokens = False
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), {"teachers": [teacher(server)]})
    run_distill(ctx)
    attempt = ledger_rows(ctx, "attempt")[0]
    assert [i["status"] for i in attempt["items"]] == ["ok", "failed"] and attempt["items"][1]["reason"] == "truncated"
    pairs, failures = pairs_and_failures(ctx)
    assert len(pairs) == 2 and failures == []  # p1 from the cut reply, p2 from the repair


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_cached_input_is_reported_priced_and_budgeted_as_the_provider_bills_it(tmp_path, shared_dir, server, provider):
    model = CACHE_MODELS[provider]
    distill = {"teachers": [teacher(server, provider, model=model, max_concurrency=4)]}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 3, 5), distill)
    result = run_distill(ctx)
    done = ledger_rows(ctx)
    usage = [row["usage"] for row in done]
    assert sum(u["cached_input_tokens"] for u in usage) > 0.5 * sum(u["input_tokens"] for u in usage)
    if provider == "anthropic":
        assert sum(u["cache_write_tokens"] for u in usage) > 0  # the first request wrote the shared prefix
    price = find_price(model, provider)
    for u in usage:  # the cost recorded is computed from the cache fields at their own prices
        expected = price.cost(
            u["input_tokens"],
            u["output_tokens"],
            cached_tokens=u["cached_input_tokens"],
            cache_write_tokens=u["cache_write_tokens"],
        )
        assert u["cost_usd"] == pytest.approx(expected, rel=1e-6)
    uncached = sum(price.cost(u["input_tokens"], u["output_tokens"]) for u in usage)
    assert result.stats["cost_usd_this_run"] == pytest.approx(sum(u["cost_usd"] for u in usage), abs=2e-6)
    assert result.stats["cost_usd_this_run"] < uncached
    with Ledger(ctx.stage_dir / "ledger.jsonl", readonly=True) as ledger:
        assert ledger.index.spent_usd == pytest.approx(result.stats["cost_usd_this_run"], abs=2e-6)
    # the cache warm-up: only the first request missed the shared prefix, the concurrent ones after it read it
    misses = [u for u in usage if u["cached_input_tokens"] == 0]
    assert len(misses) == 1


def test_anthropic_requests_mark_the_cacheable_prefix_and_openai_gets_a_cache_key(tmp_path, shared_dir, server):
    bodies: list[tuple[str, dict]] = []
    server.when(lambda req, provider: bodies.append((provider, req)) or False, "ok")
    distill = {"teachers": [teacher(server, "anthropic", model="claude-sonnet-4-5"), teacher(server)]}
    run_distill(make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill))
    anthropic = next(req for provider, req in bodies if provider == "anthropic")
    assert anthropic["system"][-1]["cache_control"] == {"type": "ephemeral"}
    assert anthropic["tools"][0]["name"] == "tax_qa_pairs"  # tools come first: they are in the cached prefix
    openai_req = next(req for provider, req in bodies if provider == "openai")
    assert openai_req["prompt_cache_key"].startswith("slm-")
    assert all(set(m) == {"role", "content"} for m in openai_req["messages"])  # our cache marker is not sent
    assert openai_req["max_completion_tokens"] == 2 * 1500  # max_tokens is per pair


def test_pairs_per_request_1_is_todays_request_and_an_old_ledger_still_answers(tmp_path, shared_dir, server):
    source = chunks(shared_dir, 2, 1)
    single = {"teachers": [teacher(server)], "pairs_per_request": 1}
    ctx = make_ctx(tmp_path, source, single)
    run_distill(ctx)
    cfg = ctx.cfg.distill.teachers[0]
    todays = {  # the key of each request as it was computed before several pairs per request existed
        request_key(cfg, p.version, p.messages, request_params(cfg))
        for c in source
        for p in (build_messages(c, a, "explain") for a in ("expert", "layperson"))
    }
    assert {row["key"] for row in ledger_rows(ctx)} == todays
    assert {r.request_key for r in server.generation_requests()} == todays
    sent = len(server.generation_requests())
    # the default (both audiences in one request) finds every pair already answered: nothing is sent again
    default = make_ctx(tmp_path, source, {"teachers": [teacher(server)]})
    result = run_distill(default)
    assert len(server.generation_requests()) == sent and result.counts["pairs"] == 6
    assert result.counts["cached"] == 6


def test_changing_pairs_per_request_asks_only_the_pairs_never_answered(tmp_path, shared_dir, server):
    source = chunks(shared_dir, 3, 0)
    prompts: list[str] = []
    server.when(lambda req, provider: prompts.append(prompt_text(req, provider)) or False, "ok")
    run_distill(make_ctx(tmp_path, source[:2], {"teachers": [teacher(server)], "pairs_per_request": 1}))
    assert len(prompts) == 4
    result = run_distill(make_ctx(tmp_path, source, {"teachers": [teacher(server)]}))
    assert len(prompts) == 5 and source[2].citation in prompts[4]  # only the new chunk, both audiences at once
    assert "[p2]" in prompts[4] and not any(c.citation in prompts[4] for c in source[:2])
    assert result.counts["pairs"] == 6 and result.counts["requests"] == 5  # 4 old single requests + 1 new
    again = run_distill(make_ctx(tmp_path, source, {"teachers": [teacher(server)], "pairs_per_request": 2}))
    assert len(server.generation_requests()) == 5 and again.counts["pairs"] == 6


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_batch_mode_with_several_pairs_per_request_at_the_batch_price(tmp_path, shared_dir, server, provider):
    distill = {"mode": "batch", "batch_poll_s": 0.02, "teachers": [teacher(server, provider)]}
    server.responder = _one_bad_pair({"answer": "English only, please repair me."})
    ctx = make_ctx(tmp_path, chunks(shared_dir, 2, 1), distill)
    result = run_distill(ctx)
    pairs, failures = pairs_and_failures(ctx)
    assert result.complete and len(pairs) == 6 and failures == [] and result.stats["repaired"] == 3
    primer = 1 if provider == "openai" else 0  # gpt-4o's prefix is cacheable: its first request goes alone first
    assert server.stats()["batches_created"] == 2 + primer
    assert {r.method for r in server.generation_requests()} == {"BATCH"}
    price = find_price(MODELS[provider], provider)
    for row in ledger_rows(ctx):
        u = row["usage"]
        full = price.cost(
            u["input_tokens"],
            u["output_tokens"],
            cached_tokens=u["cached_input_tokens"],
            cache_write_tokens=u["cache_write_tokens"],
        )
        assert u["cost_usd"] == pytest.approx(full * 0.5, rel=1e-6) and row["batch"]


def test_dry_run_after_a_trial_uses_what_the_trial_measured(tmp_path, shared_dir, server, capsys):
    source = chunks(shared_dir, 6, 14)
    distill = {"teachers": [teacher(server, model="gpt-4o", max_concurrency=4)]}
    before = run_distill(make_ctx(tmp_path, source, distill, dry_run=True))
    assert before.stats["estimate"]["openai:gpt-4o"]["basis"].startswith("assumed")
    run_distill(make_ctx(tmp_path, source, distill, limit=8))  # the trial
    after = run_distill(make_ctx(tmp_path, source, distill, dry_run=True))
    est = after.stats["estimate"]["openai:gpt-4o"]
    assert est["requests"] == 12 and est["cached"] == 8
    share = re.fullmatch(r"measured on 8 requests \(input served from cache: (\d+)%\)", est["basis"])
    rows = ledger_rows(make_ctx(tmp_path, source, distill))
    assert share and int(share.group(1)) == round(  # what the trial's replies said came from the cache
        100 * sum(r["usage"]["cached_input_tokens"] for r in rows) / sum(r["usage"]["input_tokens"] for r in rows)
    )
    assert est["low_usd"] < est["cost_usd"] < est["high_usd"]
    assert est["high_usd"] - est["low_usd"] < before.stats["estimate"]["openai:gpt-4o"]["high_usd"] * 12 / 20
    full = run_distill(make_ctx(tmp_path, source, distill))
    spent = full.stats["cost_usd_this_run"]
    assert abs(est["cost_usd"] - spent) / spent < 0.15  # the projection for the rest held
    assert "cacheable" in capsys.readouterr().err
