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

The server is the standard library's ThreadingHTTPServer (one thread per connection; no extra dependency).
"""

from __future__ import annotations

import hmac
import json
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Protocol

from slm_forest.errors import SlmError
from slm_forest.progress import console

MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "slm"
    api_key: str | None = None
    max_concurrent: int = 1
    queue_timeout: float = 30.0
    default_max_tokens: int = 512
    max_tokens_limit: int = 4096
    log_requests: bool = True


class Engine(Protocol):
    """What the HTTP layer needs from a model backend."""

    def complete(self, messages: list[dict[str, str]], settings: Any) -> Any: ...

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Any: ...


# ------------------------------------------------------------------------------------------------------ engines
class TransformersEngine:
    """Generation with transformers (`fine_tuning.serve.generate`): CPU or one GPU, streaming via TextIteratorStreamer."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    def _messages(self, messages: list[dict[str, str]], max_new_tokens: int) -> list[dict[str, str]]:
        from fine_tuning.serve.generate import fit_history, with_system

        full = with_system(messages, self.loaded.system_prompt)
        limit = self.loaded.max_positions
        return fit_history(self.loaded.tokenizer, full, limit - max_new_tokens if limit else None)

    def complete(self, messages: list[dict[str, str]], settings: Any) -> Any:
        from fine_tuning.serve.generate import generate_batch

        convo = self._messages(messages, settings.max_new_tokens)
        return generate_batch(self.loaded.model, self.loaded.tokenizer, [convo], settings, self.loaded.stop_ids)[0]

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Any:
        from fine_tuning.serve.generate import stream_generate

        convo = self._messages(messages, settings.max_new_tokens)
        return stream_generate(self.loaded.model, self.loaded.tokenizer, convo, settings, self.loaded.stop_ids)


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_engine(source: Any, system_prompt: str | None) -> Engine:  # pragma: no cover - needs vLLM and a CUDA GPU
    """A vLLM backend (offline `LLM` with a LoRA request). NOT TESTED in this project: no GPU and no vLLM in CI.

    Streaming is emulated (the whole answer arrives as one chunk); use `vllm serve` for token streaming at scale.
    """
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from fine_tuning.serve.generate import Completion, with_system

    if source.kind == "train":
        train_dir = Path(source.model)
        summary = json.loads((train_dir / "train_summary.json").read_text(encoding="utf-8"))
        base = summary["base_model_path"]
        adapter, tokenizer = str(train_dir / "adapter"), str(train_dir / "tokenizer")
    else:
        base, adapter, tokenizer = source.model, source.adapter, source.tokenizer or source.model
    llm = LLM(model=base, tokenizer=tokenizer, enable_lora=adapter is not None, dtype="bfloat16")
    lora = LoRARequest("slm", 1, adapter) if adapter else None

    class _Vllm:
        def complete(self, messages: list[dict[str, str]], settings: Any) -> Completion:
            params = SamplingParams(
                max_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                stop=list(settings.stop) or None,
            )
            out = llm.chat(with_system(messages, system_prompt), params, lora_request=lora, use_tqdm=False)[0]
            choice = out.outputs[0]
            return Completion(
                choice.text.strip(), len(out.prompt_token_ids), len(choice.token_ids), choice.finish_reason or "stop"
            )

        def stream(self, messages: list[dict[str, str]], settings: Any) -> Any:
            completion = self.complete(messages, settings)

            class _One:
                def __init__(self) -> None:
                    self.completion = completion

                def __iter__(self) -> Iterator[str]:
                    yield completion.text

                def cancel(self) -> None:
                    return None

            return _One()

    return _Vllm()


# ---------------------------------------------------------------------------------------------------- requests
class RequestError(Exception):
    def __init__(
        self,
        status: int,
        message: str,
        code: str | None = None,
        param: str | None = None,
        kind: str = "invalid_request_error",
    ) -> None:
        super().__init__(message)
        self.status, self.message, self.code, self.param, self.kind = status, message, code, param, kind

    def body(self) -> dict[str, Any]:
        return {"error": {"message": self.message, "type": self.kind, "param": self.param, "code": self.code}}


def _text_content(content: Any, index: int) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": "..."}]
        parts = []
        for part in content:
            if not isinstance(part, dict) or part.get("type") != "text":
                raise RequestError(400, f"messages[{index}].content: only text parts are supported", param="messages")
            parts.append(str(part.get("text", "")))
        return "".join(parts)
    raise RequestError(400, f"messages[{index}].content must be a string", param="messages")


