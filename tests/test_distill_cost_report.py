"""Issue 16, what the payer sees: the progress bar's dollars, the card's cost per accepted pair and cached share, and
the bench's breakdown of where a request's tokens go."""

from __future__ import annotations

import json
import re

import pytest

from bench.distill_cost import request_parts
from slm_datagen.dataset.card import _teachers_section
from slm_datagen.distill.estimate import Projection, RequestEstimate
from slm_datagen.distill.plan import plan_chunk, request_prompt, shape_for
from slm_datagen.distill.pricing import find_price
from slm_datagen.distill.prompts import calculation_kinds
from slm_datagen.distill.stage import run_distill
from slm_datagen.distill.teachers import anthropic_params, anthropic_reply, openai_body
from slm_forest.config import RunConfig
from tests.fake_prompt_cache import PromptCache
from tests.fake_teacher_server import FakeTeacherServer, default_responder, last_user_text
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks
from tests.test_distill_engine import teacher


def _estimate(central: float) -> RequestEstimate:
    return RequestEstimate(1000, 0, 500, central / 2, central, central * 2)


def test_projection_scales_what_is_left_by_what_the_finished_requests_really_cost():
    projection = Projection({"a": _estimate(0.10), "b": _estimate(0.10), "c": _estimate(0.20)})
    assert projection.label(0.0) == "distill ($0.00 of ~$0.40 projected)"
    projection.finished("a", 0.05)  # half of what was estimated: the rest is projected at half too
    assert projection.total(0.05) == pytest.approx(0.05 + 0.30 * 0.5)
    projection.finished("b", 0.15)  # now 0.20 spent for 0.20 estimated
    assert projection.label(0.20) == "distill ($0.20 of ~$0.40 projected)"
    projection.finished("c", 0.30)
    assert projection.total(0.50) == pytest.approx(0.50)  # nothing left: the projection is what was spent


def test_the_progress_bar_shows_dollars_spent_and_the_projected_total(tmp_path, shared_dir, monkeypatch, capsys):
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-report-key")
    source = statute_chunks(shared_dir / "corpus")[:2] + ruling_chunks(shared_dir / "corpus")[:2]
    with FakeTeacherServer(latency=0.0, prompt_cache=True) as server:
        result = run_distill(make_ctx(tmp_path, source, {"teachers": [teacher(server, model="gpt-4o")]}))
    err = capsys.readouterr().err
    bars = re.findall(r"distill \(\$([\d.,]+) of ~\$([\d.,]+) projected\)", err)
    assert bars, err[-2000:]
    spent, projected = (float(v.replace(",", "")) for v in bars[-1])
    # the last bar: everything was answered, so the projection has become what the ledger says was paid
    assert spent == pytest.approx(result.stats["cost_usd_this_run"], abs=0.005)
    assert projected == pytest.approx(spent, abs=0.005) and spent > 0


def _card_stats() -> dict:
    teachers = {
        "openai/gpt-4o": {
            "accepted": 8,
            "rejected": 1,
            "review": 1,
            "failed": 2,
            "input_tokens": 10_000,
            "cached_input_tokens": 6_000,
            "output_tokens": 4_000,
            "cost_usd": 0.08,
        },
        "anthropic/claude-sonnet-4-5": {
            "accepted": 0,
            "rejected": 2,
            "review": 0,
            "input_tokens": 0,
            "output_tokens": 0,
            "cost_usd": 0.01,
        },
    }
    cost = {"accepted": 0.07, "rejected": 0.01, "review": 0.005, "failed": 0.005, "judge": 0.0, "second_teacher": 0.0}
    return {
        "teachers": teachers,
        "prompt_versions": {"pairs@1": 12},
        "cost_usd": cost | {"total": 0.09},
        "failures_file": "failures.jsonl",
        "failed_requests": 2,
        "build_info": {},
    }


