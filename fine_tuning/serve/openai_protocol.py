"""The OpenAI chat-completions protocol without a transport: request parsing, response and event bodies, routes.

Retrieval (`slm serve --retrieve K`): a request's `retrieval` field is an extension (the OpenAI SDKs send it with
`extra_body={"retrieval": {...}}`): absent or `true` = the server's K and the law in force today, `false` = none for
this request, `{"k": 3, "as_of": "2025-01-01"}` = its own K and date. A server started without --retrieve refuses
the field with 400. The response carries a top-level `retrieval` object (the SDKs keep unknown fields:
`response.retrieval` or `response.model_extra["retrieval"]`): `as_of`, `articles` [{rank, citation, title,
effective_date, in_force, match}], `missing`, and `citation_check` {cited_and_retrieved, cited_not_retrieved}.
Streamed, the first chunk carries it with the articles and the finishing chunk with the check.

Every function here takes plain values (a path, an Authorization header, a JSON body) and returns bodies or raises
`RequestError`, so the HTTP layer (`fine_tuning.serve.http`, FastAPI on uvicorn) only moves bytes.
"""

from __future__ import annotations

import hmac
import json
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote

from slm_forest.progress import console

MAX_BODY_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    host: str = "127.0.0.1"
    port: int = 8000
    model_name: str = "slm"  # the served model's id: /v1/models lists it, every response carries it
    aliases: tuple[str, ...] = ()  # other names requests may use (`--served-model-name` given more than once)
    api_key: str | None = None
    max_concurrent: int = 1
    queue_timeout: float = 30.0
    default_max_tokens: int = 512
    max_tokens_limit: int = 4096
    log_requests: bool = True
    retriever: Any = None  # `--retrieve K`: a fine_tuning.serve.retrieval.Retriever; None: no index to search


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
    check_model(body.get("model"), settings)
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


def served_names(settings: ServeSettings) -> tuple[str, ...]:
    return tuple(dict.fromkeys((settings.model_name, *settings.aliases)))


def model_not_found(name: str) -> RequestError:
    """OpenAI's answer (and vLLM's status) for a model it does not serve: 404, code `model_not_found`."""
    return RequestError(
        404,
        f"The model `{name}` does not exist or you do not have access to it.",
        code="model_not_found",
        param="model",
    )


def check_model(name: Any, settings: ServeSettings) -> None:
    """A request naming a model must name a served one (its id or an alias); no `model` at all means the served one,
    as vLLM does. The response always carries the served id, as OpenAI resolves an alias to the model it ran."""
    if name is None or name == "":
        return
    if not isinstance(name, str):
        raise RequestError(400, "'model' must be a string", param="model")
    if name not in served_names(settings):
        raise model_not_found(name)


