"""`slm serve` on the tiny trained run, answered through the real `openai` SDK (plain and streaming)."""

from __future__ import annotations

import httpx
import openai
import pytest

from fine_tuning.serve.generate import GenerationSettings, resolve_source
from fine_tuning.serve.http import ServeSettings, TransformersEngine, make_server, run_in_thread
from tests.test_evaluate_tiny import copy_run, tiny_run

KEY = "test-serve-key-0123456789"
QUESTION = "부가가치세 확정신고는 언제까지 해야 하나요?"


@pytest.fixture(scope="module")
def loaded(tmp_path_factory):
    from fine_tuning.serve.generate import load_model

    run = copy_run(tiny_run(tmp_path_factory), tmp_path_factory.mktemp("serve"), "served")
    return load_model(resolve_source(run="served", runs_dir=run.parent), device="cpu")


@pytest.fixture(scope="module")
def server(loaded):
    server = make_server(
        TransformersEngine(loaded),
        ServeSettings(
            port=0, model_name="tiny-tax", aliases=("gpt-4o",), api_key=KEY, queue_timeout=0.2, log_requests=False
        ),
    )
    run_in_thread(server)
    yield server
    server.shutdown()
    server.server_close()


@pytest.fixture
def client(server):
    return openai.OpenAI(base_url=f"{server.url}/v1", api_key=KEY, max_retries=0, timeout=60)


def _expected(loaded, max_new_tokens=20, stop=()):
    from fine_tuning.serve.generate import generate_batch, with_system

    convo = with_system([{"role": "user", "content": QUESTION}], loaded.system_prompt)
    settings = GenerationSettings(max_new_tokens=max_new_tokens, stop=stop)
    return generate_batch(loaded.model, loaded.tokenizer, [convo], settings, loaded.stop_ids)[0]


def test_binds_to_localhost_by_default(server):
    assert ServeSettings().host == "127.0.0.1"
    assert server.server_address[0] == "127.0.0.1"


def test_chat_completion_through_the_openai_sdk(client, loaded):
    expected = _expected(loaded)
    response = client.chat.completions.create(
        model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, temperature=0
    )
    choice = response.choices[0]
    assert choice.message.role == "assistant" and choice.message.content == expected.text
    assert choice.finish_reason == expected.finish_reason
    assert response.model == "tiny-tax" and response.id.startswith("chatcmpl-")
    assert response.usage.completion_tokens == expected.completion_tokens
    assert response.usage.total_tokens == response.usage.prompt_tokens + response.usage.completion_tokens
    assert [m.id for m in client.models.list().data] == ["tiny-tax", "gpt-4o"]  # the id, then the alias


def test_streaming_through_the_openai_sdk(client, loaded):
    expected = _expected(loaded)
    stream = client.chat.completions.create(
        model="tiny-tax",
        messages=[{"role": "user", "content": QUESTION}],
        max_tokens=20,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text.strip() == expected.text
    assert len([c for c in chunks if c.choices and c.choices[0].delta.content]) > 1  # really streamed, piece by piece
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == [expected.finish_reason]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == expected.completion_tokens


def test_raw_sse_framing_ends_with_done(server):
    body = {"model": "tiny-tax", "messages": [{"role": "user", "content": QUESTION}], "max_tokens": 5, "stream": True}
    with httpx.stream(
        "POST", f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    ) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        raw = response.read().decode()
    events = [e for e in raw.split("\n\n") if e]
    assert all(e.startswith("data: ") for e in events)
    assert events[-1] == "data: [DONE]"


def test_stop_strings_cut_the_answer(client, loaded):
    full = _expected(loaded).text
    assert len(full) > 4
    stop = full[3:5]
    response = client.chat.completions.create(
        model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, stop=[stop]
    )
    content = response.choices[0].message.content
    assert stop not in content and full.startswith(content) and response.choices[0].finish_reason == "stop"
    # streamed: the text before the stop string arrives, the stop string (even split over pieces) does not
    chunks = client.chat.completions.create(
        model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, stop=[stop], stream=True
    )
    streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert streamed.strip() == content


def test_served_names_answer_and_unknown_models_are_404_model_not_found(client, server, loaded):
    """As OpenAI and vLLM: a served name (id or `--served-model-name` alias) answers, any other name is a 404
    `model_not_found` the SDK raises as NotFoundError; an app written for GPT-4o switches by serving under its name."""
    expected = _expected(loaded)
    for name in ("tiny-tax", "gpt-4o"):
        response = client.chat.completions.create(
            model=name, messages=[{"role": "user", "content": QUESTION}], max_tokens=20, temperature=0
        )
        assert response.choices[0].message.content == expected.text
        assert response.model == "tiny-tax"  # the response names what really answered, as OpenAI resolves aliases
    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": QUESTION}], max_tokens=20, stream=True
    )
    chunks = list(stream)
    assert {c.model for c in chunks} == {"tiny-tax"}
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip() == expected.text
    for streaming in (False, True):
        with pytest.raises(openai.NotFoundError) as info:
            client.chat.completions.create(
                model="gpt-5", messages=[{"role": "user", "content": QUESTION}], max_tokens=5, stream=streaming
            )
        assert info.value.status_code == 404 and info.value.code == "model_not_found"
        assert "gpt-5" in info.value.message
    body = {"messages": [{"role": "user", "content": QUESTION}], "max_tokens": 5}  # no model at all: the served one
    raw = httpx.post(
        f"{server.url}/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {KEY}"}, timeout=60
    )
    assert raw.status_code == 200 and raw.json()["model"] == "tiny-tax"
    assert [m.id for m in client.models.list().data] == ["tiny-tax", "gpt-4o"]
    assert client.models.retrieve("gpt-4o").id == "gpt-4o"
    with pytest.raises(openai.NotFoundError) as info:
        client.models.retrieve("gpt-5")
    assert info.value.code == "model_not_found"


