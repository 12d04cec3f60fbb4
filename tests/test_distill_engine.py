"""The teacher stage against the fake OpenAI/Anthropic server, through the real SDKs (only base_url differs)."""

from __future__ import annotations

import json
import time

import pytest

from slm_datagen.distill.stage import run_distill
from slm_forest.errors import SlmError
from slm_forest.records import DistillFailure, QAPair
from tests.fake_teacher_server import FakeTeacherServer, Reply, prompt_text
from tests.test_distill_common import make_ctx, read_rows, ruling_chunks, statute_chunks

OPENAI_KEY = "test-openai-distill-key"
ANTHROPIC_KEY = "test-anthropic-distill-key"
AUDIENCES = ("expert", "layperson")
MODELS = {"openai": "gpt-4o", "anthropic": "claude-haiku-4-5", "openai_compatible": "qwen2.5-7b-instruct"}


@pytest.fixture
def server():
    with FakeTeacherServer(latency=0.0, retry_after=0.1) as srv:
        yield srv


@pytest.fixture
def keys(monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)


def teacher(server, provider: str = "openai", **extra) -> dict:
    base = server.anthropic_base_url if provider == "anthropic" else server.openai_base_url
    return {
        "provider": provider,
        "model": MODELS[provider],
        "base_url": base,
        "max_retries": 3,
        "timeout_s": 10,
        **extra,
    }


def chunks(shared_dir, statutes: int = 2, rulings: int = 2):
    return statute_chunks(shared_dir / "corpus")[:statutes] + ruling_chunks(shared_dir / "corpus")[:rulings]


def sent_keys(server, status: int | None = None) -> list[str]:
    return [r.request_key for r in server.generation_requests() if status is None or r.status == status]


@pytest.mark.parametrize("pairs_per_request, n_requests", [(None, 4), (1, 8)])
@pytest.mark.parametrize("provider", ["openai", "anthropic", "openai_compatible"])
def test_round_trip_writes_pairs_with_usage_and_cost(
    tmp_path, shared_dir, server, keys, provider, pairs_per_request, n_requests
):
    distill = {"teachers": [teacher(server, provider)], "pairs_per_request": pairs_per_request}
    ctx = make_ctx(tmp_path, chunks(shared_dir), distill)
    result = run_distill(ctx)
    assert result.complete and result.counts["pairs"] == 8 and result.counts["failures"] == 0
    pairs = [QAPair.model_validate(r) for r in read_rows(ctx.stage_dir / "qa_pairs.jsonl")]
    assert len({p.id for p in pairs}) == 8 and {p.teacher for p in pairs} == {provider}
    assert all(p.usage.input_tokens > 0 and p.usage.output_tokens > 0 for p in pairs)
    label = f"{provider}:{MODELS[provider]}"
    if provider != "openai_compatible":  # a self-hosted server is free unless priced in the config
        assert all(p.usage.cost_usd > 0 for p in pairs)
        assert result.stats["cost_by_teacher_this_run"][label]["cost_usd"] == pytest.approx(
            sum(p.usage.cost_usd for p in pairs),
            abs=1e-6,  # the stats are rounded to 6 decimals
        )
    assert len(server.generation_requests()) == n_requests and not server.duplicate_keys()
    assert {(p.chunk_id, p.audience) for p in pairs} == {(c.id, a) for c in chunks(shared_dir) for a in AUDIENCES}
    # the second run is served from the ledger: nothing is sent, the file is identical
    before = (ctx.stage_dir / "qa_pairs.jsonl").read_bytes()
    again = run_distill(ctx)
    assert again.counts["cached"] == n_requests and len(server.generation_requests()) == n_requests
    assert (ctx.stage_dir / "qa_pairs.jsonl").read_bytes() == before


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
@pytest.mark.parametrize(
    "variant, reason",
    [("english", "not_korean"), ("empty", "empty"), ("truncated", "truncated"), ("malformed", "schema")],
)
def test_bad_reply_is_repaired_once_then_recorded(tmp_path, shared_dir, server, keys, provider, variant, reason):
    distill = {"teachers": [teacher(server, provider)], "audiences": ["expert"], "failure_threshold": 1.0}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    server.script(variant, variant)
    result = run_distill(ctx)
    requests = server.generation_requests()
    assert len(requests) == 2 and requests[1].request_key == requests[0].request_key + ":repair"
    failures = [DistillFailure.model_validate(r) for r in read_rows(ctx.stage_dir / "failures.jsonl")]
    assert [f.reason for f in failures] == [reason] and "after one repair" in failures[0].detail
    assert failures[0].usage.input_tokens > 0  # both paid attempts are accounted
    assert result.counts["pairs"] == 0 and result.counts["failures"] == 1
    assert run_distill(ctx).counts["cached"] == 1 and len(server.generation_requests()) == 2  # never paid again


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_repair_instruction_fixes_the_reply(tmp_path, shared_dir, server, keys, provider):
    distill = {"teachers": [teacher(server, provider)], "audiences": ["expert"]}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    server.script("english", "ok")
    result = run_distill(ctx)
    assert result.counts["pairs"] == 1 and result.stats["repaired"] == 1
    repair = json.loads(json.dumps(server.generation_requests()[1].as_dict()))
    assert repair["request_key"].endswith(":repair")
    pair = QAPair.model_validate(read_rows(ctx.stage_dir / "qa_pairs.jsonl")[0])
    ledger = read_rows(ctx.stage_dir / "ledger.jsonl")
    assert [row["type"] for row in ledger] == ["attempt", "done"]
    assert pair.usage.input_tokens == ledger[0]["usage"]["input_tokens"] + (
        ledger[1]["usage"]["input_tokens"] - ledger[0]["usage"]["input_tokens"]
    )
    assert ledger[1]["usage"]["cost_usd"] > ledger[0]["usage"]["cost_usd"] > 0