def parse_chat_request(body: dict[str, Any], settings: ServeSettings) -> tuple[list[dict[str, str]], Any, bool, bool]:
    """(messages, GenerationSettings, stream, include_usage) from a chat completion request body."""
    from fine_tuning.serve.generate import GenerationSettings

    raw = body.get("messages")
    if not isinstance(raw, list) or not raw:
        raise RequestError(400, "'messages' must be a non-empty list", param="messages")
    messages: list[dict[str, str]] = []
    for index, message in enumerate(raw):
        role = message.get("role") if isinstance(message, dict) else None
        if role == "developer":
            role = "system"
        if role not in ("system", "user", "assistant"):
            raise RequestError(400, f"messages[{index}].role must be system, user or assistant", param="messages")
        messages.append({"role": role, "content": _text_content(message.get("content"), index)})
    if messages[-1]["role"] != "user":
        raise RequestError(400, "the last message must come from the user", param="messages")
    # `model` is not checked: whatever name the client sends (its old "gpt-4o", the served name, none), the one
    # loaded model answers, and the response names the served model.
    n = body.get("n", 1)
    if n not in (1, None):
        raise RequestError(400, "only n=1 is supported", param="n")
    max_tokens = body.get("max_completion_tokens") or body.get("max_tokens") or settings.default_max_tokens
    if not isinstance(max_tokens, int) or max_tokens < 1 or max_tokens > settings.max_tokens_limit:
        raise RequestError(
            400, f"max_tokens must be an integer from 1 to {settings.max_tokens_limit}", param="max_tokens"
        )
    temperature = body.get("temperature", 0.0)
    top_p = body.get("top_p", 1.0)
    if temperature is None:
        temperature = 0.0
    if top_p is None:
        top_p = 1.0
    if not isinstance(temperature, (int, float)) or not 0 <= temperature <= 2:
        raise RequestError(400, "temperature must be between 0 and 2", param="temperature")
    if not isinstance(top_p, (int, float)) or not 0 < top_p <= 1:
        raise RequestError(400, "top_p must be in (0, 1]", param="top_p")
    stop = body.get("stop") or []
    if isinstance(stop, str):
        stop = [stop]
    if not isinstance(stop, list) or not all(isinstance(s, str) for s in stop) or len(stop) > 4:
        raise RequestError(400, "stop must be a string or a list of up to 4 strings", param="stop")
    stream = bool(body.get("stream", False))
    include_usage = bool((body.get("stream_options") or {}).get("include_usage", False))
    generation = GenerationSettings(
        max_new_tokens=max_tokens, temperature=float(temperature), top_p=float(top_p), stop=tuple(s for s in stop if s)
    )
    return messages, generation, stream, include_usage


def completion_body(completion: Any, request_id: str, created: int, model: str) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": completion.text},
                "finish_reason": completion.finish_reason,
                "logprobs": None,
            }
        ],
        "usage": usage_body(completion),
    }


def usage_body(completion: Any) -> dict[str, int]:
    return {
        "prompt_tokens": completion.prompt_tokens,
        "completion_tokens": completion.completion_tokens,
        "total_tokens": completion.prompt_tokens + completion.completion_tokens,
    }


def chunk_body(request_id: str, created: int, model: str, delta: dict[str, Any], finish: str | None) -> dict[str, Any]:
    return {
        "id": request_id,
        "object": "chat.completion.chunk",
        "created": created,
        "model": model,
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}],
    }


