"""Pure parts of the teacher stage, tested without HTTP: prompts, reply parsing, keys, ledger, prices, rate limits."""

from __future__ import annotations

import json
import random

import pytest

from slm_datagen.distill.engine import Budget, backoff_delay
from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.parse import ReplyProblem, extract_json, parse_reply
from slm_datagen.distill.plan import plan_chunk, request_key, request_params
from slm_datagen.distill.pricing import PRICES_AS_OF, find_price
from slm_datagen.distill.prompts import build_messages, calculation_kinds, repair_messages
from slm_datagen.distill.ratelimit import RateLimiter, TokenBucket, parse_reset, parse_retry_after, read_limits
from slm_datagen.distill.schema import PAIR_JSON_SCHEMA, PairDraft
from slm_datagen.distill.teachers import anthropic_params, anthropic_reply, openai_body, openai_reply
from slm_forest.config import DistillConfig, TeacherConfig
from slm_forest.records import Chunk
from tests.test_distill_common import ruling_chunks, statute_chunks

GOOD = {
    "question": "소득세법 제12조에 따라 비과세되는 소득에는 무엇이 있나요?",
    "answer": "공익신탁의 이익 등은 소득세를 과세하지 않습니다. (근거: 소득세법 제12조 제1호)",
    "audience": "expert",
    "citations": [{"law": "소득세법", "article": "제12조 제1호"}],
    "calculation": None,
}
GIFT_CHUNK = Chunk(
    id="c1",
    doc_id="d1",
    kind="statute_article",
    title="제26조(상속세 세율)",
    text="제26조(상속세 세율) 상속세는 … 세율을 적용하여 계산한 금액으로 한다.",
    citation="상속세 및 증여세법 제26조",
    law_name="상속세 및 증여세법",
    article_no=26,
)


# -------------------------------------------------------------------------------------------------------- prompts
def test_prompts_differ_by_kind_audience_and_style(shared_dir):
    statute = statute_chunks(shared_dir / "corpus")[0]
    ruling = ruling_chunks(shared_dir / "corpus")[0]
    expert = build_messages(statute, "expert")
    lay = build_messages(statute, "layperson")
    assert [m["role"] for m in expert.messages] == ["system", "user"]
    assert statute.text.strip() in expert.messages[1]["content"] and "전문가" in expert.messages[1]["content"]
    assert "일반 납세자" in lay.messages[1]["content"] and expert.messages != lay.messages
    ruled = build_messages(ruling, "expert")
    assert ruling.question in ruled.messages[1]["content"] and ruling.answer in ruled.messages[1]["content"]
    assert ruled.version != expert.version and "ruling@1" in ruled.version
    calc = build_messages(GIFT_CHUNK, "expert", "calculation")
    assert calc.kinds == ("gift_tax", "inheritance_tax") and "모든 단계의 금액" in calc.messages[1]["content"]
    assert "JSON Schema" not in expert.messages[0]["content"]
    assert "JSON Schema" in build_messages(statute, "expert", inline_schema=True).messages[0]["content"]


def test_calculation_style_only_for_laws_with_a_computation(shared_dir):
    assert calculation_kinds(GIFT_CHUNK) == ("gift_tax", "inheritance_tax")
    collection = next(c for c in statute_chunks(shared_dir / "corpus") if c.law_name == "국세징수법")
    assert calculation_kinds(collection) == ()
    cfg = DistillConfig(teachers=[TeacherConfig(provider="openai", model="gpt-4o")], styles=["explain", "calculation"])
    (request,) = plan_chunk(collection, 0, cfg)  # every pair of the chunk in one request
    assert request.pairs == (("expert", "explain"), ("layperson", "explain"))
    assert len(plan_chunk(GIFT_CHUNK, 0, cfg)[0].pairs) == 4
    single = cfg.model_copy(update={"pairs_per_request": 1})
    assert [(r.audience, r.style) for r in plan_chunk(collection, 0, single)] == [
        ("expert", "explain"),
        ("layperson", "explain"),
    ]
    assert len(plan_chunk(GIFT_CHUNK, 0, single)) == 4