def test_repair_prompt_names_the_problem(tmp_path, shared_dir, server, keys):
    seen: list[str] = []
    server.when(lambda req, provider: seen.append(prompt_text(req, provider)) or False, "ok")
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), {"teachers": [teacher(server)], "audiences": ["expert"]})
    server.script("truncated")
    run_distill(ctx)
    assert len(seen) == 1 and "길이 제한으로 잘렸습니다" in seen[0]  # the scripted first reply skips the rules


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
def test_429_waits_for_retry_after(tmp_path, shared_dir, server, keys, provider):
    ctx = make_ctx(
        tmp_path, chunks(shared_dir, 1, 0), {"teachers": [teacher(server, provider)], "audiences": ["expert"]}
    )
    server.script(Reply("rate_limit", retry_after=0.6))
    result = run_distill(ctx)
    first, second = server.generation_requests()
    assert first.status == 429 and second.status == 200
    assert second.started - first.finished >= 0.6
    assert result.counts["pairs"] == 1 and result.stats["rate_limited"] == 1


def test_server_errors_and_hangs_are_retried(tmp_path, shared_dir, server, keys):
    # Margins for a loaded 2-core machine: a normal reply has 3 s (it needs milliseconds), the hang lasts 60 s, and
    # the run (three backoffs of at most 0.5 + 1 + 2 s, one 3 s timeout) must end far below the hang.
    distill = {"teachers": [teacher(server, timeout_s=3)], "audiences": ["expert"]}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    server.hang_seconds = 60
    server.script("server_error", "overloaded", "hang")
    started = time.monotonic()
    result = run_distill(ctx)
    elapsed = time.monotonic() - started
    assert result.counts["pairs"] == 1 and result.stats["http_retries"] == 3
    assert elapsed < 40  # the hang was cut by the per-request timeout, not waited out
    requests = server.generation_requests()
    # the third was never answered (still hanging, or dropped) while the fourth was: the client gave up on it
    statuses = [r.status for r in requests]
    assert statuses[:2] == [500, 503] and statuses[2] in (None, 0) and statuses[3:] == [200]


