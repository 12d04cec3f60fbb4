"""`slm serve`: an OpenAI-compatible HTTP endpoint for a tuned model (base + adapter, merged directory or run).

Endpoints (the subset of the OpenAI API that chat clients use):
  POST /v1/chat/completions   `messages`, `max_tokens` / `max_completion_tokens`, `temperature`, `top_p`, `stop`,
                              `stream` (server-sent events: `data: {chunk}\\n\\n` … `data: [DONE]\\n\\n`) with
                              `stream_options.include_usage`; `n` must be 1; other fields are ignored.
                              `model` must be a served name: the model's id or an alias, as given by
                              `--served-model-name` (repeatable; the first is the id, default the run or file name),
                              else 404 `model_not_found` as OpenAI and vLLM answer; no `model` means the served one.
                              An app written for OpenAI switches by changing its base_url and key, and by serving
                              under its old name: `--served-model-name slm-tax --served-model-name gpt-4o`.
                              Responses carry the id (OpenAI also answers with the model an alias resolved to).
  GET  /v1/models             every served name
  GET  /v1/models/{name}      that name, or 404 `model_not_found`
  GET  /health                {"status": "ok"}
Errors use OpenAI's body shape `{"error": {"message", "type", "param", "code"}}`, so SDKs raise their usual exceptions.

Security and load:
- binds to 127.0.0.1 unless `--host` says otherwise (0.0.0.0 exposes the model to the network);
- `--api-key-env NAME`: every request must send `Authorization: Bearer <value of $NAME>`, else 401; the key is read
  from the environment at start-up and never logged;
- at most `--max-concurrent` generations run at once (default 1: on a CPU or a single GPU, parallel `generate` calls
  only slow each other down); further requests wait in a queue up to `--queue-timeout` seconds for a slot and are
  then refused with 429 and `Retry-After`, which the OpenAI SDKs retry on their own.

Backends: transformers (`TransformersEngine`) always works; a `.gguf` file runs on llama-cpp-python
(`fine_tuning.serve.gguf_engine`, one generation at a time); `vllm_engine` is used when vLLM is
importable and `--backend vllm|auto` asks for it. The vLLM path is NOT tested here (vLLM needs a CUDA GPU and is not
installed in CI); for heavy traffic, vLLM's own server (`vllm serve BASE --enable-lora --lora-modules tax=ADAPTER`)
is the better choice and speaks the same protocol.

Retrieval: `--retrieve K` gives every request the top K articles of the run's index (or `--index DIR`) in its
last user message; a request's `retrieval` field changes that for itself, and the response carries the articles
and the citation check in a `retrieval` field (see `fine_tuning.serve.openai_protocol` for both shapes).

The server is FastAPI on uvicorn (`slm_forest.local_server`, shared with `slm review`): blocking generation runs in
the thread pool, one generation slot per `--max-concurrent`. It only moves bytes: parsing, routes and bodies are in
`fine_tuning.serve.openai_protocol`, the backends in `fine_tuning.serve.engines`.
"""

from __future__ import annotations

import threading
import time
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

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
from slm_forest.local_server import LOCAL_HOSTS, LocalServer
from slm_forest.progress import console

# Importable from here as before (`slm serve`, tests): the settings and the engines.
__all__ = [
    "ChatServer",
    "Engine",
    "ServeSettings",
    "TransformersEngine",
    "make_app",
    "make_server",
    "run_in_thread",
    "serve",
    "vllm_available",
    "vllm_engine",
]


class ChatServer(LocalServer):
    """The served model behind its generation slots, on uvicorn."""

    def __init__(self, engine: Engine, settings: ServeSettings) -> None:
        self.engine = engine
        self.retriever = settings.retriever  # fine_tuning.serve.retrieval.Retriever when started with --retrieve
        self.settings = settings
        self.slots = threading.BoundedSemaphore(settings.max_concurrent)
        self.created = int(time.time())
        super().__init__(make_app(self), settings.host, settings.port, log_requests=settings.log_requests)


def _json(status: int, body: dict[str, Any], headers: dict[str, str] | None = None) -> Any:
    return JSONResponse(body, status_code=status, headers=headers)


def _error(error: RequestError, headers: dict[str, str] | None = None) -> Any:
    return _json(error.status, error.body(), headers)