def test_repair_messages_name_the_problem_and_keep_the_conversation(shared_dir):
    prompt = build_messages(statute_chunks(shared_dir / "corpus")[0], "expert")
    english = repair_messages(prompt, "not_korean", '{"question": "What is exempt?"}')
    assert english[:2] == prompt.as_list() and english[2]["role"] == "assistant" and "한국어" in english[3]["content"]
    cut = repair_messages(prompt, "truncated", '{"question": "…')
    assert len(cut) == 3 and "잘렸습니다" in cut[2]["content"]  # a cut reply is not worth sending back


def test_request_key_covers_everything_sent():
    teacher = TeacherConfig(provider="openai", model="gpt-4o")
    messages = [{"role": "user", "content": "소득세법 제12조"}]
    base = request_key(teacher, "v1", messages, request_params(teacher))
    assert base == request_key(teacher, "v1", list(messages), request_params(teacher))
    assert base != request_key(teacher, "v2", messages, request_params(teacher))
    assert base != request_key(teacher, "v1", [{"role": "user", "content": "소득세법 제13조"}], request_params(teacher))
    other = TeacherConfig(provider="openai", model="gpt-4o-mini")
    assert base != request_key(other, "v1", messages, request_params(other))
    hot = TeacherConfig(provider="openai", model="gpt-4o", temperature=0.9)
    assert base != request_key(hot, "v1", messages, request_params(hot))
    slow = TeacherConfig(provider="openai", model="gpt-4o", timeout_s=5)  # not part of what is sent
    assert base == request_key(slow, "v1", messages, request_params(slow))


# ---------------------------------------------------------------------------------------------------------- parse
def test_parse_accepts_a_good_reply_and_fenced_or_wrapped_json():
    assert isinstance(parse_reply(json.dumps(GOOD, ensure_ascii=False), audience="expert"), PairDraft)
    fenced = "다음과 같습니다:\n```json\n" + json.dumps(GOOD, ensure_ascii=False) + ",\n```"
    draft = parse_reply(fenced, audience="layperson")
    assert isinstance(draft, PairDraft) and draft.audience == "layperson"
    trailing = json.dumps(GOOD, ensure_ascii=False)[:-1] + ",}"
    assert extract_json(trailing)[0] is not None
    as_strings = dict(GOOD, citations=["소득세법 제12조 제1호"])
    assert (
        parse_reply(json.dumps(as_strings, ensure_ascii=False), audience="expert").citations[0].article
        == "제12조 제1호"
    )


@pytest.mark.parametrize(
    "text, kwargs, reason",
    [
        ("", {}, "empty"),
        ("   ", {}, "empty"),
        (json.dumps(GOOD, ensure_ascii=False)[:60], {"truncated": True}, "truncated"),
        ('{"question": "소득세법', {}, "schema"),
        ('{"question": "질문"}', {}, "schema"),
        (json.dumps(dict(GOOD, question="Which incomes are tax-exempt under Article 12?")), {}, "not_korean"),
        ("I'm sorry, I can only answer in English about the Income Tax Act here.", {}, "not_korean"),
        (json.dumps(GOOD, ensure_ascii=False), {"refusal": "I can't help with that."}, "refused"),
        (json.dumps(GOOD, ensure_ascii=False), {"style": "calculation"}, "schema"),
    ],
)
def test_parse_names_each_problem(text, kwargs, reason):
    verdict = parse_reply(text, audience="expert", **kwargs)
    assert isinstance(verdict, ReplyProblem) and verdict.reason == reason


# A calculation reply shaped exactly as the calculation prompt asks (names, types and values from its input list).
SEED_GIFT_QUESTION = "성년인 자녀가 2025년에 아버지로부터 현금 20억원을 증여받았습니다. 증여세 산출세액은 얼마인가요?"


def calc_reply(result_won: int, answer: str, **overrides) -> dict:
    inputs = [
        {"name": "amount_won", "value": 2e9},
        {"name": "relationship", "value": "lineal_ascendant"},
        {"name": "donee_is_minor", "value": False},
    ]
    calculation = {
        "kind": "gift_tax",
        "year": 2025,
        "result_won": result_won,
        "result_field": "computed_tax",
        "inputs": inputs,
    }
    calculation.update(overrides)
    return dict(
        GOOD,
        question=SEED_GIFT_QUESTION,
        answer=answer,
        calculation=calculation,
        citations=[{"law": "상속세 및 증여세법", "article": "제53조"}],
    )


