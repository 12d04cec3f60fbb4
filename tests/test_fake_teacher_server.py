"""The fake teacher server, exercised through the real openai / anthropic SDKs (no SDK internals patched)."""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from typing import Literal

import anthropic
import httpx
import openai
import pytest
from pydantic import BaseModel, Field

from tests.fake_teacher_server import VARIANTS, FakeTeacherServer, Reply, default_responder

MODEL_OA = "gpt-4o-mini"
MODEL_AN = "claude-haiku-4-5"
PROMPT = "소득세법 제12조의 비과세소득에 관한 질문과 답변을 JSON으로 만들어 주세요."

QA_TOOL = {
    "name": "emit_qa",
    "description": "Emit Q&A pairs",
    "input_schema": {
        "type": "object",
        "properties": {
            "pairs": {
                "type": "array",
                "minItems": 2,
                "items": {
                    "type": "object",
                    "properties": {
                        "question": {"type": "string"},
                        "answer": {"type": "string"},
                        "difficulty": {"type": "string", "enum": ["easy", "medium", "hard"]},
                    },
                    "required": ["question", "answer", "difficulty"],
                },
            }
        },
        "required": ["pairs"],
    },
}


def _hangul(text: str) -> int:
    return sum("가" <= c <= "힣" for c in text)


def _user(text: str = PROMPT) -> list[dict]:
    return [{"role": "user", "content": text}]


@pytest.fixture
def server():
    with FakeTeacherServer() as srv:
        yield srv


@pytest.fixture
def oa(server):
    with openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as client:
        yield client


@pytest.fixture
def an(server):
    with anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0) as client:
        yield client


# -- OpenAI chat completions ------------------------------------------------------------------------------------


def test_openai_chat_completion_is_typed_and_has_rate_limit_headers(server, oa):
    raw = oa.chat.completions.with_raw_response.create(model=MODEL_OA, messages=_user())
    completion = raw.parse()
    assert completion.object == "chat.completion" and completion.id.startswith("chatcmpl-")
    assert completion.model == MODEL_OA and isinstance(completion.created, int)
    choice = completion.choices[0]
    assert choice.index == 0 and choice.finish_reason == "stop" and choice.logprobs is None
    assert choice.message.role == "assistant" and choice.message.refusal is None
    payload = json.loads(choice.message.content)
    assert set(payload) == {"question", "answer"}
    assert "소득세법 제12조" in payload["question"] and _hangul(payload["answer"]) > 30
    usage = completion.usage
    assert usage.prompt_tokens > 0 and usage.completion_tokens > 0
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens
    for name in (
        "x-ratelimit-limit-requests",
        "x-ratelimit-remaining-requests",
        "x-ratelimit-reset-requests",
        "x-ratelimit-limit-tokens",
        "x-ratelimit-remaining-tokens",
        "x-ratelimit-reset-tokens",
        "x-request-id",
    ):
        assert raw.headers.get(name), name
    assert completion._request_id == raw.headers["x-request-id"]
    # deterministic per request
    again = oa.chat.completions.create(model=MODEL_OA, messages=_user())
    assert again.choices[0].message.content == choice.message.content


def test_openai_json_schema_response_format(oa):
    schema = {
        "type": "object",
        "properties": {
            "items": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {
                        "instruction": {"type": "string"},
                        "output": {"type": "string"},
                        "law_reference": {"type": "string"},
                        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                    },
                    "required": ["instruction", "output", "law_reference", "confidence"],
                    "additionalProperties": False,
                },
            }
        },
        "required": ["items"],
        "additionalProperties": False,
    }
    completion = oa.chat.completions.create(
        model=MODEL_OA,
        messages=_user(),
        response_format={"type": "json_schema", "json_schema": {"name": "qa", "strict": True, "schema": schema}},
    )
    item = json.loads(completion.choices[0].message.content)["items"][0]
    assert set(item) == {"instruction", "output", "law_reference", "confidence"}
    assert item["law_reference"] == "소득세법 제12조" and 0 <= item["confidence"] <= 1


