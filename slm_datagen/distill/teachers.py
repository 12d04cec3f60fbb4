"""Provider adapters over the official SDKs: request bodies (pure), reply normalisation (pure), async calls.

- `openai`: `openai.AsyncOpenAI`, Chat Completions with `response_format` = json_schema (strict).
- `openai_compatible`: the same client on any `base_url` (vLLM, Groq, Together, Ollama) with `json_object` mode or
  no format at all (`response_format: none`); the schema is then written into the prompt and `parse.py` repairs
  near-JSON.
- `anthropic`: `anthropic.AsyncAnthropic`, Messages with one tool whose `input_schema` is the pair schema and
  `tool_choice` forcing it; the tool input is the reply.

The SDKs' own retries are disabled (`max_retries=0`): the engine retries with its own backoff and rate limiter,
and it needs every response's rate-limit headers, read through the SDKs' `with_raw_response` API. Errors become
`TeacherError` with a `kind`: transient (429, 408, 409, 5xx, timeouts, connection errors, and an HTTP-200 body cut
off mid-JSON, which the SDKs raise as `json.JSONDecodeError` rather than an APIError: retried), rejected (a
400-class answer about this one request: recorded as a failure), fatal (401/403/404, and a 429 that says the
account's quota is used up: the whole stage stops with an SlmError naming the key variable, the model or the quota). Keys come from the environment only and are scrubbed from
every message that could reach a log, the ledger or an error.

Prompt caching: Anthropic requests carry `cache_control` breakpoints (the end of the system prompt, and a message
marked `cache_breakpoint` by the prompt builder); OpenAI caches prompt prefixes of 1,024+ tokens by itself, and
gets a `prompt_cache_key` (`plan.cache_key_for`: one per shared prefix) when the installed SDK accepts it.
Replies report cached input apart:
`TeacherReply.cached_tokens` (OpenAI `prompt_tokens_details.cached_tokens`, Anthropic `cache_read_input_tokens`)
and `cache_write_tokens` (Anthropic `cache_creation_input_tokens`); `input_tokens` is always every input token.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from slm_datagen.distill.plan import reply_format
from slm_datagen.distill.ratelimit import parse_retry_after
from slm_datagen.distill.schema import PAIR_JSON_SCHEMA, SCHEMA_NAME, RequestShape
from slm_forest.config import TeacherConfig
from slm_forest.errors import SlmError

DEFAULT_KEY_ENV = {"openai": "OPENAI_API_KEY", "anthropic": "ANTHROPIC_API_KEY", "openai_compatible": "OPENAI_API_KEY"}
REQUEST_KEY_HEADER = "X-Request-Key"  # our ledger key, so a server (or a proxy log) can spot a duplicate
TOOL_DESCRIPTION = "Record one Korean tax-law question/answer pair in the required structure."


@dataclass
class TeacherReply:
    text: str | None
    truncated: bool = False
    refusal: str | None = None
    input_tokens: int = 0  # every input token, cached and cache-written ones included
    output_tokens: int = 0
    headers: dict[str, str] = field(default_factory=dict)
    cached_tokens: int = 0  # input served from the provider's prompt cache
    cache_write_tokens: int = 0  # input written into the cache (Anthropic bills these at 1.25 x input)
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens written into Anthropic's 1-hour cache (2 x)


class TeacherError(Exception):
    def __init__(
        self,
        kind: str,
        message: str,
        *,
        status: int | None = None,
        retry_after: float | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind  # transient / rejected / fatal
        self.code = code  # the provider's error code, e.g. insufficient_quota
        self.status = status
        self.retry_after = retry_after
        self.headers = dict(headers or {})

    @property
    def rate_limited(self) -> bool:
        return self.status == 429 and self.kind == "transient"


def key_env_name(teacher: TeacherConfig) -> str:
    return teacher.api_key_env or DEFAULT_KEY_ENV.get(teacher.provider, "OPENAI_API_KEY")


def resolve_api_key(teacher: TeacherConfig) -> str:
    """The key from the environment, or an SlmError that names the variable. Never read from config or files."""
    name = key_env_name(teacher)
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if teacher.provider == "openai_compatible" and teacher.api_key_env is None:
        return "not-needed"  # local servers (vLLM, Ollama) accept any key
    raise SlmError(
        f"distill teacher {teacher.provider}:{teacher.model} needs an API key in the environment variable {name}, which is not set",
        f"export {name}=... (or set distill.teachers[].api_key_env to the variable that holds it); --dry-run needs no key",
    )


def redact(text: str, secrets: list[str]) -> str:
    for secret in secrets:
        if secret and len(secret) >= 6:
            text = text.replace(secret, "***")
    return text


# ------------------------------------------------------------------------------------------------ request bodies
def openai_body(
    teacher: TeacherConfig,
    messages: list[dict[str, str]],
    *,
    schema: dict[str, Any] | None = PAIR_JSON_SCHEMA,
    schema_name: str = SCHEMA_NAME,
    temperature: float | None = None,
    max_tokens: int | None = None,
    prompt_cache_key: str | None = None,
) -> dict[str, Any]:
    """The Chat Completions body (also used as a Batch API line's `body`). `schema=None` asks for free text;
    build's judge passes its own schema and temperature 0. Messages are sent as role + content only."""
    temp = teacher.temperature if temperature is None else temperature
    plain = [{"role": m["role"], "content": m["content"]} for m in messages]
    body: dict[str, Any] = {"model": teacher.model, "messages": plain, "temperature": temp}
    limit = teacher.max_tokens if max_tokens is None else max_tokens
    if teacher.provider == "openai":
        body["max_completion_tokens"] = limit
    else:
        body["max_tokens"] = limit  # what vLLM, Ollama, Groq and Together all accept
    if prompt_cache_key and teacher.provider == "openai":
        body["prompt_cache_key"] = prompt_cache_key
    fmt = reply_format(teacher) if schema is not None else None
    if fmt == "json_schema":
        body["response_format"] = {
            "type": "json_schema",
            "json_schema": {"name": schema_name, "strict": True, "schema": schema},
        }
    elif fmt == "json_object":
        body["response_format"] = {"type": "json_object"}
    return body


def anthropic_params(
    teacher: TeacherConfig,
    messages: list[dict[str, str]],
    *,
    schema: dict[str, Any] | None = PAIR_JSON_SCHEMA,
    schema_name: str = SCHEMA_NAME,
    tool_description: str = TOOL_DESCRIPTION,
    max_tokens: int | None = None,
    cache: bool = False,
    cache_ttl: str = "5m",
) -> dict[str, Any]:
    """The Messages params (also a Message Batches request's `params`): system apart, same-role turns merged;
    with a schema, a forced tool whose input is the reply.

    `cache=True` marks prompt-cache breakpoints: the end of the system prompt (tools come before it, so they are
    in the same cached prefix) and every message marked `cache_breakpoint`. Turns are then lists of text blocks.
    `cache_ttl="1h"` asks for the 1-hour cache (batch mode: a batch may start well after the one that wrote it)."""
    marker: dict[str, Any] = {"type": "ephemeral"} if cache_ttl == "5m" else {"type": "ephemeral", "ttl": cache_ttl}
    system = "\n\n".join(m["content"] for m in messages if m["role"] == "system")
    turns: list[dict[str, Any]] = []
    for message in messages:
        if message["role"] == "system":
            continue
        if cache:
            block: dict[str, Any] = {"type": "text", "text": message["content"]}
            if message.get("cache_breakpoint"):
                block["cache_control"] = dict(marker)
            if turns and turns[-1]["role"] == message["role"]:
                turns[-1]["content"].append(block)
            else:
                turns.append({"role": message["role"], "content": [block]})
        elif turns and turns[-1]["role"] == message["role"]:
            turns[-1] = {"role": message["role"], "content": turns[-1]["content"] + "\n\n" + message["content"]}
        else:
            turns.append({"role": message["role"], "content": message["content"]})
    limit = teacher.max_tokens if max_tokens is None else max_tokens
    params: dict[str, Any] = {"model": teacher.model, "max_tokens": limit, "messages": turns}
    if system and cache:
        params["system"] = [{"type": "text", "text": system, "cache_control": dict(marker)}]
    elif system:
        params["system"] = system
    if schema is not None and reply_format(teacher) == "tool":
        params["tools"] = [{"name": schema_name, "description": tool_description, "input_schema": schema}]
        params["tool_choice"] = {"type": "tool", "name": schema_name}
    return params


# ----------------------------------------------------------------------------------------------- reply parsing
def _get(obj: Any, name: str, default: Any = None) -> Any:
    if isinstance(obj, Mapping):
        return obj.get(name, default)
    return getattr(obj, name, default)


def openai_reply(completion: Any, headers: Mapping[str, str] | None = None) -> TeacherReply:
    """A ChatCompletion (SDK object or the JSON dict of a batch line) -> TeacherReply."""
    choices = _get(completion, "choices") or []
    usage = _get(completion, "usage") or {}
    details = _get(usage, "prompt_tokens_details") or {}
    reply = TeacherReply(
        text=None,
        input_tokens=int(_get(usage, "prompt_tokens", 0) or 0),
        output_tokens=int(_get(usage, "completion_tokens", 0) or 0),
        headers=dict(headers or {}),
        cached_tokens=int(_get(details, "cached_tokens", 0) or 0),
    )
    if not choices:
        return reply
    choice = choices[0]
    message = _get(choice, "message") or {}
    reply.text = _get(message, "content")
    reply.refusal = _get(message, "refusal")
    reply.truncated = _get(choice, "finish_reason") == "length"
    return reply


def anthropic_reply(message: Any, headers: Mapping[str, str] | None = None, *, cache_ttl: str = "5m") -> TeacherReply:
    """A Message (SDK object or a batch result's JSON) -> TeacherReply; a tool_use input becomes JSON text.

    The 1-hour share of the cache writes comes from `usage.cache_creation` when the reply has it; without it,
    every write counts as one of `cache_ttl`, the lifetime the request asked for."""
    usage = _get(message, "usage") or {}
    text_parts: list[str] = []
    tool_input: Any = None
    for block in _get(message, "content") or []:
        kind = _get(block, "type")
        if kind == "tool_use" and tool_input is None:
            tool_input = _get(block, "input")
        elif kind == "text":
            text_parts.append(_get(block, "text") or "")
    if tool_input is not None and tool_input != {}:
        text: str | None = json.dumps(tool_input, ensure_ascii=False)
    else:
        text = "".join(text_parts) or None
    stop = _get(message, "stop_reason")
    cache_read = int(_get(usage, "cache_read_input_tokens", 0) or 0)
    cache_write = int(_get(usage, "cache_creation_input_tokens", 0) or 0)
    creation = _get(usage, "cache_creation")
    if creation:
        long_writes = int(_get(creation, "ephemeral_1h_input_tokens", 0) or 0)
    else:
        long_writes = cache_write if cache_ttl == "1h" else 0
    return TeacherReply(
        text=text,
        truncated=stop == "max_tokens",
        refusal="refused by the model" if stop == "refusal" else None,
        input_tokens=int(_get(usage, "input_tokens", 0) or 0) + cache_write + cache_read,
        output_tokens=int(_get(usage, "output_tokens", 0) or 0),
        headers=dict(headers or {}),
        cached_tokens=cache_read,
        cache_write_tokens=cache_write,
        cache_write_1h_tokens=min(long_writes, cache_write),
    )


# ------------------------------------------------------------------------------------------------ SDK clients
def sdk_takes_prompt_cache_key(client: Any) -> bool:
    """Whether the installed openai SDK's `chat.completions.create` has a `prompt_cache_key` parameter."""
    try:
        return "prompt_cache_key" in inspect.signature(client.chat.completions.create).parameters
    except (TypeError, ValueError, AttributeError):
        return False


def classify_status(status: int) -> str:
    if status in (401, 403, 404):
        return "fatal"
    if status in (408, 409, 429) or status >= 500:
        return "transient"
    return "rejected"


def _error_from_sdk(exc: Exception, secrets: list[str]) -> TeacherError:
    """Map openai/anthropic exceptions (same shapes in both SDKs) onto TeacherError, with secrets scrubbed."""
    response = getattr(exc, "response", None)
    status = getattr(exc, "status_code", None) or getattr(response, "status_code", None)
    headers = dict(getattr(response, "headers", {}) or {})
    message = redact(f"{type(exc).__name__}: {getattr(exc, 'message', None) or exc}", secrets)[:500]
    if status is None:  # timeouts and connection errors
        return TeacherError("transient", message)
    code = getattr(exc, "code", None)
    kind = classify_status(int(status))
    if status == 429 and (code == "insufficient_quota" or "insufficient_quota" in message):
        kind, code = "fatal", "insufficient_quota"  # no amount of waiting helps: the account is out of credit
    return TeacherError(
        kind,
        message,
        status=int(status),
        retry_after=parse_retry_after(headers),
        headers=headers,
        code=code if isinstance(code, str) else None,
    )


async def _parsed(raw: Any) -> Any:
    """`raw.parse()` is a coroutine in the async Anthropic SDK and a plain call in OpenAI's legacy raw response."""
    parsed = raw.parse()
    if inspect.isawaitable(parsed):
        parsed = await parsed
    return parsed


class Teacher:
    """One configured teacher: builds and sends requests, returns TeacherReply or raises TeacherError."""

    def __init__(self, cfg: TeacherConfig, api_key: str) -> None:
        self.cfg = cfg
        self.secrets = [api_key]
        self.provider = cfg.provider
        if cfg.provider == "anthropic":
            import anthropic

            kwargs: dict[str, Any] = {"api_key": api_key, "max_retries": 0, "timeout": cfg.timeout_s}
            if cfg.base_url:
                kwargs["base_url"] = cfg.base_url
            self.client: Any = anthropic.AsyncAnthropic(**kwargs)
            self._sdk_errors: tuple[type[BaseException], ...] = (anthropic.APIError,)
        else:
            import openai

            kwargs = {"api_key": api_key, "max_retries": 0, "timeout": cfg.timeout_s}
            if cfg.base_url:
                kwargs["base_url"] = cfg.base_url
            self.client = openai.AsyncOpenAI(**kwargs)
            self._sdk_errors = (openai.APIError,)
        self.takes_cache_key = cfg.provider == "openai" and sdk_takes_prompt_cache_key(self.client)

    async def complete(
        self, messages: list[dict[str, str]], request_key: str, shape: RequestShape | None = None
    ) -> TeacherReply:
        """Send one request. `shape` says which schema, token limit and cache hints it carries (default: one pair)."""
        shape = shape or RequestShape()
        headers = {REQUEST_KEY_HEADER: request_key}
        try:
            if self.provider == "anthropic":
                params = anthropic_params(
                    self.cfg,
                    messages,
                    schema=shape.schema,
                    schema_name=shape.schema_name,
                    tool_description=shape.tool_description or TOOL_DESCRIPTION,
                    max_tokens=shape.max_tokens,
                    cache=True,
                )
                raw = await self.client.messages.with_raw_response.create(**params, extra_headers=headers)
                return anthropic_reply(await _parsed(raw), raw.headers)
            body = openai_body(
                self.cfg,
                messages,
                schema=shape.schema,
                schema_name=shape.schema_name,
                max_tokens=shape.max_tokens,
                prompt_cache_key=shape.cache_key if self.takes_cache_key else None,
            )
            raw = await self.client.chat.completions.with_raw_response.create(**body, extra_headers=headers)
            return openai_reply(await _parsed(raw), raw.headers)
        except self._sdk_errors as exc:
            raise _error_from_sdk(exc, self.secrets) from None
        except ValueError as exc:  # JSONDecodeError / UnicodeDecodeError: a 200 whose body was cut off mid-JSON
            detail = redact(f"reply body cut off or not JSON ({type(exc).__name__}: {exc})", self.secrets)[:500]
            raise TeacherError("transient", detail, status=200) from None

    async def close(self) -> None:
        await self.client.close()