def test_the_card_reports_dollars_per_accepted_pair_and_the_cached_share_per_teacher():
    text = "\n".join(_teachers_section(_card_stats()))
    header = next(line for line in text.splitlines() if line.startswith("| teacher/model"))
    columns = [c.strip() for c in header.strip("|").split("|")]
    assert columns[-2:] == ["$ per accepted pair", "input from cache"]
    row = next(line for line in text.splitlines() if line.startswith("| openai/gpt-4o"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # every dollar the teacher was paid (rejected, review and failed pairs too) over the pairs that made it in
    assert cells[-2] == "$0.010000" and cells[-1] == "60%"
    none = next(line for line in text.splitlines() if line.startswith("| anthropic/claude-sonnet-4-5"))
    assert [c.strip() for c in none.strip("|").split("|")][-2:] == ["-", "-"]  # no accepted pair, no input


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_the_bench_breakdown_counts_every_part_of_a_request_once(shared_dir, provider):
    chunk = statute_chunks(shared_dir / "corpus")[0]
    model = {"openai": "gpt-4o", "anthropic": "claude-sonnet-4-5"}[provider]
    cfg = RunConfig.model_validate({"distill": {"teachers": [{"provider": provider, "model": model}]}})
    teacher_cfg = cfg.distill.teachers[0]
    (planned,) = plan_chunk(chunk, 0, cfg.distill)
    prompt = request_prompt(chunk, teacher_cfg, planned, cfg.distill)
    shape = shape_for(teacher_cfg, planned)
    if provider == "openai":
        body = openai_body(teacher_cfg, prompt.as_list(), schema=shape.schema, schema_name=shape.schema_name)
    else:
        body = anthropic_params(
            teacher_cfg, prompt.as_list(), schema=shape.schema, schema_name=shape.schema_name, cache=True
        )
    parts = request_parts(body, provider)
    assert parts["schema"] > 100 and parts["system"] > 100 and parts["repair"] == 0
    assert parts["source"] >= len(chunk.text.strip()) * 0.8  # the article's Hangul, one token a character
    assert parts["instructions"] > 0 and (parts["calc rules"] > 0) == bool(prompt.kinds)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_repair_shows_only_the_bad_pairs_of_the_reply(tmp_path, shared_dir, monkeypatch, provider):
    """Every token of the bad reply shown again is paid again, uncached: the good pairs are not shown."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-report-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-report-key")
    bodies: list[dict] = []

    def responder(req, provider_name):
        bodies.append(req)
        reply = default_responder(req, provider_name)
        if "방금 답변에서" not in last_user_text(req):
            reply["pairs"][1]["answer"] = "This answer is in English, which the checks refuse."
        return reply

    source = statute_chunks(shared_dir / "corpus")[:1]
    with FakeTeacherServer(latency=0.0, responder=responder) as server:
        ctx = make_ctx(tmp_path, source, {"teachers": [teacher(server, provider)], "styles": ["explain"]})
        result = run_distill(ctx)
    assert result.counts["pairs"] == 2 and result.stats["repaired"] == 1
    repair = next(req for req in bodies if "방금 답변에서" in last_user_text(req))
    shown = [m for m in repair["messages"] if m["role"] == "assistant"]
    assert len(shown) == 1
    content = shown[0]["content"]
    text = content if isinstance(content, str) else "".join(block["text"] for block in content)
    assert [item["id"] for item in json.loads(text)["pairs"]] == ["p2"]
    assert "English" in text


def test_batch_mode_primes_the_cache_with_one_request_before_the_rest(tmp_path, shared_dir, monkeypatch):
    """A batch's requests run concurrently: the first cacheable one goes alone, so the rest can read its prefix."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-report-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-report-key")
    source = statute_chunks(shared_dir / "corpus")[:2] + ruling_chunks(shared_dir / "corpus")[:3]
    with FakeTeacherServer(latency=0.0, prompt_cache=True, batch_polls=1) as server:
        teachers = [teacher(server, model="gpt-4o"), teacher(server, "anthropic", model="claude-sonnet-4-5")]
        ctx = make_ctx(tmp_path, source, {"mode": "batch", "batch_poll_s": 0.02, "teachers": teachers})
        result = run_distill(ctx)
        lines = server.generation_requests()
    assert result.complete and result.counts["pairs"] == 20
    for provider in ("openai", "anthropic"):
        sizes: dict[str, int] = {}
        for record in sorted((r for r in lines if r.provider == provider), key=lambda r: r.seq):
            sizes[record.batch_id] = sizes.get(record.batch_id, 0) + 1
        assert list(sizes.values()) == [1, 4], (provider, sizes)
    done = [row for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == "done"]
    for label in ("openai", "anthropic"):
        rows = [row for row in done if row["teacher"] == label]
        assert sum(row["usage"]["cached_input_tokens"] > 0 for row in rows) == 4  # all but the primer read it


def test_batch_mode_asks_anthropic_for_the_1_hour_cache_and_pays_its_writes_at_twice_the_input_price(
    tmp_path, shared_dir, monkeypatch
):
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-report-key")
    bodies: list[dict] = []
    source = statute_chunks(shared_dir / "corpus")[:2] + ruling_chunks(shared_dir / "corpus")[:2]
    with FakeTeacherServer(latency=0.0, prompt_cache=True, batch_polls=1) as server:
        server.when(lambda req, provider: bodies.append(req) or False, "ok")
        distill = {"mode": "batch", "batch_poll_s": 0.02}
        distill["teachers"] = [teacher(server, "anthropic", model="claude-sonnet-4-5")]
        ctx = make_ctx(tmp_path, source, distill)
        run_distill(ctx)
    assert bodies and all(req["system"][-1]["cache_control"] == {"type": "ephemeral", "ttl": "1h"} for req in bodies)
    done = [row for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == "done"]
    written = [row for row in done if row["usage"]["cache_write_tokens"]]
    assert written and all(r["usage"]["cache_write_1h_tokens"] == r["usage"]["cache_write_tokens"] for r in written)
    price = find_price("claude-sonnet-4-5", "anthropic")
    for row in done:
        u = row["usage"]
        expected = price.cost(
            u["input_tokens"],
            u["output_tokens"],
            batch=True,
            cached_tokens=u["cached_input_tokens"],
            cache_write_tokens=u["cache_write_tokens"],
            cache_write_1h_tokens=u.get("cache_write_1h_tokens", 0),
        )
        assert u["cost_usd"] == pytest.approx(expected, rel=1e-6)
    # $3 input: a 1-hour write is $6 per million (5-minute: $3.75), both halved in a batch
    assert price.cost(1000, 0, cache_write_tokens=1000, cache_write_1h_tokens=1000) == pytest.approx(0.006)
    assert price.cost(1000, 0, batch=True, cache_write_tokens=1000) == pytest.approx(0.001875)


def test_the_1_hour_share_of_cache_writes_comes_from_the_reply_when_it_has_it():
    usage = {
        "input_tokens": 10,
        "output_tokens": 5,
        "cache_read_input_tokens": 0,
        "cache_creation_input_tokens": 300,
        "cache_creation": {"ephemeral_5m_input_tokens": 100, "ephemeral_1h_input_tokens": 200},
    }
    message = {"content": [{"type": "text", "text": "답"}], "stop_reason": "end_turn", "usage": usage}
    assert anthropic_reply(message).cache_write_1h_tokens == 200
    assert anthropic_reply(message, cache_ttl="1h").cache_write_1h_tokens == 200  # the reply's own split wins
    usage.pop("cache_creation")
    assert anthropic_reply(message).cache_write_1h_tokens == 0
    assert anthropic_reply(message, cache_ttl="1h").cache_write_1h_tokens == 300  # all we asked for was 1 hour


def test_the_fake_cache_can_run_a_batch_as_if_its_requests_ran_at_once():
    cache = PromptCache()
    long_system = [{"type": "text", "text": "가" * 1100, "cache_control": {"type": "ephemeral"}}]
    req = {"model": "claude-sonnet-4-5", "system": long_system, "messages": [{"role": "user", "content": "질문"}]}
    with cache.concurrent():
        first, second = cache.anthropic(req), cache.anthropic(req)
    assert first[1:] == second[1:] == (0, 1100)  # both missed and both paid the write
    assert cache.anthropic(req)[1:] == (1100, 0)  # after the batch, its writes are there to read
    sequential = PromptCache()
    assert sequential.anthropic(req)[1:] == (0, 1100) and sequential.anthropic(req)[1:] == (1100, 0)


def test_batch_primers_cover_every_shared_prefix_so_the_concurrent_batch_writes_none(tmp_path, shared_dir, monkeypatch):
    """Chunks of different calculation kinds have different cacheable prefixes: one primer each. With the batch's
    lines run as if all at once, only the primers write the cache; every other request reads."""
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-report-key")
    statutes, rulings = statute_chunks(shared_dir / "corpus"), ruling_chunks(shared_dir / "corpus")
    source = statutes[:3] + statutes[12:13] + statutes[18:19] + rulings[:2] + rulings[59:61]
    kinds = {calculation_kinds(c) for c in source}
    assert len(kinds) >= 3  # no calculation, and at least two sets of kinds
    with FakeTeacherServer(latency=0.0, prompt_cache=True, batch_polls=1) as server:
        original = server._anthropic_batch_end

        def concurrent_end(batch_id):
            with server.prompt_cache.concurrent():
                original(batch_id)

        server._anthropic_batch_end = concurrent_end
        distill = {"mode": "batch", "batch_poll_s": 0.02, "styles": ["explain", "calculation"]}
        distill["teachers"] = [teacher(server, "anthropic", model="claude-sonnet-4-5")]
        ctx = make_ctx(tmp_path, source, distill)
        result = run_distill(ctx)
        lines = sorted(server.generation_requests(), key=lambda r: r.seq)
    assert result.complete
    first_batch = {r.custom_id for r in lines if r.batch_id == lines[0].batch_id}
    assert len(first_batch) == len(kinds)
    done = [row for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == "done"]
    rest = [row for row in done if row["key"] not in first_batch]
    assert rest and all(row["usage"]["cache_write_tokens"] == 0 for row in rest)
    assert all(row["usage"]["cached_input_tokens"] > 0 for row in rest)


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_a_multi_pair_reply_cut_at_the_token_limit_loses_no_pair(tmp_path, shared_dir, monkeypatch, provider):
    """OpenAI returns the cut text (complete pairs in it are kept); Anthropic a tool call without input (every pair
    is asked again). Either way each pair ends up accepted exactly once, after one repair request."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-report-key")
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-anthropic-report-key")
    source = statute_chunks(shared_dir / "corpus")[:2]
    with FakeTeacherServer(latency=0.0) as server:
        server.when(lambda req, p: "방금 답변에서" not in last_user_text(req), "truncated", times=1)
        ctx = make_ctx(tmp_path, source, {"teachers": [teacher(server, provider)], "styles": ["explain"]})
        result = run_distill(ctx)
        sent = len(server.generation_requests())
    pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert result.complete and len(pairs) == 4 and result.counts["failures"] == 0
    assert len({(p["chunk_id"], p["audience"]) for p in pairs}) == 4 and sent == 3  # 2 requests + 1 repair
    attempt = next(row for row in read_rows(ctx.stage_dir / "ledger.jsonl") if row["type"] == "attempt")
    reasons = [item.get("reason") for item in attempt["items"]]  # None: a complete pair kept from the cut reply
    assert "truncated" in reasons and set(reasons) <= {"truncated", None}
    if provider == "anthropic":
        assert reasons == ["truncated", "truncated"]


def test_openai_requests_that_share_a_cacheable_prefix_share_their_prompt_cache_key(tmp_path, shared_dir, monkeypatch):
    """OpenAI routes by the first ~256 tokens and the key: a key per chunk would send every chunk to machines that
    never saw the system prompt; one key per shared prefix (system prompt + the calculation rules of the kinds)."""
    monkeypatch.setenv("OPENAI_API_KEY", "test-openai-report-key")
    statutes, rulings = statute_chunks(shared_dir / "corpus"), ruling_chunks(shared_dir / "corpus")
    source = statutes[:2] + statutes[2:3] + statutes[12:13]  # no calculation, no calculation, income_tax, income_tax
    assert [calculation_kinds(c) for c in source] == [(), (), ("income_tax",), ("income_tax",)]
    bodies: list[dict] = []
    with FakeTeacherServer(latency=0.0) as server:
        server.when(lambda req, provider: bodies.append(req) or False, "ok")
        distill = {"teachers": [teacher(server, model="gpt-4o")], "styles": ["explain", "calculation"]}
        run_distill(make_ctx(tmp_path, source, distill))
        key_of = {  # chunk -> the key of its request (requests run concurrently: matched by the source they carry)
            c.id: next(r["prompt_cache_key"] for r in bodies if c.text.strip()[:80] in r["messages"][-2]["content"])
            for c in source
        }
        keys = [key_of[c.id] for c in source]
        assert keys[0] == keys[1] != keys[2] == keys[3]
        bodies.clear()
        run_distill(make_ctx(tmp_path / "single", source[:2] + rulings[:1], {**distill, "pairs_per_request": 1}))
    single = {req["prompt_cache_key"] for req in bodies}
    assert len(single) == 3  # one request per pair: a chunk's requests share system prompt and source