def test_errors_use_openai_shapes(server, client):
    wrong_key = openai.OpenAI(base_url=f"{server.url}/v1", api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        wrong_key.chat.completions.create(model="tiny-tax", messages=[{"role": "user", "content": QUESTION}])
    with pytest.raises(openai.AuthenticationError):
        wrong_key.models.list()
    with pytest.raises(openai.BadRequestError, match="last message"):
        client.chat.completions.create(model="tiny-tax", messages=[{"role": "assistant", "content": "hi"}])
    with pytest.raises(openai.BadRequestError, match="max_tokens"):
        client.chat.completions.create(
            model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=10**6
        )
    assert httpx.get(f"{server.url}/health").json() == {"status": "ok"}  # no key needed for the health check


def test_busy_server_answers_429_after_the_queue_timeout(server, client):
    assert server.slots.acquire(timeout=5)  # occupy the only generation slot
    try:
        with pytest.raises(openai.RateLimitError) as info:
            client.chat.completions.create(
                model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=4
            )
        assert info.value.response.headers["Retry-After"] == "1"
    finally:
        server.slots.release()
    ok = client.chat.completions.create(
        model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=4
    )
    assert ok.choices[0].finish_reason in ("stop", "length")


def test_concurrent_requests_share_the_model(loaded):
    """Two generation slots, four simultaneous clients: every answer equals the one computed alone."""
    from concurrent.futures import ThreadPoolExecutor

    server = make_server(
        TransformersEngine(loaded),
        ServeSettings(port=0, model_name="tiny-tax", max_concurrent=2, queue_timeout=60, log_requests=False),
    )
    run_in_thread(server)
    try:
        client = openai.OpenAI(base_url=f"{server.url}/v1", api_key="unused", max_retries=0, timeout=60)

        def ask(_: int) -> str:
            response = client.chat.completions.create(
                model="tiny-tax", messages=[{"role": "user", "content": QUESTION}], max_tokens=20
            )
            return response.choices[0].message.content

        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(ask, range(4)))
    finally:
        server.shutdown()
        server.server_close()
    assert answers == [_expected(loaded).text] * 4


def test_serve_command_refuses_a_missing_key_variable_or_backend(monkeypatch, tmp_path, tmp_path_factory):
    import typer
    from typer.testing import CliRunner

    from fine_tuning.serve.ask_cli import serve
    from slm_forest.errors import SlmError

    app = typer.Typer()
    app.command()(serve)
    monkeypatch.delenv("SLM_SERVE_KEY", raising=False)
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    result = CliRunner().invoke(app, ["--run", run.name, "--runs-dir", str(tmp_path), "--api-key-env", "SLM_SERVE_KEY"])
    assert isinstance(result.exception, SlmError) and "SLM_SERVE_KEY" in str(result.exception)
    result = CliRunner().invoke(app, ["--run", run.name, "--runs-dir", str(tmp_path), "--backend", "vllm"])
    assert isinstance(result.exception, SlmError) and "vLLM is not installed" in str(result.exception)