def test_exhausted_retries_are_reported_and_retried_next_run(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [teacher(server, max_retries=1)], "audiences": ["expert"], "failure_threshold": 1.0}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    server.script("server_error", "server_error")
    result = run_distill(ctx)
    failures = read_rows(ctx.stage_dir / "failures.jsonl")
    assert [f["reason"] for f in failures] == ["http_error"] and result.counts["pairs"] == 0
    again = run_distill(ctx)  # not completed, so the next run asks again (and the server now answers)
    assert again.counts["pairs"] == 1 and again.counts["failures"] == 0


def test_failure_share_above_threshold_fails_the_stage(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [teacher(server)], "failure_threshold": 0.4, "pairs_per_request": 1}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    server.on_prompt("대상: 세무사", "empty")  # the expert request fails twice; layperson is fine: 1 of 2 = 50% > 40%
    with pytest.raises(SlmError, match=r"1 of 2 pairs failed .*empty 1") as info:
        run_distill(ctx)
    assert "failure_threshold" in info.value.hint
    assert len(read_rows(ctx.stage_dir / "failures.jsonl")) == 1  # written before failing, for reading


def test_missing_key_names_the_variable_and_dry_run_needs_none(tmp_path, shared_dir, server, capsys):
    ctx = make_ctx(tmp_path, chunks(shared_dir), {"teachers": [teacher(server, "anthropic")]})
    with pytest.raises(SlmError, match="ANTHROPIC_API_KEY") as info:
        run_distill(ctx)
    assert "export ANTHROPIC_API_KEY" in info.value.hint
    custom = make_ctx(tmp_path / "b", chunks(shared_dir), {"teachers": [teacher(server, api_key_env="MY_TEACHER_KEY")]})
    with pytest.raises(SlmError, match="MY_TEACHER_KEY"):
        run_distill(custom)
    assert server.generation_requests() == []


def test_dry_run_prices_the_plan_and_sends_nothing(tmp_path, shared_dir, server, capsys):
    long_model = "qwen2.5-72b-instruct-awq-served-by-the-lab-vllm-cluster"
    distill = {
        "teachers": [
            teacher(server),
            teacher(server, "anthropic"),
            dict(teacher(server, "openai_compatible"), model=long_model),
        ]
    }
    ctx = make_ctx(tmp_path, chunks(shared_dir), distill, dry_run=True)
    result = run_distill(ctx)
    assert not result.complete and result.outputs == [] and server.stats()["requests"] == 0
    estimate = result.stats["estimate"]
    assert estimate["openai:gpt-4o"]["requests"] == 4 and estimate["anthropic:claude-haiku-4-5"]["requests"] == 4
    assert estimate["openai:gpt-4o"]["pairs"] == 8
    low, high = estimate["openai:gpt-4o"]["low_usd"], estimate["openai:gpt-4o"]["high_usd"]
    assert low < estimate["openai:gpt-4o"]["cost_usd"] < high
    assert estimate["openai:gpt-4o"]["cost_usd"] > estimate["anthropic:claude-haiku-4-5"]["cost_usd"] > 0
    assert "nothing was sent" in result.summary and "$" in result.summary
    assert not (ctx.stage_dir / "qa_pairs.jsonl").exists()
    assert list(ctx.stage_dir.iterdir()) == []  # not even an empty ledger.jsonl: "nothing was written"
    err = capsys.readouterr().err  # not a terminal here: every teacher name printed whole
    for label in ("openai:gpt-4o", "anthropic:claude-haiku-4-5", f"openai_compatible:{long_model}"):
        assert any(line.split("\t")[0] == label for line in err.splitlines()), err


