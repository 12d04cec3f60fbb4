"""`slm serve`: an OpenAI-compatible HTTP endpoint for a tuned model (base + adapter, merged directory or run).

Endpoints (the subset of the OpenAI API that chat clients use):
  POST /v1/chat/completions   `messages`, `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `stop`,
                              `stream` (server-sent events: `data: {chunk}\\n\\n` … `data: [DONE]\\n\\n`) with
                              `stream_options.include_usage`; `n` must be 1; other fields are ignored.
                              `model` may name anything ("gpt-4o", …): the one loaded model answers every request,
                              and responses carry the served model's name. So an app written for OpenAI switches by
                              changing only its base_url (and key).
  GET  /v1/models             the one served model (its id is `--model-name`, default the run or directory name)
  GET  /v1/models/{name}      that served model, whatever the name
  GET  /health                {"status": "ok"}
Errors use OpenAI's body shape `{"error": {"message", "type", "param", "code"}}`, so SDKs raise their usual exceptions.

Security and load:
- binds to 127.0.0.1 unless `--host` says otherwise (0.0.0.0 exposes the model to the network);
- `--api-key-env NAME`: every request must send `Authorization: Bearer <value of $NAME>`, else 401; the key is read
  from the environment at start-up and never logged;
- at most `--max-concurrent` generations run at once (default 1: on a CPU or a single GPU, parallel `generate` calls
  only slow each other down); further requests wait in a queue up to `--queue-timeout` seconds for a slot and are
  then refused with 429 and `Retry-After`, which the OpenAI SDKs retry on their own.

Backends: transformers (`TransformersEngine`, the tested path) always works; `vllm_engine` is used when vLLM is
importable and `--backend vllm|auto` asks for it. The vLLM path is NOT tested here (vLLM needs a CUDA GPU and is not
installed in CI); for heavy traffic, vLLM's own server (`vllm serve BASE --enable-lora --lora-modules tax=ADAPTER`)
is the better choice and speaks the same protocol.

The server is the standard library's ThreadingHTTPServer (one thread per connection; no extra dependency). It only
moves bytes: parsing, routes and bodies are in `fine_tuning.serve.openai_protocol`, the backends in
`fine_tuning.serve.engines`.
"""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from fine_tuning.serve.engines import Engine, TransformersEngine, vllm_available, vllm_engine
from fine_tuning.serve.openai_protocol import (
    MAX_BODY_BYTES,
    ChatRequest,
    RequestError,
    ServeSettings,
    busy_error,
    chat_events,
    chat_request,
    completion_body,
    get_response,
    new_request_id,
    parse_json_body,
    request_path,
    server_error,
)
from slm_forest.errors import SlmError
from slm_forest.progress import console

# Importable from here as before (`slm serve`, tests): the settings and the engines.
__all__ = [
    "ChatServer",
    "Engine",
    "ServeSettings",
    "TransformersEngine",
    "make_server",
    "run_in_thread",
    "serve",
    "vllm_available",
    "vllm_engine",
]


class ChatServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, engine: Engine, settings: ServeSettings) -> None:
        self.engine = engine
        self.settings = settings
        self.slots = threading.BoundedSemaphore(settings.max_concurrent)
        self.created = int(time.time())
        super().__init__((settings.host, settings.port), _Handler)

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}"


class _Handler(BaseHTTPRequestHandler):
    """Reads requests and writes responses; every decision is a function of `openai_protocol`."""

    server: ChatServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        if self.server.settings.log_requests:
            console.print(f"serve: {self.address_string()} {format % args}", highlight=False)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        try:
            body = get_response(
                request_path(self.path), self._authorization(), self.server.settings, self.server.created
            )
        except RequestError as error:
            self._send_error(error)
            return
        self._send_json(200, body)

    def do_POST(self) -> None:  # noqa: N802
        settings = self.server.settings
        try:
            body = self._read_body()  # always drain the body, so keep-alive connections stay in sync
            request = chat_request(request_path(self.path), self._authorization(), body, settings)
        except RequestError as error:
            self._send_error(error)
            return
        if not self.server.slots.acquire(timeout=settings.queue_timeout):
            self._send_error(*busy_error(settings))
            return
        try:
            self._answer(request)
        finally:
            self.server.slots.release()

    def _answer(self, request: ChatRequest) -> None:
        try:
            if request.stream:
                self._stream(request)
            else:
                completion = self.server.engine.complete(request.messages, request.generation)
                model = self.server.settings.model_name
                self._send_json(200, completion_body(completion, new_request_id(), int(time.time()), model))
        except SlmError as exc:
            self._send_error(RequestError(400, str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - one request failing must not stop the server
            error = server_error(exc)
            try:
                self._send_error(error)
            except OSError:
                pass

    def _stream(self, request: ChatRequest) -> None:
        stream = self.server.engine.stream(request.messages, request.generation)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the body is the end of the connection
        self.end_headers()
        self.close_connection = True
        events = chat_events(stream, self.server.settings.model_name, request.include_usage)
        try:
            for event in events:
                self.wfile.write(event)
                self.wfile.flush()
        except (BrokenPipeError, ConnectionResetError):
            stream.cancel()  # the client left: stop generating
            raise
        finally:
            events.close()

    # ------------------------------------------------------------------ plumbing
    def _authorization(self) -> str:
        return self.headers.get("Authorization", "")

    def _read_body(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        return parse_json_body(self.rfile.read(length) if length else b"")

    def _send_json(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> None:
        data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.end_headers()
        self.wfile.write(data)

    def _send_error(self, error: RequestError, headers: dict[str, str] | None = None) -> None:
        self._send_json(error.status, error.body(), headers)


def make_server(engine: Engine, settings: ServeSettings) -> ChatServer:
    """Bind (port 0 picks a free port); call `serve_forever()` on the result, or `run_in_thread` in tests."""
    try:
        return ChatServer(engine, settings)
    except OSError as exc:
        raise SlmError(
            f"cannot listen on {settings.host}:{settings.port} ({exc.strerror or exc})",
            "pick another --port, or stop the process using it",
        ) from None


def run_in_thread(server: ChatServer) -> threading.Thread:
    thread = threading.Thread(target=server.serve_forever, name="slm-serve", daemon=True)
    thread.start()
    return thread


def serve(engine: Engine, settings: ServeSettings) -> None:
    """Serve until Ctrl-C."""
    server = make_server(engine, settings)
    exposed = settings.host not in ("127.0.0.1", "localhost", "::1")
    console.print(
        f"[bold green]slm serve[/bold green]: {server.url}/v1 (model '{settings.model_name}', "
        f"{settings.max_concurrent} concurrent, API key {'required' if settings.api_key else 'not required'})"
        + (" [yellow]— listening beyond this machine[/yellow]" if exposed else "")
    )
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        console.print("serve: stopped")
    finally:
        server.server_close()