class _Pair(BaseModel):
    question: str
    answer: str
    citation: str | None = None
    difficulty: Literal["easy", "hard"]


class _Pairs(BaseModel):
    pairs: list[_Pair] = Field(min_length=1)


def test_sdk_structured_output_parse_helpers(oa, an):
    parsed = oa.chat.completions.parse(model=MODEL_OA, messages=_user(), response_format=_Pairs)
    pair = parsed.choices[0].message.parsed.pairs[0]
    assert pair.citation == "소득세법 제12조" and pair.difficulty == "easy"
    message = an.messages.parse(
        model=MODEL_AN, max_tokens=2000, messages=_user("상속세 및 증여세법 제18조"), output_format=_Pairs
    )
    assert message.parsed_output.pairs[0].citation == "상속세 및 증여세법 제18조"


def test_openai_scripted_content_variants(server, oa):
    server.script("english", "empty", "truncated", "malformed")
    english = oa.chat.completions.create(model=MODEL_OA, messages=_user())
    empty = oa.chat.completions.create(model=MODEL_OA, messages=_user())
    truncated = oa.chat.completions.create(model=MODEL_OA, messages=_user(), max_tokens=400)
    malformed = oa.chat.completions.create(model=MODEL_OA, messages=_user())
    english_payload = json.loads(english.choices[0].message.content)
    assert _hangul(json.dumps(english_payload, ensure_ascii=False)) == 0 and english_payload["answer"]
    assert empty.choices[0].message.content == ""
    assert truncated.choices[0].finish_reason == "length" and truncated.usage.completion_tokens == 400
    for broken in (truncated, malformed):
        with pytest.raises(json.JSONDecodeError):
            json.loads(broken.choices[0].message.content)
    assert [r.variant for r in server.generation_requests()] == ["english", "empty", "truncated", "malformed"]
    assert server.pending_script == 0


def test_openai_max_tokens_cuts_the_reply(oa):
    completion = oa.chat.completions.create(model=MODEL_OA, messages=_user(), max_completion_tokens=10)
    assert completion.choices[0].finish_reason == "length" and completion.usage.completion_tokens == 10


# -- Anthropic messages -----------------------------------------------------------------------------------------


def test_anthropic_text_message_and_headers(an):
    raw = an.messages.with_raw_response.create(
        model=MODEL_AN, max_tokens=1024, system="당신은 세법 전문가입니다.", messages=_user()
    )
    message = raw.parse()
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.stop_reason == "end_turn" and message.model == MODEL_AN
    assert message.content[0].type == "text"
    assert "소득세법 제12조" in json.loads(message.content[0].text)["question"]
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    for kind in ("requests", "input-tokens", "output-tokens"):
        for part in ("limit", "remaining", "reset"):
            assert raw.headers.get(f"anthropic-ratelimit-{kind}-{part}"), (kind, part)
    assert raw.headers["request-id"].startswith("req_") and message._request_id == raw.headers["request-id"]


def test_anthropic_forced_tool_returns_tool_use_input(an):
    message = an.messages.create(
        model=MODEL_AN,
        max_tokens=2048,
        messages=_user(),
        tools=[QA_TOOL],
        tool_choice={"type": "tool", "name": "emit_qa"},
    )
    assert message.stop_reason == "tool_use"
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "emit_qa" and block.id.startswith("toolu_")
    pairs = block.input["pairs"]
    assert len(pairs) == 2 and all(p["difficulty"] == "easy" for p in pairs)
    assert "소득세법 제12조" in pairs[0]["question"] and _hangul(pairs[0]["answer"]) > 30