async def _read_body(request: Any) -> dict[str, Any]:
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise RequestError(413, f"request body over {MAX_BODY_BYTES} bytes")
    return parse_json_body(raw)


def make_app(server: ChatServer) -> Any:
    """The FastAPI app: every route is one catch-all that hands the path to `openai_protocol`."""
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.get("/{path:path}")
    async def get(path: str, request: Request) -> Any:
        try:
            body = get_response(
                request_path("/" + path), request.headers.get("authorization", ""), server.settings, server.created
            )
        except RequestError as error:
            return _error(error)
        return _json(200, body)

    @app.post("/{path:path}")
    async def post(path: str, request: Request) -> Any:
        settings = server.settings
        try:
            body = await _read_body(request)  # always read the body, so keep-alive connections stay in sync
            chat = chat_request(request_path("/" + path), request.headers.get("authorization", ""), body, settings)
            messages, retrieved = await _retrieve(server, chat)
        except RequestError as error:
            return _error(error)
        if not await run_in_threadpool(server.slots.acquire, timeout=settings.queue_timeout):
            return _error(*busy_error(settings))
        if chat.stream:
            return _stream(server, chat, messages, retrieved)  # the stream releases the slot when it ends
        try:
            completion = await run_in_threadpool(server.engine.complete, messages, chat.generation)
            extra = None if retrieved is None else retrieved.checked(completion.text).model_dump(mode="json")
            return _json(
                200, completion_body(completion, new_request_id(), int(time.time()), settings.model_name, extra)
            )
        except SlmError as exc:
            return _error(RequestError(400, str(exc)))
        except Exception as exc:  # noqa: BLE001 - one request failing must not stop the server
            return _error(server_error(exc))
        finally:
            server.slots.release()

    return app


async def _retrieve(server: ChatServer, chat: ChatRequest) -> tuple[list[dict[str, str]], Any]:
    """The messages to generate from (the articles before the last question when the request retrieves)."""
    if chat.retrieval is None or server.retriever is None:
        return chat.messages, None
    from fine_tuning.serve.retrieval import retrieve  # noqa: PLC0415

    try:
        return await run_in_threadpool(
            retrieve, server.retriever, chat.messages, chat.retrieval.k, chat.retrieval.as_of
        )
    except SlmError as exc:
        raise RequestError(400, str(exc), param="retrieval") from None


def _stream(server: ChatServer, chat: ChatRequest, messages: list[dict[str, str]], retrieved: Any) -> Any:
    try:
        stream = server.engine.stream(messages, chat.generation)
    except Exception as exc:  # noqa: BLE001 - before the headers: an ordinary error response
        server.slots.release()
        return _error(RequestError(400, str(exc)) if isinstance(exc, SlmError) else server_error(exc))
    events = chat_events(stream, server.settings.model_name, chat.include_usage, retrieved)

    async def body() -> AsyncIterator[bytes]:
        finished = False
        try:
            while (event := await run_in_threadpool(next, events, None)) is not None:
                yield event
            finished = True
        finally:
            if not finished:
                stream.cancel()  # the client left (the response task was cancelled): stop generating
            server.slots.release()

    headers = {"Cache-Control": "no-cache"}
    return StreamingResponse(body(), media_type="text/event-stream; charset=utf-8", headers=headers)


def make_server(engine: Engine, settings: ServeSettings) -> ChatServer:
    """Bind (port 0 picks a free port); call `serve_forever()` on the result, or `run_in_thread` in tests."""
    return ChatServer(engine, settings)


def run_in_thread(server: ChatServer) -> threading.Thread:
    return server.run_in_thread()


def serve(engine: Engine, settings: ServeSettings) -> None:
    """Serve until Ctrl-C."""
    server = make_server(engine, settings)
    exposed = settings.host not in LOCAL_HOSTS
    console.print(
        f"[bold green]slm serve[/bold green]: {server.url}/v1 (model '{settings.model_name}', "
        f"{settings.max_concurrent} concurrent, API key {'required' if settings.api_key else 'not required'})"
        + (" [yellow]— listening beyond this machine[/yellow]" if exposed else "")
    )
    if server.retriever is not None:
        console.print(f"serve: --retrieve {server.retriever.k} over {server.retriever.index.path}")
    try:
        server.serve_forever()
    finally:
        server.server_close()
        console.print("serve: stopped")