def test_budget_stops_cleanly_and_resumes(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [teacher(server, max_concurrency=2)], "max_cost_usd": 0.02, "pairs_per_request": 1}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 4, 4), distill)
    result = run_distill(ctx)
    assert not result.complete and result.counts["not_sent"] > 0
    assert 0 < result.stats["cost_usd_this_run"] <= 0.02
    first_pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert first_pairs and len(first_pairs) + result.counts["not_sent"] == 16
    ctx.cfg.distill.max_cost_usd = None
    resumed = run_distill(ctx)
    assert resumed.complete and resumed.counts["pairs"] == 16 and resumed.counts["cached"] == len(first_pairs)
    assert not server.duplicate_keys() and len(sent_keys(server, 200)) == 16
    ids = [row["id"] for row in read_rows(ctx.stage_dir / "qa_pairs.jsonl")]
    assert len(set(ids)) == 16 and {row["id"] for row in first_pairs} <= set(ids)


def _ledger_spent(ctx) -> float:
    from slm_datagen.distill.ledger import Ledger

    with Ledger(ctx.stage_dir / "ledger.jsonl", readonly=True) as ledger:
        return ledger.index.spent_usd


def test_budget_caps_the_dataset_total_over_runs(tmp_path, shared_dir, server, keys):
    cap = 0.02
    distill = {"teachers": [teacher(server, max_concurrency=2)], "max_cost_usd": cap, "pairs_per_request": 1}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 4, 4), distill)
    results = [run_distill(ctx) for _ in range(3)]  # the same cap three times: not three times the money
    assert _ledger_spent(ctx) <= cap and results[0].stats["cost_usd_this_run"] > 0
    assert sum(r.stats["cost_usd_this_run"] for r in results) == pytest.approx(_ledger_spent(ctx), abs=1e-5)
    assert all(not r.complete for r in results)
    assert len(sent_keys(server, 200)) == len(read_rows(ctx.stage_dir / "qa_pairs.jsonl"))  # nothing asked twice
    last = results[-1]
    assert last.stats["cost_usd_total"] == pytest.approx(_ledger_spent(ctx), abs=1e-5)
    reached = f"budget reached: ${last.stats['cost_usd_total']:.4f} of $0.02; raise distill.max_cost_usd and rerun"
    assert reached in last.summary
    ctx.cfg.distill.max_cost_usd = 1.0  # raising the cap resumes where the budget stopped
    assert run_distill(ctx).complete and not server.duplicate_keys()


def test_budget_stops_close_to_the_cap_not_at_half(tmp_path, shared_dir, server, keys):
    """Many requests in flight hold reservations; the run waits for them to settle instead of stopping early."""
    cap = 0.05
    distill = {"teachers": [teacher(server, max_concurrency=8)], "max_cost_usd": cap, "pairs_per_request": 1}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 4, 4), distill)
    result = run_distill(ctx)
    from slm_datagen.distill.pricing import estimate_output_tokens, find_price
    from slm_datagen.distill.stage import make_plan

    plan, _ = make_plan(ctx.upstream_dir("prepare") / "chunks.jsonl", ctx.cfg.distill, None)
    price = find_price("gpt-4o", "openai")
    # the most a request is expected to cost: below cap − that, another request would still have fitted
    largest = max(price.cost(r.input_tokens_est, estimate_output_tokens("explain", 1500)) for r in plan)
    assert not result.complete and cap - largest < result.stats["cost_usd_this_run"] <= cap
    assert _ledger_spent(ctx) == pytest.approx(result.stats["cost_usd_this_run"], abs=1e-5)


def test_an_expensive_teacher_does_not_starve_a_cheap_one(tmp_path, shared_dir, server, keys):
    expensive = {"input_per_mtok": 1000.0, "output_per_mtok": 1000.0}  # one request ~ $1, far above the cap
    distill = {
        "teachers": [teacher(server), dict(teacher(server), model="gpt-4o-mini")],
        "audiences": ["expert"],
        "max_cost_usd": 0.05,
        "prices": {"gpt-4o": expensive},
    }
    ctx = make_ctx(tmp_path, chunks(shared_dir, 3, 3), distill)
    result = run_distill(ctx)
    pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert [p["model"] for p in pairs] == ["gpt-4o-mini"] * 6  # every cheap request went; no expensive one did
    assert result.counts["not_sent"] == 6 and "budget reached" in result.summary
    assert {r.model for r in server.generation_requests()} == {"gpt-4o-mini"}