def test_anthropic_scripted_variants(server, an):
    server.script("truncated", "empty", "malformed", Reply("truncated"))
    truncated = an.messages.create(model=MODEL_AN, max_tokens=300, messages=_user())
    assert truncated.stop_reason == "max_tokens" and truncated.usage.output_tokens == 300
    with pytest.raises(json.JSONDecodeError):
        json.loads(truncated.content[0].text)
    empty = an.messages.create(model=MODEL_AN, max_tokens=300, messages=_user())
    assert empty.content == [] and empty.stop_reason == "end_turn"
    malformed = an.messages.create(model=MODEL_AN, max_tokens=1024, messages=_user())
    with pytest.raises(json.JSONDecodeError):
        json.loads(malformed.content[0].text)
    tool_cut = an.messages.create(
        model=MODEL_AN,
        max_tokens=300,
        messages=_user(),
        tools=[QA_TOOL],
        tool_choice={"type": "tool", "name": "emit_qa"},
    )
    assert tool_cut.stop_reason == "max_tokens" and tool_cut.content[0].input == {}


# -- injected errors --------------------------------------------------------------------------------------------


def test_injected_429_surfaces_as_rate_limit_error_with_retry_after(server, oa, an):
    server.script(Reply("rate_limit", retry_after=7), Reply("rate_limit", retry_after=3))
    with pytest.raises(openai.RateLimitError) as oa_err:
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    assert oa_err.value.status_code == 429 and oa_err.value.response.headers["retry-after"] == "7"
    assert oa_err.value.code == "rate_limit_exceeded" and oa_err.value.body["code"] == "rate_limit_exceeded"
    with pytest.raises(anthropic.RateLimitError) as an_err:
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert an_err.value.response.headers["retry-after"] == "3"
    assert an_err.value.body["type"] == "error" and an_err.value.body["error"]["type"] == "rate_limit_error"
    assert an_err.value.response.headers["request-id"].startswith("req_")
    assert server.stats()["injected_errors"] == 2


def test_injected_500_and_overloaded(server, oa, an):
    server.script("server_error", "server_error", "overloaded", "overloaded")
    with pytest.raises(openai.InternalServerError) as e1:
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    assert e1.value.status_code == 500 and e1.value.body["type"] == "server_error"
    with pytest.raises(anthropic.InternalServerError) as e2:
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert e2.value.status_code == 500 and e2.value.body["error"]["type"] == "api_error"
    with pytest.raises(openai.InternalServerError) as e3:
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    assert e3.value.status_code == 503
    with pytest.raises(anthropic.OverloadedError) as e4:
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert e4.value.status_code == 529 and e4.value.body["error"]["type"] == "overloaded_error"


def test_hang_times_out_without_blocking_other_requests(server):
    server.hang_seconds = 20
    server.on_prompt("HANG", "hang")
    oa = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0, timeout=0.5)
    an = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0, timeout=0.5)
    errors = []

    def hang(call):
        try:
            call()
        except (openai.APITimeoutError, anthropic.APITimeoutError) as exc:
            errors.append(exc)

    threads = [
        threading.Thread(
            target=hang, args=(lambda: oa.chat.completions.create(model=MODEL_OA, messages=_user("HANG")),)
        ),
        threading.Thread(
            target=hang, args=(lambda: an.messages.create(model=MODEL_AN, max_tokens=99, messages=_user("HANG")),)
        ),
    ]
    for t in threads:
        t.start()
    time.sleep(0.05)
    start = time.monotonic()
    ok = oa.chat.completions.create(model=MODEL_OA, messages=_user())  # answered while two requests hang
    assert ok.choices[0].finish_reason == "stop" and time.monotonic() - start < 5  # not stuck behind a 20 s hang
    for t in threads:
        t.join(5)
    assert len(errors) == 2
    assert isinstance(errors[0], (openai.APITimeoutError, anthropic.APITimeoutError))
    deadline = time.monotonic() + 5
    while server.stats()["in_flight"] < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert server.stats()["in_flight"] == 2  # both still sleeping server-side
    started = time.monotonic()
    server.stop()  # wakes the hanging handlers
    assert time.monotonic() - started < 3 and server.stats()["in_flight"] == 0