def test_calculation_reply_maps_onto_the_record():
    reply = calc_reply(
        620_000_000, "증여재산공제 5,000만원을 빼면 과세표준은 19억 5,000만원이고 산출세액은 6억 2,000만원입니다."
    )
    draft = parse_reply(json.dumps(reply), audience="expert", style="calculation", allowed_kinds=("gift_tax",))
    assert isinstance(draft, PairDraft)
    record = draft.calculation.to_record()
    assert record.inputs == {"amount_won": 2000000000, "relationship": "lineal_ascendant", "donee_is_minor": False}
    assert record.kind == "gift_tax" and record.year == 2025 and record.result_won == 620000000
    assert record.result_field == "computed_tax"
    wrong = parse_reply(json.dumps(reply), audience="expert", style="calculation", allowed_kinds=("income_tax",))
    assert isinstance(wrong, ReplyProblem) and "calculation.kind" in wrong.detail


@pytest.mark.parametrize(
    "inputs, why",
    [
        # an unknown name, a required input missing, a value outside the allowed ones, a wrong type
        ([{"name": "gift_won", "value": 2e9}], "gift_won not accepted for gift_tax; use only amount_won"),
        ([{"name": "amount_won", "value": 2e9}], "needs relationship"),
        (
            [{"name": "amount_won", "value": 2e9}, {"name": "relationship", "value": "grandpa"}],
            "unknown donor relation",
        ),
        (
            [
                {"name": "amount_won", "value": 2e9},
                {"name": "relationship", "value": "spouse"},
                {"name": "donee_is_minor", "value": 1},
            ],
            "donee_is_minor must be true/false",
        ),
    ],
)
def test_calculation_the_checker_cannot_read_gets_a_repair_naming_the_inputs(inputs, why):
    reply = calc_reply(620_000_000, "산출세액은 6억 2,000만원입니다.", inputs=inputs)
    verdict = parse_reply(json.dumps(reply), audience="expert", style="calculation", allowed_kinds=("gift_tax",))
    assert isinstance(verdict, ReplyProblem) and verdict.reason == "schema" and why in verdict.detail


@pytest.mark.parametrize(
    "claimed, answer, rule",
    [
        (
            620_000_000,
            "과세표준 19억 5,000만원에 세율 40%와 누진공제 1억 6,000만원을 적용한 산출세액은 6억 2,000만원입니다.",
            None,
        ),
        (
            90_000_000,
            "1억원 이하는 10%, 1억원 초과는 20%이므로 산출세액은 1,000만원 + 8,000만원 = 9,000만원입니다.",
            "calc_mismatch",
        ),
    ],
)
def test_a_teacher_calculation_as_prompted_is_recomputed_by_build(claimed, answer, rule):
    """The reply the calculation prompt asks for reaches `slm build`'s arithmetic check as a checkable payload:
    wrong arithmetic is rejected there (not merely flagged calc_unverified), right arithmetic passes."""
    from slm_datagen.dataset.arithmetic import check_arithmetic
    from slm_forest.records import QAPair

    prompt = build_messages(GIFT_CHUNK, "expert", "calculation").messages[1]["content"]
    for name in ("amount_won", "relationship", "donee_is_minor", '"lineal_ascendant"', '"computed_tax"'):
        assert name in prompt  # the reply below uses only what the prompt spells out
    draft = parse_reply(
        json.dumps(calc_reply(claimed, answer), ensure_ascii=False),
        audience="expert",
        style="calculation",
        allowed_kinds=("gift_tax", "inheritance_tax"),
    )
    assert isinstance(draft, PairDraft)
    pair = QAPair(
        id="qa1",
        chunk_id="c1",
        doc_id="d1",
        kind="statute_article",
        question=draft.question,
        answer=draft.answer,
        audience="expert",
        style="calculation",
        calculation=draft.calculation.to_record(),
        teacher="openai",
        model="gpt-4o",
        prompt_version="v",
        request_key="k",
    )
    findings = check_arithmetic(pair)
    if rule is None:
        assert findings == []
    else:
        assert [(f.rule, f.action) for f in findings] == [(rule, "reject")]
        assert "620,000,000" in findings[0].details