def test_budget_needs_a_price_for_unknown_models(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [dict(teacher(server), model="gpt-9-preview")], "max_cost_usd": 1.0}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    with pytest.raises(SlmError, match="no price known for model 'gpt-9-preview'"):
        run_distill(ctx)
    ctx.cfg.distill.prices = {"gpt-9-preview": {"input_per_mtok": 1.0, "output_per_mtok": 2.0}}
    assert run_distill(ctx).counts["pairs"] == 2


def test_amended_article_resends_only_changed_chunks(tmp_path, shared_dir, server, keys):
    prompts: list[str] = []
    server.when(lambda req, provider: prompts.append(prompt_text(req, provider)) or False, "ok")
    original = chunks(shared_dir, 3, 2)
    ctx = make_ctx(tmp_path, original, {"teachers": [teacher(server)]})
    run_distill(ctx)
    before = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert len(prompts) == 5  # one request per chunk: both audiences in one reply
    old = original[1]  # 국세기본법 제22조의2 … amended: a changed sentence in 제2항
    # A re-collect after the amendment brings the new version of the whole law: every statute chunk carries the
    # law's new 시행일, the unchanged articles too. Only the article whose text changed may be asked again.
    amended = [
        c.model_copy(update={"effective_date": "2025-07-01"}) if c.kind == "statute_article" else c for c in original
    ]
    assert all(a.effective_date != o.effective_date for a, o in zip(amended, original) if o.kind == "statute_article")
    new_text = old.text.replace(
        "영향을 미치지 아니한다", "영향을 미치지 아니한다. 다만, 대통령령으로 정하는 경우는 제외한다"
    )
    assert new_text != old.text
    amended[1] = amended[1].model_copy(update={"id": old.id + "-2025", "text": new_text})
    ctx2 = make_ctx(tmp_path, amended, {"teachers": [teacher(server)]})
    result = run_distill(ctx2)
    assert len(prompts) == 6 and result.counts["cached"] == 4
    assert all("대통령령으로 정하는 경우는 제외한다" in prompt for prompt in prompts[5:])
    rows = read_rows(ctx2.stage_dir / "qa_pairs.jsonl")
    assert len(rows) == 10 and not any(r["chunk_id"] == old.id for r in rows)
    assert [r for r in rows if r["chunk_id"] != amended[1].id] == [r for r in before if r["chunk_id"] != old.id]


def test_two_teachers_cost_is_reported_per_teacher(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [teacher(server), teacher(server, "anthropic")], "audiences": ["expert"]}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 2, 1), distill)
    result = run_distill(ctx)
    costs = result.stats["cost_by_teacher_this_run"]
    assert set(costs) == {"openai:gpt-4o", "anthropic:claude-haiku-4-5"} and all(
        c["requests"] == 3 for c in costs.values()
    )
    pairs = read_rows(ctx.stage_dir / "qa_pairs.jsonl")
    assert [p["teacher"] for p in pairs] == ["openai", "anthropic"] * 3  # plan order: chunk, then teacher


def test_unknown_endpoint_is_one_clear_error(tmp_path, shared_dir, server, keys):
    distill = {"teachers": [dict(teacher(server), base_url=server.url + "/nowhere/v1")]}
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 0), distill)
    with pytest.raises(SlmError, match="does not exist|404") as info:
        run_distill(ctx)
    assert "base_url" in info.value.hint


def test_keys_never_reach_files(tmp_path, shared_dir, server, keys):
    ctx = make_ctx(tmp_path, chunks(shared_dir, 1, 1), {"teachers": [teacher(server), teacher(server, "anthropic")]})
    server.script("server_error", "english")
    run_distill(ctx)
    for path in ctx.stage_dir.iterdir():
        text = path.read_text(encoding="utf-8")
        assert OPENAI_KEY not in text and ANTHROPIC_KEY not in text