def test_cut_body_raises_json_decode_error_in_both_sdks_and_drop_a_connection_error(server, oa, an):
    # A proxy or a dropped upstream connection: HTTP 200, correctly framed, the JSON stops half-way. The SDKs do
    # not wrap this in APIError (ML_STACK_NOTES), which is what the engine must survive.
    server.script("cut_body", "cut_body", "drop", "drop")
    with pytest.raises(json.JSONDecodeError):
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    with pytest.raises(json.JSONDecodeError):
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    with pytest.raises(openai.APIConnectionError):
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    with pytest.raises(anthropic.APIConnectionError):
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert [r.variant for r in server.generation_requests()] == ["cut_body", "cut_body", "drop", "drop"]
    assert server.duplicate_keys() == {}  # an undelivered answer is not a paid duplicate
    assert oa.chat.completions.create(model=MODEL_OA, messages=_user()).choices[0].finish_reason == "stop"


def test_429_without_headers(server, oa, an):
    server.script("rate_limit_bare")
    with pytest.raises(openai.RateLimitError) as bare:
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
    assert "retry-after" not in bare.value.response.headers
    assert not any(k.startswith("x-ratelimit") for k in bare.value.response.headers)
    server.rate_limit_headers = False
    server.requests_per_minute = 2  # the bare 429 above was accepted by the limiter: one more fits
    ok = an.messages.with_raw_response.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert not any(k.startswith("anthropic-ratelimit") for k in ok.headers)
    with pytest.raises(anthropic.RateLimitError) as refused:
        an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
    assert "retry-after" not in refused.value.response.headers
    assert not any(k.startswith("anthropic-ratelimit") for k in refused.value.response.headers)


# -- scripting --------------------------------------------------------------------------------------------------


def test_prompt_rules_times_and_fifo_precedence(server, oa):
    server.on_prompt("제99조", "malformed", times=1)
    server.on_prompt("제77조", Reply("ok", content={"fixed": "답"}))
    first = oa.chat.completions.create(model=MODEL_OA, messages=_user("국세기본법 제99조"))
    second = oa.chat.completions.create(model=MODEL_OA, messages=_user("국세기본법 제99조"))
    with pytest.raises(json.JSONDecodeError):
        json.loads(first.choices[0].message.content)
    assert "국세기본법 제99조" in json.loads(second.choices[0].message.content)["question"]
    assert json.loads(
        oa.chat.completions.create(model=MODEL_OA, messages=_user("제77조")).choices[0].message.content
    ) == {"fixed": "답"}
    server.script("empty")  # the FIFO script wins over rules
    assert oa.chat.completions.create(model=MODEL_OA, messages=_user("제77조")).choices[0].message.content == ""
    with pytest.raises(ValueError):
        server.script("nonsense")


def test_custom_responder_and_truncation_of_its_content():
    def responder(req, provider):
        text = req["messages"][-1]["content"]
        if "raw" in text:
            return "그냥 텍스트"
        if "err" in text:
            return Reply("server_error")
        return {"provider": provider, "echo": text}

    with FakeTeacherServer(responder) as srv:
        oa = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)
        an = anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0)
        assert json.loads(
            oa.chat.completions.create(model=MODEL_OA, messages=_user("hi")).choices[0].message.content
        ) == {
            "provider": "openai",
            "echo": "hi",
        }
        assert an.messages.create(model=MODEL_AN, max_tokens=50, messages=_user("raw")).content[0].text == "그냥 텍스트"
        with pytest.raises(openai.InternalServerError):
            oa.chat.completions.create(model=MODEL_OA, messages=_user("err"))
        srv.script("truncated")
        cut = oa.chat.completions.create(model=MODEL_OA, messages=_user("hello there"))
        assert cut.choices[0].message.content.startswith('{"provider"')


def _variants_with_chaos(seed: int) -> list[str]:
    with FakeTeacherServer(chaos={"rate_limit": 0.2, "server_error": 0.2, "malformed": 0.2}, seed=seed) as srv:
        oa = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)
        for i in range(20):
            try:
                oa.chat.completions.create(model=MODEL_OA, messages=_user(f"질문 {i}"))
            except openai.APIStatusError:
                pass
        return [r.variant for r in srv.generation_requests()]