def test_calculation_prompt_lists_exactly_the_checker_inputs():
    """The prompt is generated from the checker's own tables: every accepted name, its type and values, nothing else."""
    from slm_datagen.distill import calcspec
    from slm_datagen.taxlaw import verdict
    from slm_datagen.taxlaw.computation import RESULT_FIELDS

    for kind, names in verdict.INPUT_TYPES.items():
        rule = calcspec.calculation_rule((kind,))
        assert f"- {kind} " in rule and all(f"· {name} (" in rule for name in names)
        assert set(calcspec.INPUT_NOTES[kind]) == set(names)  # every name has its meaning
        assert all(f"· {name} (필수" in rule for name in verdict.REQUIRED_INPUTS[kind])
        others = {n for k, ns in verdict.INPUT_TYPES.items() if k != kind for n in ns} - set(names)
        assert not any(f"· {name} (" in rule for name in others)
        # the defaults the prompt states are the ones the calculator applies
        required = {
            "amount_won": 2e9,
            "relationship": "lineal_ascendant",
            "taxable_base_won": 5e8,
            "taxable_income_won": 5e7,
            "taxable_estate_won": 2e9,
            "transfer_price_won": 1e9,
            "acquisition_price_won": 4e8,
            "holding_years": 5,
            "sales_won": 1e8,
            "purchases_won": 4e7,
            "supply_with_vat_won": 8e7,
            "sector": "retail_food",
        }
        base = {n: int(v) if isinstance(v, float) else v for n, v in required.items() if n in names}
        for name, (_, default) in calcspec.INPUT_NOTES[kind].items():
            if default is not None and name not in verdict.REQUIRED_INPUTS[kind]:
                assert verdict.compute(kind, 2024, {**base, name: default}) == verdict.compute(kind, 2024, base), name
    for _name, enum in calcspec.ENUM_INPUTS.items():
        assert all(member.value in calcspec.VALUE_LABELS for member in enum)
    assert set(calcspec.RESULT_LABELS) == set(RESULT_FIELDS)
    for field in RESULT_FIELDS:
        assert f'"{field}"' in calcspec.calculation_rule()


def test_reply_schema_is_valid_for_openai_strict_mode():
    """Strict mode: every object closed and fully required, unions as anyOf of single types, no type lists."""

    def walk(node, path="$"):
        if isinstance(node, dict):
            if node.get("type") == "object":
                assert node.get("additionalProperties") is False, path
                assert sorted(node.get("required", [])) == sorted(node.get("properties", {})), path
            assert not isinstance(node.get("type"), list), path
            for key, value in node.items():
                walk(value, f"{path}.{key}")
        elif isinstance(node, list):
            for i, value in enumerate(node):
                walk(value, f"{path}[{i}]")

    assert PAIR_JSON_SCHEMA["type"] == "object" and "anyOf" not in PAIR_JSON_SCHEMA
    walk(PAIR_JSON_SCHEMA)
    calc = PAIR_JSON_SCHEMA["properties"]["calculation"]["anyOf"][1]
    value = calc["properties"]["inputs"]["items"]["properties"]["value"]
    assert {option["type"] for option in value["anyOf"]} == {"number", "string", "boolean"}