def completion_body(
    completion: Any, request_id: str, created: int, model: str, retrieval: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The chat.completion body; `retrieval` (the articles and the citation check) as an extra top-level field."""
    body = {
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
    return body if retrieval is None else body | {"retrieval": retrieval}


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


def new_request_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


MAX_RETRIEVE_K = 20


@dataclass(frozen=True)
class RetrievalAsk:
    """What a request retrieves: k articles of the law in force on as_of (None: today)."""

    k: int
    as_of: str | None = None


def parse_retrieval(value: Any, settings: ServeSettings) -> RetrievalAsk | None:
    """The request's `retrieval` extension against the server's --retrieve (see the module docstring)."""
    default_k = None if settings.retriever is None else settings.retriever.k
    if value is False or (value is None and default_k is None):
        return None
    if default_k is None:
        raise RequestError(
            400, "this server was started without --retrieve: it has no index to search", param="retrieval"
        )
    if value is None or value is True:
        return RetrievalAsk(default_k)
    if not isinstance(value, dict) or set(value) - {"k", "as_of"}:
        raise RequestError(400, 'retrieval must be true, false or {"k": int, "as_of": "YYYY-MM-DD"}', param="retrieval")
    k = value.get("k", default_k)
    if not isinstance(k, int) or isinstance(k, bool) or not 1 <= k <= MAX_RETRIEVE_K:
        raise RequestError(400, f"retrieval.k must be an integer from 1 to {MAX_RETRIEVE_K}", param="retrieval")
    as_of = value.get("as_of")
    if as_of is not None:
        from slm_datagen.index.versions import date_number  # noqa: PLC0415

        try:
            date_number(as_of if isinstance(as_of, str) else "")
        except ValueError:
            raise RequestError(400, "retrieval.as_of must be a YYYY-MM-DD date", param="retrieval") from None
    return RetrievalAsk(k, as_of)


# ------------------------------------------------------------------------------------------------------- routes
@dataclass(frozen=True)
class ChatRequest:
    """A checked POST /v1/chat/completions: what to generate and how to send it."""

    messages: list[dict[str, str]]
    generation: Any  # fine_tuning.serve.generate.GenerationSettings
    stream: bool
    include_usage: bool
    retrieval: RetrievalAsk | None = None


def request_path(target: str) -> str:
    """The path of a request target, without its query string and trailing slash."""
    return target.split("?", 1)[0].rstrip("/")


def is_authorised(authorization: str, api_key: str | None) -> bool:
    """No key configured: every request; otherwise `Authorization: Bearer <key>`, compared in constant time."""
    if not api_key:
        return True
    given = authorization[7:].strip() if authorization.lower().startswith("bearer ") else ""
    return hmac.compare_digest(given.encode(), api_key.encode())


def unauthorised() -> RequestError:
    return RequestError(401, "missing or wrong API key (Authorization: Bearer …)", code="invalid_api_key")


def parse_json_body(raw: bytes) -> dict[str, Any]:
    """A request body as a JSON object (an empty body is `{}`)."""
    try:
        body = json.loads(raw or b"{}")
    except json.JSONDecodeError as exc:
        raise RequestError(400, f"the body is not valid JSON ({exc.msg})") from None
    if not isinstance(body, dict):
        raise RequestError(400, "the body must be a JSON object")
    return body


def get_response(path: str, authorization: str, settings: ServeSettings, created: int) -> dict[str, Any]:
    """The body of a successful GET; /health answers without the key, the model routes need it."""
    if path == "/health":
        return {"status": "ok"}
    if not is_authorised(authorization, settings.api_key):
        raise unauthorised()

    def card(name: str) -> dict[str, Any]:
        return {"id": name, "object": "model", "created": created, "owned_by": "slm-forest"}

    if path == "/v1/models":
        return {"object": "list", "data": [card(name) for name in served_names(settings)]}
    if path.startswith("/v1/models/"):
        name = unquote(path[len("/v1/models/") :])
        if name not in served_names(settings):
            raise model_not_found(name)
        return card(name)
    raise RequestError(404, f"no route GET {path}", code="not_found")


def chat_request(path: str, authorization: str, body: dict[str, Any], settings: ServeSettings) -> ChatRequest:
    """A POST checked in the order clients expect: the key, the route, then the body."""
    if not is_authorised(authorization, settings.api_key):
        raise unauthorised()
    if path != "/v1/chat/completions":
        raise RequestError(404, f"no route POST {path}", code="not_found")
    return ChatRequest(*parse_chat_request(body, settings), retrieval=parse_retrieval(body.get("retrieval"), settings))


def busy_error(settings: ServeSettings) -> tuple[RequestError, dict[str, str]]:
    """429 with Retry-After when no generation slot freed up within the queue timeout (the SDKs retry on it)."""
    wait = max(1, int(settings.queue_timeout) or 1)
    error = RequestError(
        429,
        f"all {settings.max_concurrent} generation slot(s) busy; retry later",
        code="rate_limit_exceeded",
        kind="rate_limit_error",
    )
    return error, {"Retry-After": str(wait)}


def server_error(exc: Exception, where: str = "") -> RequestError:
    """A generation that raised: logged with its message, reported to the client by its type only."""
    console.print(f"[red]serve: generation failed{where}: {type(exc).__name__}: {exc}[/red]")
    return RequestError(500, f"generation failed: {type(exc).__name__}", kind="server_error")


def sse_event(payload: dict[str, Any] | str) -> bytes:
    data = payload if isinstance(payload, str) else json.dumps(payload, ensure_ascii=False)
    return f"data: {data}\n\n".encode()


def chat_events(stream: Any, model: str, include_usage: bool, retrieved: Any = None) -> Iterator[bytes]:
    """The server-sent events of a streamed completion, ending with `data: [DONE]`. With `retrieved`
    (fine_tuning.serve.retrieval.Retrieved) the first chunk carries the articles and the finishing one the check.

    The headers are sent before the first token, so a generation that fails mid-way is reported in-band (an error
    body, then [DONE]), as OpenAI does. A client that leaves is the caller's to handle (cancel the stream).
    """
    request_id, created = new_request_id(), int(time.time())
    first = chunk_body(request_id, created, model, {"role": "assistant", "content": ""}, None)
    yield sse_event(first if retrieved is None else first | {"retrieval": retrieved.model_dump(mode="json")})
    try:
        for piece in stream:
            yield sse_event(chunk_body(request_id, created, model, {"content": piece}, None))
    except Exception as exc:  # noqa: BLE001 - headers are sent: report in-band, as OpenAI does
        yield sse_event(server_error(exc, " mid-stream").body())
        yield sse_event("[DONE]")
        return
    completion = stream.completion
    last = chunk_body(request_id, created, model, {}, completion.finish_reason if completion else "stop")
    if retrieved is not None:
        last["retrieval"] = retrieved.checked(completion.text if completion else "").model_dump(mode="json")
    yield sse_event(last)
    if include_usage and completion is not None:
        usage = {"id": request_id, "object": "chat.completion.chunk", "created": created, "model": model}
        yield sse_event(usage | {"choices": [], "usage": usage_body(completion)})
    yield sse_event("[DONE]")