def test_chaos_is_seeded_and_deterministic():
    a, b, c = _variants_with_chaos(1), _variants_with_chaos(1), _variants_with_chaos(2)
    assert a == b and a != c
    assert 3 <= a.count("ok") <= 17 and {"rate_limit", "server_error", "malformed"} <= set(a)


# -- the server's own rate limiter and the request log ----------------------------------------------------------


def test_server_rate_limiter_refuses_above_its_limit_and_recovers():
    with FakeTeacherServer(requests_per_minute=3) as srv:
        oa = openai.OpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0)
        an = anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0)
        for _ in range(2):
            oa.chat.completions.create(model=MODEL_OA, messages=_user())
        raw = an.messages.with_raw_response.create(model=MODEL_AN, max_tokens=100, messages=_user())
        assert raw.headers["anthropic-ratelimit-requests-remaining"] == "0"
        with pytest.raises(openai.RateLimitError) as refused:
            oa.chat.completions.create(model=MODEL_OA, messages=_user())
        assert int(refused.value.response.headers["retry-after"]) >= 1
        assert "requests per min" in refused.value.message
        with pytest.raises(anthropic.RateLimitError):
            an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
        stats = srv.stats()
        assert (stats["accepted"], stats["refused_rate_limit"], stats["answered"]) == (3, 2, 3)
        assert stats["per_minute"] == [{"minute": 0, "accepted": 3, "refused": 2}]
        assert [r.refused for r in srv.generation_requests()] == [False, False, False, True, True]
        srv.window_seconds = 0.1  # shrink the sliding window so it empties now
        time.sleep(0.15)
        oa.chat.completions.create(model=MODEL_OA, messages=_user())
        assert srv.stats()["accepted"] == 4


def test_request_log_keys_and_duplicates(server, oa, an):
    server.script("rate_limit")
    with pytest.raises(openai.RateLimitError):
        oa.chat.completions.create(model=MODEL_OA, messages=_user(), extra_headers={"Idempotency-Key": "k1"})
    oa.chat.completions.create(model=MODEL_OA, messages=_user(), extra_headers={"Idempotency-Key": "k1"})
    oa.chat.completions.create(model=MODEL_OA, messages=_user(), metadata={"request_key": "k2"})
    an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user(), extra_headers={"X-Request-Key": "k3"})
    assert server.duplicate_keys() == {}  # a retry after a 429 is not a duplicate answer
    assert server.duplicate_keys(status=None) == {"k1": 2}
    an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user(), extra_headers={"X-Request-Key": "k3"})
    assert server.duplicate_keys() == {"k3": 2}
    log = server.requests
    assert [(r.method, r.path, r.status, r.request_key) for r in log[:2]] == [
        ("POST", "/v1/chat/completions", 429, "k1"),
        ("POST", "/v1/chat/completions", 200, "k1"),
    ]
    assert all(r.started <= r.finished and r.retry_count == 0 and r.prompt_hash for r in log)
    assert log[-1].provider == "anthropic" and log[-1].as_dict()["elapsed"] >= 0


def test_api_key_and_request_validation(server, oa):
    missing = httpx.post(f"{server.openai_base_url}/chat/completions", json={"model": "m", "messages": _user()})
    assert missing.status_code == 401 and "error" in missing.json()
    no_max = httpx.post(
        f"{server.anthropic_base_url}/v1/messages",
        headers={"x-api-key": "test", "anthropic-version": "2023-06-01"},
        json={"model": MODEL_AN, "messages": _user()},
    )
    assert no_max.status_code == 400 and no_max.json()["error"]["type"] == "invalid_request_error"
    with pytest.raises(openai.BadRequestError):
        oa.chat.completions.create(model=MODEL_OA, messages=[])
    with pytest.raises(openai.NotFoundError):
        oa.models.list()


# -- batches ----------------------------------------------------------------------------------------------------