def test_provider_bodies_and_replies():
    openai_teacher = TeacherConfig(provider="openai", model="gpt-4o", max_tokens=900)
    body = openai_body(openai_teacher, [{"role": "user", "content": "질문"}])
    assert body["response_format"]["json_schema"]["schema"] == PAIR_JSON_SCHEMA and body["max_completion_tokens"] == 900
    compat = openai_body(TeacherConfig(provider="openai_compatible", model="qwen"), [{"role": "user", "content": "q"}])
    assert compat["response_format"] == {"type": "json_object"} and "max_tokens" in compat
    claude = TeacherConfig(provider="anthropic", model="claude-haiku-4-5")
    params = anthropic_params(
        claude, [{"role": "system", "content": "S"}, {"role": "user", "content": "A"}, {"role": "user", "content": "B"}]
    )
    assert params["system"] == "S" and params["messages"] == [{"role": "user", "content": "A\n\nB"}]
    assert params["tool_choice"] == {"type": "tool", "name": params["tools"][0]["name"]}
    assert params["tools"][0]["input_schema"] == PAIR_JSON_SCHEMA
    cut = openai_reply(
        {
            "choices": [{"message": {"content": "{"}, "finish_reason": "length"}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 900},
        }
    )
    assert cut.truncated and cut.input_tokens == 10 and cut.output_tokens == 900
    tool = anthropic_reply(
        {
            "content": [{"type": "tool_use", "input": GOOD}],
            "stop_reason": "tool_use",
            "usage": {"input_tokens": 5, "output_tokens": 7},
        }
    )
    assert json.loads(tool.text) == GOOD and not tool.truncated
    assert anthropic_reply({"content": [], "stop_reason": "max_tokens", "usage": {}}).truncated


# --------------------------------------------------------------------------------------------------------- ledger
def test_ledger_survives_a_torn_last_line(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path) as ledger:
        ledger.append({"type": "done", "key": "a", "status": "ok", "pair": GOOD, "usage": {"cost_usd": 0.5}})
        ledger.append({"type": "attempt", "key": "b", "reason": "schema", "usage": {"cost_usd": 0.25}})
    with open(path, "ab") as handle:
        handle.write(b'{"type":"done","key":"b","sta')  # SIGKILL in the middle of a write
    with Ledger(path) as ledger:
        assert ledger.is_done("a") and not ledger.is_done("b") and "b" in ledger.index.attempts
        assert ledger.index.spent_usd == pytest.approx(0.75)
        assert ledger.read_done("a")["pair"] == GOOD
        ledger.append({"type": "done", "key": "b", "status": "failed", "reason": "schema"})
    lines = path.read_text(encoding="utf-8").splitlines()
    assert len(lines) == 3 and all(json.loads(line) for line in lines)  # the torn bytes were cut, not glued on
    with Ledger(path) as ledger:
        assert ledger.index.done_status == {"a": "ok", "b": "failed"} and not ledger.index.attempts


def test_ledger_rejects_a_corrupt_middle_line(tmp_path):
    from slm_forest.errors import SlmError

    path = tmp_path / "ledger.jsonl"
    path.write_text('{"type":"done","key":"a"}\nnot json\n{"type":"done","key":"b"}\n', encoding="utf-8")
    with pytest.raises(SlmError, match=r"ledger.jsonl:2"):
        Ledger(path)


# --------------------------------------------------------------------------------------------------------- prices
def test_prices_match_dated_models_and_config_overrides():
    assert PRICES_AS_OF
    price = find_price("gpt-4o-2024-08-06", "openai")
    assert (price.input_per_mtok, price.output_per_mtok) == (2.5, 10.0)
    assert find_price("gpt-4o-mini", "openai").input_per_mtok == 0.15
    assert find_price("claude-sonnet-4-5-20250929", "anthropic").output_per_mtok == 15.0
    assert find_price("claude-haiku-4-5", "anthropic").cost(1_000_000, 1_000_000) == pytest.approx(6.0)
    assert find_price("claude-haiku-4-5", "anthropic").cost(1_000_000, 1_000_000, batch=True) == pytest.approx(3.0)
    assert find_price("brand-new-model", "openai") is None
    assert (
        find_price("brand-new-model", "openai", {"brand-new-model": {"input_per_mtok": 1, "output_per_mtok": 2}}).source
        == "config"
    )
    assert find_price("qwen2.5:7b", "openai_compatible").cost(10**6, 10**6) == 0.0


def test_budget_reserves_before_spending():
    budget = Budget(1.0)
    assert budget.try_reserve(0.4) and budget.try_reserve(0.4)
    assert not budget.try_reserve(0.4) and budget.stopped
    budget.settle(0.4, 0.5)
    assert budget.spent_usd == 0.5 and budget.reserved_usd == pytest.approx(0.4)
    earlier = Budget(1.0, spent_before_usd=0.9)  # the cap covers what earlier runs paid
    assert not earlier.try_reserve(0.2) and earlier.try_reserve(0.1) and earlier.total_usd == 0.9