# ------------------------------------------------------------------------------------------------------- server
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
    server: ChatServer
    protocol_version = "HTTP/1.1"

    # ------------------------------------------------------------------ plumbing
    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - signature of the base class
        if self.server.settings.log_requests:
            console.print(f"serve: {self.address_string()} {format % args}", highlight=False)

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

    def _authorised(self) -> bool:
        key = self.server.settings.api_key
        if not key:
            return True
        header = self.headers.get("Authorization", "")
        given = header[7:].strip() if header.lower().startswith("bearer ") else ""
        return hmac.compare_digest(given.encode(), key.encode())

    def _read_json(self) -> dict[str, Any]:
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
        raw = self.rfile.read(length) if length else b""
        try:
            body = json.loads(raw or b"{}")
        except json.JSONDecodeError as exc:
            raise RequestError(400, f"the body is not valid JSON ({exc.msg})") from None
        if not isinstance(body, dict):
            raise RequestError(400, "the body must be a JSON object")
        return body

    # ------------------------------------------------------------------ routes
    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        path = self.path.split("?", 1)[0].rstrip("/")
        if path == "/health":
            self._send_json(200, {"status": "ok"})
            return
        if not self._authorised():
            self._send_error(
                RequestError(401, "missing or wrong API key (Authorization: Bearer …)", code="invalid_api_key")
            )
            return
        model = {
            "id": self.server.settings.model_name,
            "object": "model",
            "created": self.server.created,
            "owned_by": "slm-forest",
        }
        if path == "/v1/models":
            self._send_json(200, {"object": "list", "data": [model]})
            return
        if path.startswith("/v1/models/"):  # any name resolves to the served model, as chat requests do
            self._send_json(200, model)
            return
        self._send_error(RequestError(404, f"no route GET {path}", code="not_found"))

    def do_POST(self) -> None:  # noqa: N802
        path = self.path.split("?", 1)[0].rstrip("/")
        try:
            body = self._read_json()  # always drain the body, so keep-alive connections stay in sync
            if not self._authorised():
                raise RequestError(401, "missing or wrong API key (Authorization: Bearer …)", code="invalid_api_key")
            if path != "/v1/chat/completions":
                raise RequestError(404, f"no route POST {path}", code="not_found")
            messages, generation, stream, include_usage = parse_chat_request(body, self.server.settings)
        except RequestError as error:
            self._send_error(error)
            return
        settings = self.server.settings
        if not self.server.slots.acquire(timeout=settings.queue_timeout):
            wait = max(1, int(settings.queue_timeout) or 1)
            self._send_error(
                RequestError(
                    429,
                    f"all {settings.max_concurrent} generation slot(s) busy; retry later",
                    code="rate_limit_exceeded",
                    kind="rate_limit_error",
                ),
                {"Retry-After": str(wait)},
            )
            return
        try:
            if stream:
                self._stream(messages, generation, include_usage)
            else:
                completion = self.server.engine.complete(messages, generation)
                self._send_json(200, completion_body(completion, _request_id(), int(time.time()), settings.model_name))
        except SlmError as exc:
            self._send_error(RequestError(400, str(exc)))
        except (BrokenPipeError, ConnectionResetError):
            pass
        except Exception as exc:  # noqa: BLE001 - one request failing must not stop the server
            console.print(f"[red]serve: generation failed: {type(exc).__name__}: {exc}[/red]")
            try:
                self._send_error(RequestError(500, f"generation failed: {type(exc).__name__}", kind="server_error"))
            except OSError:
                pass
        finally:
            self.server.slots.release()

    def _stream(self, messages: list[dict[str, str]], generation: Any, include_usage: bool) -> None:
        model = self.server.settings.model_name
        request_id, created = _request_id(), int(time.time())
        stream = self.server.engine.stream(messages, generation)
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Connection", "close")  # the end of the body is the end of the connection
        self.end_headers()
        self.close_connection = True

        def send(payload: dict[str, Any] | str) -> None:
            data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
            self.wfile.write(f"data: {data}\n\n".encode())
            self.wfile.flush()

        try:
            send(chunk_body(request_id, created, model, {"role": "assistant", "content": ""}, None))
            for piece in stream:
                send(chunk_body(request_id, created, model, {"content": piece}, None))
        except (BrokenPipeError, ConnectionResetError):
            stream.cancel()  # the client left: stop generating
            raise
        except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, as OpenAI does
            console.print(f"[red]serve: generation failed mid-stream: {type(exc).__name__}: {exc}[/red]")
            send(RequestError(500, f"generation failed: {type(exc).__name__}", kind="server_error").body())
            send("[DONE]")
            return
        completion = stream.completion
        send(chunk_body(request_id, created, model, {}, completion.finish_reason if completion else "stop"))
        if include_usage and completion is not None:
            send(
                {
                    "id": request_id,
                    "object": "chat.completion.chunk",
                    "created": created,
                    "model": model,
                    "choices": [],
                    "usage": usage_body(completion),
                }
            )
        send("[DONE]")


def _request_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


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