def _batch_line(custom_id: str, prompt: str) -> str:
    body = {"model": MODEL_OA, "messages": _user(prompt), "max_tokens": 1000}
    return json.dumps(
        {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}, ensure_ascii=False
    )


def test_openai_batch_round_trip(server, oa):
    server.on_prompt("FAIL", "server_error")
    jsonl = "\n".join(
        _batch_line(f"q-{i}", f"법인세법 제{i}조 FAIL" if i == 2 else f"법인세법 제{i}조") for i in range(4)
    )
    uploaded = oa.files.create(file=("requests.jsonl", jsonl.encode("utf-8")), purpose="batch")
    assert uploaded.object == "file" and uploaded.purpose == "batch" and uploaded.bytes == len(jsonl.encode())
    batch = oa.batches.create(
        input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"run": "t"}
    )
    assert batch.status == "validating" and batch.object == "batch" and batch.input_file_id == uploaded.id
    statuses = [batch.status]
    while batch.status not in ("completed", "failed"):
        batch = oa.batches.retrieve(batch.id)
        statuses.append(batch.status)
    assert statuses == ["validating", "in_progress", "completed"]
    assert (batch.request_counts.total, batch.request_counts.completed, batch.request_counts.failed) == (4, 3, 1)
    assert batch.usage.total_tokens == batch.usage.input_tokens + batch.usage.output_tokens > 0
    lines = [json.loads(x) for x in oa.files.content(batch.output_file_id).text.splitlines()]
    assert sorted(x["custom_id"] for x in lines) == ["q-0", "q-1", "q-3"]
    for line in lines:
        assert set(line) == {"id", "custom_id", "response", "error"} and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"]
        body = line["response"]["body"]
        assert body["object"] == "chat.completion" and body["usage"]["total_tokens"] > 0
        number = line["custom_id"].split("-")[1]
        assert f"법인세법 제{number}조" in json.loads(body["choices"][0]["message"]["content"])["question"]
    (error_line,) = [json.loads(x) for x in oa.files.content(batch.error_file_id).text.splitlines()]
    assert error_line["custom_id"] == "q-2" and error_line["response"]["status_code"] == 500
    assert [b.id for b in oa.batches.list()] == [batch.id]
    assert sorted(r.custom_id for r in server.requests if r.method == "BATCH") == ["q-0", "q-1", "q-2", "q-3"]


def test_openai_batch_validation_failure(oa):
    bad = _batch_line("dup", "a") + "\n" + _batch_line("dup", "b") + "\nnot json\n"
    uploaded = oa.files.create(file=("bad.jsonl", bad.encode()), purpose="batch")
    batch = oa.batches.create(input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h")
    batch = oa.batches.retrieve(batch.id)
    assert batch.status == "failed"
    assert {e.code for e in batch.errors.data} == {"duplicate_custom_id", "invalid_json_line"}


def test_anthropic_batch_round_trip(server, an):
    server.on_prompt("FAIL", "overloaded")
    requests = [
        {
            "custom_id": f"r{i}",
            "params": {
                "model": MODEL_AN,
                "max_tokens": 1000,
                "messages": _user(f"지방세법 제{i}조{' FAIL' if i == 1 else ''}"),
            },
        }
        for i in range(3)
    ]
    batch = an.messages.batches.create(requests=requests)
    assert batch.type == "message_batch" and batch.processing_status == "in_progress"
    assert batch.request_counts.processing == 3 and batch.results_url is None
    batch = an.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "in_progress"
    batch = an.messages.batches.retrieve(batch.id)
    assert batch.processing_status == "ended" and batch.ended_at is not None
    counts = batch.request_counts
    assert (counts.processing, counts.succeeded, counts.errored) == (0, 2, 1)
    results = {r.custom_id: r.result for r in an.messages.batches.results(batch.id)}
    assert results["r1"].type == "errored" and results["r1"].error.error.type == "overloaded_error"
    for cid in ("r0", "r2"):
        message = results[cid].message
        assert results[cid].type == "succeeded" and message.stop_reason == "end_turn"
        assert message.usage.output_tokens > 0 and f"지방세법 제{cid[1]}조" in message.content[0].text


def test_anthropic_batch_cancel_and_delay():
    with FakeTeacherServer(batch_polls=0, batch_delay=60) as srv:
        an = anthropic.Anthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0)
        one = [{"custom_id": "a", "params": {"model": MODEL_AN, "max_tokens": 100, "messages": _user()}}]
        slow = an.messages.batches.create(requests=one)
        assert an.messages.batches.retrieve(slow.id).processing_status == "in_progress"  # polls are enough, time not
        srv.batch_delay = 0
        assert an.messages.batches.retrieve(slow.id).processing_status == "ended"
        cancelled = an.messages.batches.create(requests=one)
        assert an.messages.batches.cancel(cancelled.id).processing_status == "canceling"
        ended = an.messages.batches.retrieve(cancelled.id)
        assert ended.processing_status == "ended" and ended.request_counts.canceled == 1
        assert [r.result.type for r in an.messages.batches.results(cancelled.id)] == ["canceled"]


