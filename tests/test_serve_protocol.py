"""`slm serve`'s HTTP layer against stand-in engines (no model): the failure paths a real model rarely takes.

A generation that fails before or during a stream, a client that leaves mid-stream, bodies that are not JSON or too
big, unknown routes: each answered the way OpenAI's API answers, and the server keeps serving.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import httpx
import pytest

from fine_tuning.serve.generate import Completion
from fine_tuning.serve.http import ServeSettings, make_server, run_in_thread
from slm_forest.errors import SlmError

CHAT = {"messages": [{"role": "user", "content": "질문"}], "max_tokens": 5}


class _Stream:
    def __init__(self, pieces: list[str], fail_after: int | None, delay: float = 0.0) -> None:
        self.pieces, self.fail_after, self.delay = pieces, fail_after, delay
        self.completion: Completion | None = None
        self.cancelled = threading.Event()

    def __iter__(self):
        for i, piece in enumerate(self.pieces):
            if self.cancelled.is_set():
                return
            if self.fail_after is not None and i == self.fail_after:
                raise RuntimeError("device lost")
            time.sleep(self.delay)
            yield piece
        self.completion = Completion("".join(self.pieces), 3, len(self.pieces), "length")

    def cancel(self) -> None:
        self.cancelled.set()


class _Engine:
    def __init__(self, complete_error: Exception | None = None, **stream_args) -> None:
        self.complete_error, self.stream_args = complete_error, stream_args
        self.streams: list[_Stream] = []

    def complete(self, messages, settings):
        if self.complete_error is not None:
            raise self.complete_error
        return Completion("답변", 3, 1, "stop")

    def stream(self, messages, settings):
        stream = _Stream(**self.stream_args)
        self.streams.append(stream)
        return stream


@pytest.fixture
def serve_with():
    servers = []

    def start(engine: _Engine):
        server = make_server(engine, ServeSettings(port=0, model_name="m", log_requests=False))
        run_in_thread(server)
        servers.append(server)
        return server.url

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def _events(response: httpx.Response) -> list[str]:
    return [line[len("data: ") :] for line in response.text.split("\n\n") if line.startswith("data: ")]


def test_a_failure_mid_stream_is_reported_in_band_then_done(serve_with):
    url = serve_with(_Engine(pieces=["가", "나", "다"], fail_after=2))
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT | {"stream": True}, timeout=10)
    events = _events(response)
    assert response.status_code == 200 and events[-1] == "[DONE]"
    assert [json.loads(e)["choices"][0]["delta"] for e in events[:3]] == [
        {"role": "assistant", "content": ""},
        {"content": "가"},
        {"content": "나"},
    ]
    assert json.loads(events[3]) == {
        "error": {"message": "generation failed: RuntimeError", "type": "server_error", "param": None, "code": None}
    }
    assert len(events) == 5


def test_a_finished_stream_ends_with_finish_reason_usage_and_done(serve_with):
    url = serve_with(_Engine(pieces=["가", "나"], fail_after=None))
    body = CHAT | {"stream": True, "stream_options": {"include_usage": True}}
    events = _events(httpx.post(f"{url}/v1/chat/completions", json=body, timeout=10))
    assert json.loads(events[-3])["choices"][0]["finish_reason"] == "length"
    usage = json.loads(events[-2])
    assert usage["choices"] == [] and usage["usage"] == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
    assert events[-1] == "[DONE]"


def test_a_client_leaving_mid_stream_cancels_the_generation(serve_with):
    engine = _Engine(pieces=["조각"] * 2000, fail_after=None, delay=0.002)
    url = serve_with(engine)
    host, port = url.removeprefix("http://").split(":")
    payload = json.dumps(CHAT | {"stream": True}).encode()
    with socket.create_connection((host, int(port)), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Content-Length: {len(payload)}\r\n\r\n".encode()
            + payload
        )
        assert b"200" in sock.recv(1024)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST on close
    for _ in range(200):
        if engine.streams and engine.streams[0].cancelled.is_set():
            break
        time.sleep(0.02)
    assert engine.streams[0].cancelled.is_set()
    assert httpx.get(f"{url}/health", timeout=10).json() == {"status": "ok"}  # still serving


@pytest.mark.parametrize(
    ("error", "status", "message"),
    [(SlmError("bad prompt", "fix it"), 400, "bad prompt"), (RuntimeError("boom"), 500, "generation failed")],
)
def test_a_failed_generation_is_an_openai_error_and_the_server_goes_on(serve_with, error, status, message):
    url = serve_with(_Engine(complete_error=error, pieces=[], fail_after=None))
    response = httpx.post(f"{url}/v1/chat/completions", json=CHAT, timeout=10)
    assert response.status_code == status and message in response.json()["error"]["message"]
    assert httpx.get(f"{url}/v1/models", timeout=10).json()["data"][0]["id"] == "m"


def test_bad_bodies_and_routes(serve_with):
    url = serve_with(_Engine(pieces=[], fail_after=None))
    not_json = httpx.post(f"{url}/v1/chat/completions", content=b"{nope", timeout=10)
    assert not_json.status_code == 400 and "not valid JSON" in not_json.json()["error"]["message"]
    not_object = httpx.post(f"{url}/v1/chat/completions", json=[1], timeout=10)
    assert not_object.status_code == 400 and "JSON object" in not_object.json()["error"]["message"]
    too_big = httpx.post(f"{url}/v1/chat/completions", content=b" " * (4 * 1024 * 1024 + 1), timeout=10)
    assert too_big.status_code == 413
    assert httpx.post(f"{url}/v1/completions", json=CHAT, timeout=10).json()["error"]["code"] == "not_found"
    assert httpx.get(f"{url}/v2/x?y=1", timeout=10).json()["error"]["message"] == "no route GET /v2/x"
    unknown = httpx.get(f"{url}/v1/models/anything/", timeout=10)
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "model_not_found"
    assert httpx.get(f"{url}/v1/models/m/", timeout=10).json()["id"] == "m"
    wrong_model = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": "gpt-4o"}, timeout=10)
    assert wrong_model.status_code == 404 and wrong_model.json()["error"]["param"] == "model"
    not_a_name = httpx.post(f"{url}/v1/chat/completions", json={**CHAT, "model": 3}, timeout=10)
    assert not_a_name.status_code == 400
    ok = httpx.post(f"{url}/v1/chat/completions?x=1", json=CHAT, timeout=10).json()
    assert ok["object"] == "chat.completion" and ok["choices"][0]["message"]["content"] == "답변"