def test_budget_waits_for_requests_in_flight_instead_of_stopping():
    import asyncio

    async def scenario():
        budget = Budget(1.0)
        assert await budget.reserve(0.4) and await budget.reserve(0.4)
        third = asyncio.ensure_future(budget.reserve(0.4))  # 0.8 in flight: it must wait, not give up
        await asyncio.sleep(0.01)
        assert not third.done() and not budget.stopped
        budget.settle(0.4, 0.1)  # a reply cheaper than reserved: now 0.1 spent + 0.4 + 0.4 fits
        assert await asyncio.wait_for(third, 1.0) and not budget.stopped
        budget.settle(0.4, 0.35)
        budget.settle(0.4, 0.35)
        assert not await budget.reserve(0.4) and budget.stopped  # 0.8 spent, nothing in flight: really out
        assert await budget.reserve(0.2)  # a cheaper request still fits

    asyncio.run(scenario())


def test_ledger_counts_a_repaired_request_once(tmp_path):
    path = tmp_path / "ledger.jsonl"
    with Ledger(path) as ledger:
        ledger.append({"type": "attempt", "key": "k", "reason": "schema", "usage": {"cost_usd": 0.25}})
        assert ledger.index.spent_usd == pytest.approx(0.25)
        # the done line's usage is first reply + repair (0.25 + 0.35)
        ledger.append({"type": "done", "key": "k", "status": "ok", "pair": GOOD, "usage": {"cost_usd": 0.6}})
        assert ledger.index.spent_usd == pytest.approx(0.6)
    assert Ledger(path, readonly=True).index.spent_usd == pytest.approx(0.6)


def test_a_readonly_ledger_writes_nothing(tmp_path):
    path = tmp_path / "distill" / "ledger.jsonl"
    ledger = Ledger(path, readonly=True)
    assert not path.exists() and not path.parent.exists() and ledger.index.spent_usd == 0
    with pytest.raises(RuntimeError, match="read-only"):
        ledger.append({"type": "done", "key": "a"})
    ledger.close()
    path.parent.mkdir()
    path.write_bytes(b'{"type":"done","key":"a","usage":{"cost_usd":0.5}}\n{"type":"done","ke')
    assert Ledger(path, readonly=True).is_done("a")
    assert path.read_bytes().endswith(b'"ke')  # the torn tail is skipped, not cut


# ----------------------------------------------------------------------------------------------------- rate limits
class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_token_bucket_paces_at_its_rate():
    clock = FakeClock()
    bucket = TokenBucket(1200, clock)  # 20/s, one second of burst
    for _ in range(20):
        assert bucket.wait_time(1) == 0
        bucket.take(1)
    assert bucket.wait_time(1) == pytest.approx(0.05)
    clock.now += 0.5
    assert bucket.wait_time(10) == 0 and bucket.wait_time(11) == pytest.approx(0.05)
    assert TokenBucket(None, clock).wait_time(10**9) == 0


def test_headers_only_tighten():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=6000, clock=clock)
    limiter.observe(
        {
            "x-ratelimit-limit-requests": "600",
            "x-ratelimit-remaining-requests": "3",
            "x-ratelimit-reset-requests": "6m0s",
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "29000",
        }
    )
    assert limiter.requests.per_minute == 600 and limiter.requests.level <= 3
    assert limiter.tokens.per_minute == 30000  # learned: none was configured
    limiter.observe({"x-ratelimit-limit-requests": "100000"})
    assert limiter.requests.per_minute == 600
    anthropic = read_limits(
        {
            "anthropic-ratelimit-input-tokens-limit": "40000",
            "anthropic-ratelimit-input-tokens-remaining": "100",
            "anthropic-ratelimit-input-tokens-reset": "2999-01-01T00:00:00Z",
        }
    )
    assert anthropic["input_tokens"]["limit"] == 40000 and anthropic["input_tokens"]["remaining"] == 100
    assert anthropic["input_tokens"]["reset"] > 0