# -- async clients and concurrency ------------------------------------------------------------------------------


def test_async_clients(server):
    async def run():
        async with (
            openai.AsyncOpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0) as oa,
            anthropic.AsyncAnthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0) as an,
        ):
            server.script("ok", "rate_limit")
            completion = await oa.chat.completions.create(model=MODEL_OA, messages=_user())
            with pytest.raises(anthropic.RateLimitError):
                await an.messages.create(model=MODEL_AN, max_tokens=100, messages=_user())
            message = await an.messages.create(
                model=MODEL_AN, max_tokens=1000, messages=_user(), tools=[QA_TOOL], tool_choice={"type": "any"}
            )
            return completion, message

    completion, message = asyncio.run(run())
    assert json.loads(completion.choices[0].message.content)["answer"]
    assert message.stop_reason == "tool_use" and len(message.content[0].input["pairs"]) == 2


def test_100_concurrent_slow_requests_run_in_parallel():
    latency, n = 0.5, 100

    async def run(srv):
        async with (
            openai.AsyncOpenAI(base_url=srv.openai_base_url, api_key="test", max_retries=0) as oa,
            anthropic.AsyncAnthropic(base_url=srv.anthropic_base_url, api_key="test", max_retries=0) as an,
        ):
            calls = [oa.chat.completions.create(model=MODEL_OA, messages=_user(f"q{i}")) for i in range(n // 2)]
            calls += [
                an.messages.create(model=MODEL_AN, max_tokens=500, messages=_user(f"q{i}")) for i in range(n // 2)
            ]
            return await asyncio.gather(*calls)

    with FakeTeacherServer(latency=lambda req, provider: latency) as srv:
        start = time.monotonic()
        results = asyncio.run(run(srv))
        elapsed = time.monotonic() - start
        stats = srv.stats()
    assert len(results) == n and stats["answered"] == n
    assert elapsed < 0.2 * n * latency, elapsed  # serial would take n * latency = 50 s
    assert stats["max_in_flight"] >= 20  # ~100 when the machine is idle; the SDK's own CPU cost paces dispatch


def test_stop_closes_the_port():
    srv = FakeTeacherServer().start()
    port = srv.port
    srv.stop()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
    with pytest.raises(ValueError):
        FakeTeacherServer(host="0.0.0.0")


def test_default_responder_is_stable_and_variants_are_listed():
    req = {"model": "m", "messages": _user()}
    assert default_responder(req, "openai") == default_responder(dict(req), "openai")
    assert default_responder(req, "openai") != default_responder(
        {"model": "m", "messages": _user("다른 질문")}, "openai"
    )
    assert set(VARIANTS) >= {
        "ok",
        "english",
        "empty",
        "truncated",
        "malformed",
        "rate_limit",
        "server_error",
        "overloaded",
        "hang",
        "cut_body",
        "drop",
        "rate_limit_bare",
    }