def test_reset_and_retry_after_formats():
    assert (
        parse_reset("6m0s") == 360 and parse_reset("20ms") == pytest.approx(0.02) and parse_reset("1h2m3.5s") == 3723.5
    )
    assert parse_reset("2030-01-01T00:00:00Z", now_wall=1893455990.0) == pytest.approx(10.0)
    assert parse_retry_after({"Retry-After": "7"}) == 7 and parse_retry_after({"retry-after-ms": "250"}) == 0.25
    assert parse_retry_after({}) is None


def test_many_429s_pause_the_teacher_one_does_not():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=600, clock=clock)
    for _ in range(9):
        limiter.observe({})
    limiter.observe({}, rate_limited=True, retry_after=3.0)
    assert limiter.paused_until <= clock.now  # 1 in 10: only that request waits
    for _ in range(5):
        limiter.observe({}, rate_limited=True, retry_after=3.0)
    assert limiter.paused_until == pytest.approx(clock.now + 3.0)


def _sent(limiter: RateLimiter, n: int, over_s: float, clock: FakeClock) -> None:
    """Record n sends spread over `over_s` seconds (what `acquire` notes), without an event loop."""
    for _ in range(n):
        limiter._sent.append(clock.now)
        limiter._first_sent = limiter._first_sent or clock.now
        clock.now += over_s / n


def test_repeated_429s_lower_the_rate_multiplicatively_successes_raise_it_additively():
    clock = FakeClock()
    limiter = RateLimiter(requests_per_minute=3000, clock=clock)
    _sent(limiter, 100, 10.0, clock)  # 600/min actually sent (latency-bound), well below the configured 3,000
    for _ in range(9):
        limiter.observe({})
    limiter.observe({}, rate_limited=True)
    assert limiter.aimd_rpm is None and limiter.decreases == 0  # one stray 429 (no headers): no slowdown
    for _ in range(4):
        limiter.observe({}, rate_limited=True)  # a storm, with neither Retry-After nor rate-limit headers
    assert limiter.decreases == 1 and limiter.aimd_rpm == pytest.approx(420, rel=0.05)  # 0.7 × what was sent
    assert limiter.requests.per_minute == pytest.approx(limiter.aimd_rpm)
    limiter.observe({}, rate_limited=True)
    assert limiter.decreases == 1  # the same overshoot answers once, not once per refused request
    clock.now += 2.5
    for _ in range(3):
        limiter.observe({}, rate_limited=True)
    assert limiter.decreases == 2 and limiter.aimd_rpm == pytest.approx(294, rel=0.05)
    low = limiter.aimd_rpm
    for _ in range(10):  # one success a second: +10/min each second (600/min regained in a minute)
        clock.now += 1.0
        limiter.observe({})
    assert limiter.aimd_rpm == pytest.approx(low + 100, rel=0.05)
    for _ in range(400):
        clock.now += 1.0
        limiter.observe({})
    assert limiter.aimd_rpm is None and limiter.requests.per_minute == 3000  # back at the configured limit


def test_a_429_retry_after_is_the_cooldown_and_the_pause():
    clock = FakeClock()
    limiter = RateLimiter(clock=clock)  # nothing configured: the rate is learned from what was sent
    _sent(limiter, 60, 6.0, clock)
    for _ in range(4):
        limiter.observe({}, rate_limited=True, retry_after=5.0)
    assert limiter.paused_until == pytest.approx(clock.now + 5.0) and limiter.aimd_rpm == pytest.approx(420, rel=0.1)
    clock.now += 3.0  # past the 2 s cooldown but not the server's 5 s: still the same overshoot
    limiter.observe({}, rate_limited=True, retry_after=5.0)
    assert limiter.decreases == 1


def test_backoff_honours_retry_after_and_grows():
    rng = random.Random(1)
    assert all(backoff_delay(0, 2.0, rng=rng) >= 2.0 for _ in range(50))
    assert max(backoff_delay(0, None, rng=rng) for _ in range(200)) <= 0.5
    assert max(backoff_delay(6, None, rng=rng) for _ in range(200)) > 8
    assert max(backoff_delay(20, None, rng=rng) for _ in range(200)) <= 60
