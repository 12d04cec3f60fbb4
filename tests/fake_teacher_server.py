"""A local fake teacher server speaking the OpenAI and Anthropic wire protocols, for tests and benchmarks.

The real ``openai`` / ``anthropic`` SDKs are pointed at it with ``base_url``; nothing in the SDKs is patched::

    from tests.fake_teacher_server import FakeTeacherServer, Reply   # or `fake_teacher_server` with tests/ on sys.path

    with FakeTeacherServer(latency=0.0, requests_per_minute=600) as server:
        oa = openai.OpenAI(base_url=server.openai_base_url, api_key="test", max_retries=0)
        an = anthropic.Anthropic(base_url=server.anthropic_base_url, api_key="test", max_retries=0)
        server.script("rate_limit", "ok")              # FIFO: the next two generation requests
        server.on_prompt("제12조", "malformed", times=1)  # the first request whose prompt contains "제12조"
        server.set_chaos({"server_error": 0.05}, seed=7)  # 5 % of requests, deterministic per request
        ...
        server.stats(); server.requests; server.duplicate_keys()

It binds 127.0.0.1 only (a random free port unless ``port`` is given), runs in a background thread, makes no
outbound connection of any kind, and answers each connection on its own thread (``ThreadingHTTPServer`` with a
1024-deep listen backlog), so slow or hanging replies never block other requests.

Endpoints
    OpenAI     POST /v1/chat/completions (non-streaming; ``response_format`` json_schema/json_object honoured)
               POST /v1/files (multipart), GET /v1/files/{id}, GET /v1/files/{id}/content, DELETE /v1/files/{id}
               POST /v1/batches, GET /v1/batches, GET /v1/batches/{id}, POST /v1/batches/{id}/cancel
    Anthropic  POST /v1/messages (non-streaming; forced ``tool_choice`` returns a ``tool_use`` block)
               POST /v1/messages/batches, GET /v1/messages/batches, GET /v1/messages/batches/{id},
               GET /v1/messages/batches/{id}/results, POST /v1/messages/batches/{id}/cancel

Reply variants (``VARIANTS``): ``ok`` (JSON answer), ``english``, ``empty``, ``truncated`` (cut JSON with
``finish_reason="length"`` / ``stop_reason="max_tokens"``), ``malformed`` (invalid JSON text; in tool mode a
``tool_use`` input that ignores the schema), ``rate_limit`` (429 + ``Retry-After``), ``server_error`` (500),
``overloaded`` (Anthropic 529 ``overloaded_error``; OpenAI 503), ``hang`` (sleeps ``hang_seconds`` before answering),
``cut_body`` (HTTP 200 whose body, correctly framed, stops mid-JSON: what a proxy or a dropped upstream connection
produces; the SDKs raise ``json.JSONDecodeError``), ``drop`` (HTTP 200 headers announcing the whole body, half of it
sent, then the connection closed: the SDKs raise a connection error), ``rate_limit_bare`` (429 with no
``Retry-After`` and no rate-limit headers).

Choosing the reply of a generation request, first match wins:
    1. the FIFO script (``script(...)``), one entry per request, in arrival order;
    2. prompt rules (``on_prompt(substring, ...)`` / ``when(predicate, ...)``), optionally limited to ``times`` uses;
    3. chaos probabilities (``chaos={"rate_limit": 0.1}``, ``seed``): the draw is a hash of (seed, request content,
       how many times this same request was seen), so it is deterministic regardless of thread scheduling and a
       retried request gets a fresh draw;
    4. the responder ``responder(request_json, provider) -> reply`` (default ``default_responder``: a deterministic
       Korean Q&A JSON built from the prompt, or an object filled from the requested JSON schema / tool schema).
    With a schema, an array of objects that have an ``id`` property gets one item per ``[p1]``, ``[p2]`` … marker in
    the last user message (several pairs asked in one request), each with that id.
    A reply may be a ``Reply``, a ``str`` (raw text content), a ``dict``/``list`` (JSON content / tool input) or None
    (use the default responder). Scripted variants without content take the responder's content as their base.

Rate limiter: a **sliding 60 s window** (``window_seconds``; the headers still give the limit per minute, scaled
from a shortened window) of accepted generation requests
(``/v1/chat/completions`` and ``/v1/messages`` only; files/batches are not limited). A request that would exceed
``requests_per_minute`` is refused with 429, the provider's error body and ``Retry-After`` = seconds until the oldest
accepted request leaves the window (``rate_limit_headers=False``: no ``Retry-After`` and no rate-limit headers
on any reply, as some proxies and self-hosted servers do). Token limits (``tokens_per_minute``, ``output_tokens_per_minute``) only feed the
rate-limit headers; they are not enforced. Token counts are approximate (one token per non-ASCII character, four
ASCII characters per token).

Every HTTP request is logged (``server.requests``: ``RequestRecord``; ``status`` 0 = never delivered: the client
had closed the connection, e.g. its timeout fired during a ``hang``, or the server was stopping); batch lines are logged too with
``method="BATCH"``. The request key for idempotency checks is taken from the ``Idempotency-Key`` or
``X-Request-Key`` header, or ``metadata.request_key`` in the body (a fake-only extension; the real Anthropic API
accepts only ``metadata.user_id``, so prefer the header there).
"""

from __future__ import annotations

import argparse
import collections
import copy
import hashlib
import itertools
import json
import math
import re
import select
import socket
import threading
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from email import policy as email_policy
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import urlsplit

try:
    from tests.fake_prompt_cache import PromptCache
except ImportError:  # run as `fake_teacher_server` with tests/ on sys.path
    from fake_prompt_cache import PromptCache  # type: ignore[no-redef]

OPENAI = "openai"
ANTHROPIC = "anthropic"

VARIANTS = (
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
)
_CONTENT_VARIANTS = {"ok", "english", "empty", "truncated", "malformed", "hang", "cut_body", "drop"}
_ERROR_STATUS = {"rate_limit": 429, "rate_limit_bare": 429, "server_error": 500}
_UNDELIVERED = {"cut_body", "drop"}  # answered 200, but the client never got a usable reply

GENERATION_PATHS = {"/v1/chat/completions": OPENAI, "/v1/messages": ANTHROPIC}
_ID_SEGMENT = re.compile(r"/(?:file-|batch_|msgbatch_)[0-9a-zA-Z]+")


# ----------------------------------------------------------------------------------------------------------------
# Replies and records
# ----------------------------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted reply.

    kind: one of ``VARIANTS``.
    content: ``str`` = raw text; ``dict``/``list`` = JSON (serialised as text, or used as the tool input in
        Anthropic tool mode); None = the responder's content (``english``: the default English answer).
    retry_after: seconds for ``Retry-After`` on ``rate_limit`` (default: the server's ``retry_after``).
    latency: seconds before answering (default: the server's ``latency``).
    hang_seconds: for ``hang`` (default: the server's ``hang_seconds``).
    message: error message for error variants.
    """

    kind: str = "ok"
    content: Any = None
    retry_after: float | None = None
    latency: float | None = None
    hang_seconds: float | None = None
    message: str | None = None

    def __post_init__(self) -> None:
        if self.kind not in VARIANTS:
            raise ValueError(f"unknown reply kind {self.kind!r}; expected one of {', '.join(VARIANTS)}")


def _foreign_reply(value: Any) -> Reply | None:
    """A Reply from a second copy of this module (imported both as ``fake_teacher_server`` and
    ``tests.fake_teacher_server``) is converted instead of failing an isinstance check."""
    if type(value).__name__ == "Reply" and hasattr(value, "kind") and hasattr(value, "content"):
        return Reply(**{k: getattr(value, k) for k in Reply.__dataclass_fields__})
    return None


def as_reply(value: Any) -> Reply | None:
    """Normalise a script entry / responder result: variant name (scripts only), Reply, text, JSON, or None."""
    if value is None or isinstance(value, Reply):
        return value
    if (foreign := _foreign_reply(value)) is not None:
        return foreign
    if isinstance(value, (dict, list, str)):
        return Reply("ok", content=value)
    raise TypeError(f"a reply must be a Reply, str, dict, list or None, not {type(value).__name__}")


def _script_entry(value: Any) -> Reply:
    if isinstance(value, str):
        return Reply(value)  # a variant name; raises on an unknown name
    if isinstance(value, Reply):
        return value
    if (foreign := _foreign_reply(value)) is not None:
        return foreign
    raise TypeError(f"a script entry must be a variant name or a Reply, not {type(value).__name__}")


@dataclass
class RequestRecord:
    """One logged request. ``variant`` is set for generation requests and batch lines only."""

    seq: int
    started: float  # time.time()
    method: str
    path: str
    provider: str | None
    status: int = 0
    finished: float | None = None
    variant: str | None = None
    refused: bool = False  # refused by the server's rate limiter
    request_key: str | None = None
    retry_count: int | None = None  # from the SDKs' x-stainless-retry-count header
    model: str | None = None
    prompt_hash: str | None = None
    batch_id: str | None = None
    custom_id: str | None = None

    @property
    def elapsed(self) -> float | None:
        return None if self.finished is None else self.finished - self.started

    def as_dict(self) -> dict:
        d = asdict(self)
        d["elapsed"] = self.elapsed
        return d


@dataclass
class _Rule:
    predicate: Callable[[dict, str], bool]
    reply: Reply
    times: int | None
    used: int = 0


# ----------------------------------------------------------------------------------------------------------------
# Request helpers: prompt text, hashing, schemas, token estimates
# ----------------------------------------------------------------------------------------------------------------


def _text_of(content: Any) -> str:
    if content is None:
        return ""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = []
        for block in content:
            if isinstance(block, str):
                parts.append(block)
            elif isinstance(block, dict):
                if isinstance(block.get("text"), str):
                    parts.append(block["text"])
                elif "content" in block:  # tool_result
                    parts.append(_text_of(block["content"]))
        return "\n".join(parts)
    return str(content)


def prompt_text(request_json: dict, provider: str) -> str:
    """The whole prompt as text: the system prompt (Anthropic ``system``) and every message's text."""
    parts = []
    if provider == ANTHROPIC and request_json.get("system"):
        parts.append(_text_of(request_json["system"]))
    for message in request_json.get("messages") or []:
        if isinstance(message, dict):
            parts.append(_text_of(message.get("content")))
    return "\n".join(p for p in parts if p)


def last_user_text(request_json: dict) -> str:
    """The text of the last user message (where the law and article of the default answer are looked up first)."""
    for message in reversed(request_json.get("messages") or []):
        if isinstance(message, dict) and message.get("role") == "user":
            return _text_of(message.get("content"))
    return ""


def request_hash(request_json: dict, provider: str) -> str:
    """Stable 12-hex-digit hash of what determines the answer (model and prompt)."""
    key = json.dumps(
        {"provider": provider, "model": request_json.get("model"), "prompt": prompt_text(request_json, provider)},
        sort_keys=True,
        ensure_ascii=False,
    )
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def forced_tool(request_json: dict) -> dict | None:
    """Anthropic: the tool a ``tool_choice`` of type ``tool`` (or ``any``) forces, else None."""
    tools = [t for t in request_json.get("tools") or [] if isinstance(t, dict)]
    choice = request_json.get("tool_choice") or {}
    if not tools or not isinstance(choice, dict):
        return None
    if choice.get("type") == "tool":
        return next((t for t in tools if t.get("name") == choice.get("name")), None)
    if choice.get("type") == "any":
        return tools[0]
    return None


def response_schema(request_json: dict, provider: str) -> dict | None:
    """The JSON schema the reply must follow, if the request names one."""
    if provider == OPENAI:
        fmt = request_json.get("response_format") or {}
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return (fmt.get("json_schema") or {}).get("schema")
        return None
    tool = forced_tool(request_json)
    if tool is not None:
        return tool.get("input_schema") or {"type": "object", "properties": {}}
    for fmt in ((request_json.get("output_config") or {}).get("format"), request_json.get("output_format")):
        if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
            return fmt.get("schema")
    return None


def approx_tokens(text: str) -> int:
    """Rough token count: one per non-ASCII character (Hangul), one per four ASCII characters."""
    if not text:
        return 0
    ascii_n = sum(1 for c in text if ord(c) < 128)
    return max(1, math.ceil((len(text) - ascii_n) + ascii_n / 4))


def _prompt_tokens(request_json: dict, provider: str) -> int:
    n_messages = len(request_json.get("messages") or [])
    extra = 0
    if provider == ANTHROPIC and request_json.get("tools"):
        extra = approx_tokens(json.dumps(request_json["tools"], ensure_ascii=False))
    return approx_tokens(prompt_text(request_json, provider)) + 3 * n_messages + 3 + extra


def _max_tokens(request_json: dict) -> int | None:
    for key in ("max_completion_tokens", "max_tokens"):
        value = request_json.get(key)
        if isinstance(value, int) and value > 0:
            return value
    return None


def _cut_to_tokens(text: str, limit: int) -> str:
    lo, hi = 0, len(text)
    while lo < hi:
        mid = (lo + hi + 1) // 2
        if approx_tokens(text[:mid]) <= limit:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo]


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _truncate(text: str) -> str:
    cut = text[: max(1, len(text) // 2)] if text else '{"'
    while cut and _is_json(cut):
        cut = cut[:-1]
    return cut or '{"'


def _malform(text: str) -> str:
    t = text.rstrip()
    bad = (t[:-1].rstrip() + ", 비고: 없음,}") if t.endswith("}") else "{" + t + ",}"
    return bad if not _is_json(bad) else bad + "}{"


# ----------------------------------------------------------------------------------------------------------------
# The default responder
# ----------------------------------------------------------------------------------------------------------------

_LAW_RE = re.compile(
    r"(?:[가-힣·]+\s*및\s*)?[가-힣·]+(?:세법|기본법|징수법|제한법|처벌법|에 관한 법률)(?:\s*시행령|\s*시행규칙)?"
)
_ARTICLE_RE = re.compile(r"제\s*\d+\s*조(?:\s*의\s*\d+)?(?:\s*제\s*\d+\s*항)?")


_ITEM_ID_RE = re.compile(r"\[(p\d+)\]")  # "[p1] 대상: …": the pairs a several-pairs request lists


class _Facts:
    """Deterministic text pieces for one request."""

    def __init__(self, prompt: str, h: str, lang: str, focus: str = "") -> None:
        self.h = h
        self.ids: list[str] = []  # item ids the prompt lists: an array of objects with `id` gets one item each
        self.lang = lang
        law = _LAW_RE.search(focus) or _LAW_RE.search(prompt)
        article = _ARTICLE_RE.search(focus) or _ARTICLE_RE.search(prompt)
        parts = [m.group(0).strip() for m in (law, article) if m]
        self.topic_ko = " ".join(parts) or "해당 규정"
        if lang == "ko":
            t = self.topic_ko
            self.topic = t
            self.question = f"{t}에 따른 과세 요건과 적용 범위는 무엇인가요? (참조 {h})"
            self.answer = (
                f"{t}에 따르면 법령에서 정한 요건을 모두 충족하는 경우에 해당 규정이 적용됩니다. "
                f"구체적인 세액 계산과 신고 기한은 관련 조문과 시행령을 함께 확인해야 합니다. [근거: {t}, 응답 {h}]"
            )
            self.reasoning = f"질문이 {t}의 적용 요건을 묻고 있으므로 조문의 문언을 기준으로 답변합니다."
            self.citation = t
        else:
            self.topic = "the cited provision"
            self.question = f"What are the taxation requirements and scope under the cited provision? (ref {h})"
            self.answer = (
                "Under the cited provision, the rule applies when every statutory requirement is met. "
                f"Check the article together with its enforcement decree for the exact amount and deadline. [ref {h}]"
            )
            self.reasoning = "The question asks about the requirements, so the answer follows the statutory text."
            self.citation = f"the cited provision (ref {h})"

    def string_for(self, name: str) -> str:
        n = name.lower()
        if n in ("q", "query", "instruction", "prompt") or "question" in n:
            return self.question
        if n in ("a", "response", "output", "completion") or "answer" in n:
            return self.answer
        if any(k in n for k in ("reason", "rationale", "explan", "thought", "analysis")):
            return self.reasoning
        if any(
            k in n for k in ("citation", "cite", "ref", "source", "law", "article", "basis", "evidence", "provision")
        ):
            return self.citation
        if "lang" in n:
            return self.lang
        if any(k in n for k in ("difficulty", "level")):
            return "보통" if self.lang == "ko" else "medium"
        if any(k in n for k in ("title", "topic", "category", "subject")):
            return self.topic
        if n == "id" or n.endswith("_id"):
            return f"{name}-{self.h}"
        return f"{name} 값 {self.h}" if self.lang == "ko" else f"{name} value {self.h}"


def fake_from_schema(schema: Any, facts: _Facts, name: str = "", root: dict | None = None, depth: int = 0) -> Any:
    """An instance of a JSON schema (the common subset used for structured outputs and tool inputs)."""
    root = root if root is not None else (schema if isinstance(schema, dict) else {})
    if not isinstance(schema, dict) or depth > 12:
        return facts.string_for(name or "value")
    if "$ref" in schema:
        ref = schema["$ref"]
        target: Any = root
        if ref.startswith("#"):
            for part in [p for p in ref[1:].split("/") if p]:
                target = target.get(part, {}) if isinstance(target, dict) else {}
        return fake_from_schema(target, facts, name, root, depth + 1)
    if "const" in schema:
        return schema["const"]
    if schema.get("enum"):
        return schema["enum"][0]
    for key in ("anyOf", "oneOf"):
        if schema.get(key):
            options = [o for o in schema[key] if not (isinstance(o, dict) and o.get("type") == "null")]
            return fake_from_schema((options or schema[key])[0], facts, name, root, depth + 1)
    if schema.get("allOf"):
        merged: dict = {"type": "object", "properties": {}, "required": []}
        for sub in schema["allOf"]:
            if isinstance(sub, dict):
                merged["properties"].update(sub.get("properties") or {})
        return fake_from_schema(merged, facts, name, root, depth + 1)
    kind = schema.get("type")
    if isinstance(kind, list):
        kind = next((k for k in kind if k != "null"), "null")
    if kind is None:
        kind = "object" if "properties" in schema else "array" if "items" in schema else "string"
    if kind == "object":
        props = schema.get("properties") or {}
        return {key: fake_from_schema(sub, facts, key, root, depth + 1) for key, sub in props.items()}
    if kind == "array":
        n = max(1, int(schema.get("minItems") or 0))
        if schema.get("maxItems") is not None:
            n = min(n, int(schema["maxItems"]))
        item_name = name[:-1] if name.endswith("s") else name
        items_schema = schema.get("items") or {}
        if facts.ids and "id" in (items_schema.get("properties") or {}):
            return [_item_for_id(items_schema, facts, item_name, root, depth, pid) for pid in facts.ids]
        return [fake_from_schema(items_schema, facts, item_name, root, depth + 1) for _ in range(n)]
    if kind in ("integer", "number"):
        low = schema.get("minimum", schema.get("exclusiveMinimum", 0))
        value = max(1, low + (1 if "exclusiveMinimum" in schema else 0))
        if schema.get("maximum") is not None:
            value = min(value, schema["maximum"])
        return int(value) if kind == "integer" else float(value)
    if kind == "boolean":
        return True
    if kind == "null":
        return None
    fmt = schema.get("format")
    if fmt == "date":
        return "2024-01-01"
    if fmt == "date-time":
        return "2024-01-01T00:00:00Z"
    text = facts.string_for(name or "value")
    min_len, max_len = schema.get("minLength"), schema.get("maxLength")
    if min_len and len(text) < min_len:
        text = (text + " ") * (min_len // max(1, len(text)) + 1)
    if max_len is not None:
        text = text[:max_len]
    return text


def _item_for_id(schema: dict, facts: _Facts, name: str, root: dict, depth: int, pid: str) -> Any:
    """One item of an array of identified objects (several pairs in one reply): its id, and its own question."""
    item = fake_from_schema(schema, facts, name, root, depth + 1)
    if isinstance(item, dict):
        item["id"] = pid
        if isinstance(item.get("question"), str):
            item["question"] = f"{item['question']} ({pid})"
    return item


def default_responder(request_json: dict, provider: str, lang: str = "ko") -> Any:
    """Deterministic reply content for a request.

    With a JSON schema (OpenAI ``response_format`` json_schema, Anthropic forced tool ``input_schema`` or
    ``output_config.format``) an instance of the schema whose strings are chosen by property name (question,
    answer, reasoning, citation, ...); otherwise ``{"question": ..., "answer": ...}``. The text names the law and
    article found in the prompt and the request hash, so equal requests get equal replies.
    """
    last = last_user_text(request_json)
    facts = _Facts(prompt_text(request_json, provider), request_hash(request_json, provider), lang, last)
    facts.ids = list(dict.fromkeys(_ITEM_ID_RE.findall(last)))
    schema = response_schema(request_json, provider)
    if schema is not None:
        return fake_from_schema(schema, facts)
    if facts.ids:  # several pairs asked for without an enforced schema (json_object mode)
        return {
            "pairs": [{"id": pid, "question": f"{facts.question} ({pid})", "answer": facts.answer} for pid in facts.ids]
        }
    return {"question": facts.question, "answer": facts.answer}


# ----------------------------------------------------------------------------------------------------------------
# Rate limiting
# ----------------------------------------------------------------------------------------------------------------


class SlidingWindowLimiter:
    """At most ``limit`` accepted requests in any ``window`` seconds (None = unlimited)."""

    def __init__(self, limit: int | None, window: float = 60.0) -> None:
        self.limit = limit
        self.window = window
        self._times: collections.deque[float] = collections.deque()
        self._tokens: collections.deque[tuple[float, int, int]] = collections.deque()

    def _expire(self, now: float) -> None:
        while self._times and self._times[0] <= now - self.window:
            self._times.popleft()
        while self._tokens and self._tokens[0][0] <= now - self.window:
            self._tokens.popleft()

    def try_acquire(self, now: float) -> tuple[bool, float]:
        """(accepted, retry_after_seconds)."""
        self._expire(now)
        if self.limit is not None and len(self._times) >= self.limit:
            return False, max(0.0, self._times[0] + self.window - now)
        self._times.append(now)
        return True, 0.0

    def add_tokens(self, now: float, input_tokens: int, output_tokens: int) -> None:
        self._tokens.append((now, input_tokens, output_tokens))

    def snapshot(self, now: float) -> dict:
        self._expire(now)
        used_in = sum(t[1] for t in self._tokens)
        used_out = sum(t[2] for t in self._tokens)
        reset_requests = (self._times[0] + self.window - now) if self._times else 0.0
        reset_tokens = (self._tokens[0][0] + self.window - now) if self._tokens else 0.0
        return {
            "used_requests": len(self._times),
            "used_input_tokens": used_in,
            "used_output_tokens": used_out,
            "reset_requests": max(0.0, reset_requests),
            "reset_tokens": max(0.0, reset_tokens),
        }


def go_duration(seconds: float) -> str:
    """OpenAI's reset format: ``12ms``, ``1s``, ``6m0s``, ``1h2m3s``."""
    if seconds < 1:
        return f"{max(0, int(round(seconds * 1000)))}ms"
    total = round(seconds, 3)
    hours, rest = divmod(total, 3600)
    minutes, secs = divmod(rest, 60)
    sec_text = f"{secs:.3f}".rstrip("0").rstrip(".") + "s"
    if hours:
        return f"{int(hours)}h{int(minutes)}m{sec_text}"
    if minutes:
        return f"{int(minutes)}m{sec_text}"
    return sec_text


def rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(ts, tz=timezone.utc).isoformat(timespec="seconds").replace("+00:00", "Z")


def _retry_after_text(seconds: float) -> str:
    seconds = max(0.0, seconds)
    return str(int(seconds)) if float(seconds).is_integer() else f"{seconds:.3f}".rstrip("0").rstrip(".")


# ----------------------------------------------------------------------------------------------------------------
# HTTP plumbing
# ----------------------------------------------------------------------------------------------------------------


class _Response:
    def __init__(self, status: int, body: Any = None, headers: dict | None = None, content_type: str | None = None):
        self.status = status
        self.headers = dict(headers or {})
        if body is None:
            self.data = b""
        elif isinstance(body, bytes):
            self.data = body
        elif isinstance(body, str):
            self.data = body.encode("utf-8")
        else:
            self.data = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.content_type = content_type or "application/json"
        self.cut = ""  # "" | "body" (framed, JSON stops half-way) | "drop" (connection closed mid-body)


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 1024

    def __init__(self, address, handler, owner: FakeTeacherServer) -> None:
        self.owner = owner
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:  # noqa: D401 - quiet on client disconnects
        import sys

        exc = sys.exc_info()[1]
        if isinstance(exc, (ConnectionError, socket.timeout, OSError)) or self.owner._stopping.is_set():
            return
        self.owner._errors.append(repr(exc))
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "FakeTeacher/1.0"
    sys_version = ""

    def log_message(self, format, *args) -> None:  # noqa: A002 - keep pytest output clean
        pass

    def setup(self) -> None:
        super().setup()
        try:
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        except OSError:
            pass
        self.server.owner._track(self.connection, True)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self.server.owner._track(self.connection, False)

    def do_GET(self) -> None:
        self.server.owner._serve(self, "GET")

    def do_POST(self) -> None:
        self.server.owner._serve(self, "POST")

    def do_DELETE(self) -> None:
        self.server.owner._serve(self, "DELETE")

    def read_body(self) -> bytes:
        if "chunked" in (self.headers.get("Transfer-Encoding") or "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            return b"".join(chunks)
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length else b""

    def send(self, response: _Response) -> None:
        """Status line, headers and body in one write (separate small writes stall on Nagle + delayed ACK)."""
        try:
            self.send_response_only(response.status)
            self.send_header("Date", self.date_time_string())
            self.send_header("Content-Type", response.content_type)
            data = response.data
            text = data.decode("utf-8", errors="replace")
            half = text[: max(1, len(text) // 2)].encode("utf-8")  # whole characters: the JSON, not UTF-8, breaks
            self.send_header("Content-Length", str(len(half if response.cut == "body" else data)))
            for key, value in response.headers.items():
                self.send_header(key, str(value))
            self._headers_buffer.append(b"\r\n")
            self._headers_buffer.append(half if response.cut else data)
            self.wfile.write(b"".join(self._headers_buffer))
            self._headers_buffer = []
            self.wfile.flush()
            if response.cut == "drop":  # the rest never comes: close the socket under the client
                self.close_connection = True
                self.connection.shutdown(socket.SHUT_RDWR)
        except (ConnectionError, OSError):
            self.close_connection = True


# ----------------------------------------------------------------------------------------------------------------
# The server
# ----------------------------------------------------------------------------------------------------------------


def _client_gone(conn: socket.socket) -> bool:
    """The peer closed its side (readable with nothing to read) before we answered."""
    try:
        readable, _, _ = select.select([conn], [], [], 0)
        return bool(readable) and conn.recv(1, socket.MSG_PEEK) == b""
    except (OSError, ValueError):
        return True


def _new_id(prefix: str, n: int = 24) -> str:
    return prefix + uuid.uuid4().hex[:n]


class FakeTeacherServer:
    """Fake OpenAI + Anthropic API on 127.0.0.1. Use as a context manager, or call ``start()`` / ``stop()``.

    Args:
        responder: ``responder(request_json, provider) -> Reply | str | dict | list | None``; default
            ``default_responder``. Called once per generation request / batch line.
        latency: seconds every accepted generation request waits before answering (not 429s), or
            ``latency(request_json, provider) -> seconds``. Settable later: ``server.latency = 1.0``.
        latency_jitter: extra uniform 0..jitter seconds, deterministic per request.
        requests_per_minute: the server's own limit over a sliding ``window_seconds`` window; None = unlimited.
        tokens_per_minute / output_tokens_per_minute: reported in the rate-limit headers only.
        window_seconds: the limiter window (60 s; shorten in tests that wait for recovery).
        retry_after: default ``Retry-After`` seconds of injected ``rate_limit`` replies.
        hang_seconds: how long a ``hang`` reply sleeps (woken early by ``stop()``).
        chaos / seed: ``{variant: probability}`` applied to requests no script entry or rule picked.
        script: initial FIFO entries (variant names or Reply).
        batch_polls: a batch completes on the Nth retrieve (OpenAI: the 1st moves validating -> in_progress).
        batch_delay: and not before this many seconds after creation.
        batch_shuffle: return batch results in a (seeded) shuffled order, as the real APIs may.
        enforce_max_tokens: a reply longer than the request's ``max_tokens`` is cut (``length`` / ``max_tokens``).
        require_api_key: 401 without ``Authorization: Bearer`` (OpenAI) / ``x-api-key`` (Anthropic).
        rate_limit_headers: False = no ``Retry-After`` and no ``x-ratelimit-*`` / ``anthropic-ratelimit-*`` headers
            on any reply (a 429 then says nothing about when to come back). Settable later.
        prompt_cache: simulate both providers' prompt caches (``fake_prompt_cache.py``) and report cached input
            as each provider does; ``cache_ttl_s`` is the default entry lifetime. Off: cache fields are always 0.
        port: 0 = a random free port.
    """

    def __init__(
        self,
        responder: Callable[[dict, str], Any] | None = None,
        *,
        latency: float | Callable[[dict, str], float] = 0.0,
        latency_jitter: float = 0.0,
        requests_per_minute: int | None = None,
        tokens_per_minute: int = 2_000_000,
        output_tokens_per_minute: int = 400_000,
        window_seconds: float = 60.0,
        retry_after: float = 1.0,
        hang_seconds: float = 30.0,
        chaos: dict[str, float] | None = None,
        seed: int = 0,
        script: Iterable[Any] = (),
        batch_polls: int = 2,
        batch_delay: float = 0.0,
        batch_shuffle: bool = False,
        enforce_max_tokens: bool = True,
        require_api_key: bool = True,
        rate_limit_headers: bool = True,
        prompt_cache: bool = False,
        cache_ttl_s: float = 300.0,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            raise ValueError("the fake teacher server binds loopback only")
        self.responder = responder or default_responder
        self.latency = latency
        self.latency_jitter = latency_jitter
        self.tokens_per_minute = tokens_per_minute
        self.output_tokens_per_minute = output_tokens_per_minute
        self.retry_after = retry_after
        self.hang_seconds = hang_seconds
        self.seed = seed
        self.batch_polls = batch_polls
        self.batch_delay = batch_delay
        self.batch_shuffle = batch_shuffle
        self.enforce_max_tokens = enforce_max_tokens
        self.require_api_key = require_api_key
        self.rate_limit_headers = rate_limit_headers
        self.prompt_cache = PromptCache(cache_ttl_s) if prompt_cache else None
        self._host = "127.0.0.1" if host == "localhost" else host
        self._port = port

        self._lock = threading.RLock()
        self._limiter = SlidingWindowLimiter(requests_per_minute, window_seconds)
        self._script: collections.deque[Reply] = collections.deque()
        self._rules: list[_Rule] = []
        self._chaos: dict[str, float] = {}
        self._seen: collections.Counter[str] = collections.Counter()
        self._log: list[RequestRecord] = []
        self._seq = itertools.count(1)
        self._files: dict[str, dict] = {}
        self._file_data: dict[str, bytes] = {}
        self._openai_batches: dict[str, dict] = {}
        self._anthropic_batches: dict[str, dict] = {}
        self._conns: set = set()
        self._errors: list[str] = []
        self._stopping = threading.Event()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None
        self._t0 = time.time()
        self._reset_counters()
        if chaos:
            self.set_chaos(chaos, seed)
        self.script(*script)

    # -- lifecycle -------------------------------------------------------------------------------------------

    def start(self) -> FakeTeacherServer:
        if self._httpd is not None:
            return self
        self._stopping.clear()
        self._httpd = _HTTPServer((self._host, self._port), _Handler, self)
        self._port = self._httpd.server_address[1]
        self._t0 = time.time()
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, name="fake-teacher", daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving: wakes sleeping/hanging handlers, closes open connections, joins the server thread."""
        if self._httpd is None:
            return
        self._stopping.set()
        self._httpd.shutdown()
        with self._lock:
            conns = list(self._conns)
        for conn in conns:
            try:
                conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)
        deadline = time.time() + 2
        while time.time() < deadline:
            with self._lock:
                if not self._conns and self._in_flight == 0:
                    break
            time.sleep(0.01)
        self._httpd = None
        self._thread = None

    def __enter__(self) -> FakeTeacherServer:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- addresses -------------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        return self._port

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self._port}"

    @property
    def openai_base_url(self) -> str:
        """For ``openai.OpenAI(base_url=...)`` (ends in /v1)."""
        return f"{self.url}/v1"

    @property
    def anthropic_base_url(self) -> str:
        """For ``anthropic.Anthropic(base_url=...)`` (the SDK adds /v1 itself)."""
        return self.url

    # -- scripting -------------------------------------------------------------------------------------------

    def script(self, *entries: Any) -> FakeTeacherServer:
        """Append FIFO entries (variant names or Reply); each generation request consumes one, in arrival order."""
        replies = [_script_entry(e) for e in entries]
        with self._lock:
            self._script.extend(replies)
        return self

    @property
    def pending_script(self) -> int:
        with self._lock:
            return len(self._script)

    def when(self, predicate: Callable[[dict, str], bool], reply: Any, times: int | None = None) -> FakeTeacherServer:
        """Reply ``reply`` (variant name or Reply) to requests where ``predicate(request_json, provider)``."""
        with self._lock:
            self._rules.append(_Rule(predicate, _script_entry(reply), times))
        return self

    def on_prompt(self, substring: str, reply: Any, times: int | None = None) -> FakeTeacherServer:
        """Reply ``reply`` to requests whose prompt text (system + messages) contains ``substring``."""
        return self.when(lambda req, provider: substring in prompt_text(req, provider), reply, times)

    def set_chaos(self, probabilities: dict[str, float], seed: int | None = None) -> FakeTeacherServer:
        for kind, p in probabilities.items():
            Reply(kind)  # validates the name
            if not 0 <= p <= 1:
                raise ValueError(f"probability of {kind} must be within [0, 1]")
        if sum(probabilities.values()) > 1 + 1e-9:
            raise ValueError("chaos probabilities add up to more than 1")
        with self._lock:
            self._chaos = dict(probabilities)
            if seed is not None:
                self.seed = seed
        return self

    def clear_script(self) -> None:
        """Drop FIFO entries, rules and chaos."""
        with self._lock:
            self._script.clear()
            self._rules.clear()
            self._chaos = {}

    # -- rate limiter settings -------------------------------------------------------------------------------

    @property
    def requests_per_minute(self) -> int | None:
        return self._limiter.limit

    @requests_per_minute.setter
    def requests_per_minute(self, value: int | None) -> None:
        with self._lock:
            self._limiter.limit = value

    @property
    def window_seconds(self) -> float:
        return self._limiter.window

    @window_seconds.setter
    def window_seconds(self, value: float) -> None:
        with self._lock:
            self._limiter.window = value

    # -- introspection ---------------------------------------------------------------------------------------

    @property
    def requests(self) -> list[RequestRecord]:
        """A copy of the request log, in arrival order."""
        with self._lock:
            return list(self._log)

    def generation_requests(self) -> list[RequestRecord]:
        return [r for r in self.requests if r.path in GENERATION_PATHS]

    def duplicate_keys(self, status: int | None = 200) -> dict[str, int]:
        """Request keys that appear more than once among logged requests with ``status`` (None = any status).

        With the default (200) a retry after a 429/500 is not a duplicate, a second successful answer is; a
        ``cut_body`` / ``drop`` reply never reached the client as an answer, so it is not counted.
        """
        counts = collections.Counter(
            r.request_key
            for r in self.requests
            if r.request_key is not None
            and (status is None or r.status == status)
            and (status != 200 or r.variant not in _UNDELIVERED)
        )
        return {k: n for k, n in counts.items() if n > 1}

    def _reset_counters(self) -> None:
        self._counters: collections.Counter[str] = collections.Counter()
        self._by_status: collections.Counter[int] = collections.Counter()
        self._by_variant: collections.Counter[str] = collections.Counter()
        self._by_path: collections.Counter[str] = collections.Counter()
        self._per_minute: dict[int, collections.Counter[str]] = collections.defaultdict(collections.Counter)
        self._in_flight = 0
        self._max_in_flight = 0

    def reset_stats(self) -> None:
        """Clear counters and the request log (not the limiter window, scripts, files or batches)."""
        with self._lock:
            in_flight = self._in_flight
            self._reset_counters()
            self._in_flight = in_flight
            self._log.clear()

    def stats(self) -> dict:
        """Counters.

        requests: every HTTP request; generation_requests: chat completions + messages;
        accepted: generation requests the limiter let in (answered, or failed by injection); refused_rate_limit;
        answered: generation requests answered 200; injected_errors: accepted but answered with an injected error;
        per_minute: [{"minute": i, "accepted": a, "refused": r}] with minutes counted from server start.
        """
        with self._lock:
            now = time.time()
            snap = self._limiter.snapshot(now)
            return {
                "requests": self._counters["requests"],
                "generation_requests": self._counters["generation"],
                "accepted": self._counters["accepted"],
                "refused_rate_limit": self._counters["refused"],
                "answered": self._counters["answered"],
                "injected_errors": self._counters["injected_errors"],
                "in_flight": self._in_flight,
                "max_in_flight": self._max_in_flight,
                "by_status": dict(self._by_status),
                "by_variant": dict(self._by_variant),
                "by_path": dict(self._by_path),
                "per_minute": [
                    {"minute": m, "accepted": c["accepted"], "refused": c["refused"]}
                    for m, c in sorted(self._per_minute.items())
                ],
                "input_tokens": self._counters["input_tokens"],
                "output_tokens": self._counters["output_tokens"],
                "batches_created": self._counters["batches_created"],
                "batch_lines": self._counters["batch_lines"],
                "window_used_requests": snap["used_requests"],
                "requests_per_minute": self._limiter.limit,
                "errors": list(self._errors),
                "uptime": now - self._t0,
            }

    # -- internals: connections and logging ------------------------------------------------------------------

    def _track(self, conn, add: bool) -> None:
        with self._lock:
            (self._conns.add if add else self._conns.discard)(conn)

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless stopping; False when woken by stop()."""
        if seconds <= 0:
            return not self._stopping.is_set()
        return not self._stopping.wait(seconds)

    def _record(self, record: RequestRecord) -> None:
        with self._lock:
            self._log.append(record)

    # -- dispatch --------------------------------------------------------------------------------------------

    def _serve(self, handler: _Handler, method: str) -> None:
        path = urlsplit(handler.path).path.rstrip("/") or "/"
        provider = ANTHROPIC if path.startswith("/v1/messages") else OPENAI
        record = RequestRecord(seq=next(self._seq), started=time.time(), method=method, path=path, provider=provider)
        record.request_key = handler.headers.get("Idempotency-Key") or handler.headers.get("X-Request-Key")
        retry = handler.headers.get("x-stainless-retry-count")
        record.retry_count = int(retry) if retry and retry.isdigit() else None
        with self._lock:
            self._counters["requests"] += 1
            self._by_path[f"{method} {_ID_SEGMENT.sub('/{id}', path)}"] += 1
            self._in_flight += 1
            self._max_in_flight = max(self._max_in_flight, self._in_flight)
        self._record(record)
        response: _Response | None
        try:
            body = handler.read_body()
            response = self._route(handler, method, path, provider, body, record)
        except Exception as exc:  # a bug in the fake must still answer, visibly
            self._errors.append(f"{method} {path}: {exc!r}")
            response = self._error(provider, 500, "api_error", f"fake server error: {exc!r}")
        finally:
            with self._lock:
                self._in_flight -= 1
        # Dropped: stopped while hanging, or the client gave up meanwhile (its timeout fired and it closed the
        # connection): nothing is delivered, so a retry of that request is not a second paid answer.
        if response is None or self._stopping.is_set() or _client_gone(handler.connection):
            record.status = 0
            record.finished = time.time()
            handler.close_connection = True
            return
        record.status = response.status
        record.finished = time.time()
        with self._lock:
            self._by_status[response.status] += 1
        handler.send(response)

    def _route(self, handler, method, path, provider, body: bytes, record) -> _Response | None:
        if self.require_api_key and not self._has_key(handler, provider):
            if provider == ANTHROPIC:
                return self._error(provider, 401, "authentication_error", "x-api-key header is required")
            return self._error(provider, 401, "invalid_request_error", "You didn't provide an API key.", code=None)
        parts = path.strip("/").split("/")
        if method == "POST" and path in GENERATION_PATHS:
            return self._generation(handler, provider, body, record)
        if provider == OPENAI:
            if parts[:2] == ["v1", "files"]:
                if method == "POST" and len(parts) == 2:
                    return self._file_upload(handler, body)
                if len(parts) >= 3:
                    return self._file_get(method, parts[2], len(parts) == 4 and parts[3] == "content")
            if parts[:2] == ["v1", "batches"]:
                if method == "POST" and len(parts) == 2:
                    return self._openai_batch_create(body)
                if method == "GET" and len(parts) == 2:
                    return self._list(self._openai_batches, OPENAI)
                if method == "GET" and len(parts) == 3:
                    return self._openai_batch_retrieve(parts[2])
                if method == "POST" and len(parts) == 4 and parts[3] == "cancel":
                    return self._openai_batch_cancel(parts[2])
        else:
            if parts[:3] == ["v1", "messages", "batches"]:
                if method == "POST" and len(parts) == 3:
                    return self._anthropic_batch_create(body)
                if method == "GET" and len(parts) == 3:
                    return self._list(self._anthropic_batches, ANTHROPIC)
                if method == "GET" and len(parts) == 4:
                    return self._anthropic_batch_retrieve(parts[3])
                if method == "GET" and len(parts) == 5 and parts[4] == "results":
                    return self._anthropic_batch_results(parts[3])
                if method == "POST" and len(parts) == 5 and parts[4] == "cancel":
                    return self._anthropic_batch_cancel(parts[3])
        return self._error(provider, 404, "not_found_error", f"Unknown request URL: {method} {path}")

    @staticmethod
    def _has_key(handler, provider) -> bool:
        if provider == ANTHROPIC:
            return bool(handler.headers.get("x-api-key") or handler.headers.get("Authorization"))
        auth = handler.headers.get("Authorization") or ""
        return auth.startswith("Bearer ") and len(auth) > len("Bearer ")

    # -- errors and headers ----------------------------------------------------------------------------------

    def _error(
        self,
        provider: str,
        status: int,
        err_type: str,
        message: str,
        *,
        code: str | None = None,
        headers: dict | None = None,
    ) -> _Response:
        request_id = _new_id("req_")
        headers = dict(headers or {})
        if provider == ANTHROPIC:
            headers.setdefault("request-id", request_id)
            body = {"type": "error", "error": {"type": err_type, "message": message}, "request_id": request_id}
        else:
            headers.setdefault("x-request-id", request_id)
            openai_type = {"not_found_error": "invalid_request_error", "api_error": "server_error"}.get(
                err_type, err_type
            )
            body = {"error": {"message": message, "type": openai_type, "param": None, "code": code}}
        return _Response(status, body, headers)

    def _rate_headers(self, provider: str, now: float, request_id: str) -> dict:
        if not self.rate_limit_headers:
            return {"request-id" if provider == ANTHROPIC else "x-request-id": request_id}
        with self._lock:
            snap = self._limiter.snapshot(now)
            limit = self._limiter.limit
            window = self._limiter.window
        req_limit = limit if limit is not None else 1_000_000
        req_remaining = max(0, req_limit - snap["used_requests"])
        if limit is not None and window != 60.0:  # the headers speak per minute, whatever window a test shortened
            req_limit = max(1, round(limit * 60.0 / window))
        if provider == OPENAI:
            used = snap["used_input_tokens"] + snap["used_output_tokens"]
            return {
                "x-request-id": request_id,
                "openai-processing-ms": "1",
                "x-ratelimit-limit-requests": str(req_limit),
                "x-ratelimit-remaining-requests": str(req_remaining),
                "x-ratelimit-reset-requests": go_duration(snap["reset_requests"]),
                "x-ratelimit-limit-tokens": str(self.tokens_per_minute),
                "x-ratelimit-remaining-tokens": str(max(0, self.tokens_per_minute - used)),
                "x-ratelimit-reset-tokens": go_duration(snap["reset_tokens"]),
            }
        reset_req = rfc3339(now + snap["reset_requests"])
        reset_tok = rfc3339(now + snap["reset_tokens"])
        in_rem = max(0, self.tokens_per_minute - snap["used_input_tokens"])
        out_rem = max(0, self.output_tokens_per_minute - snap["used_output_tokens"])
        return {
            "request-id": request_id,
            "anthropic-ratelimit-requests-limit": str(req_limit),
            "anthropic-ratelimit-requests-remaining": str(req_remaining),
            "anthropic-ratelimit-requests-reset": reset_req,
            "anthropic-ratelimit-input-tokens-limit": str(self.tokens_per_minute),
            "anthropic-ratelimit-input-tokens-remaining": str(in_rem),
            "anthropic-ratelimit-input-tokens-reset": reset_tok,
            "anthropic-ratelimit-output-tokens-limit": str(self.output_tokens_per_minute),
            "anthropic-ratelimit-output-tokens-remaining": str(out_rem),
            "anthropic-ratelimit-output-tokens-reset": reset_tok,
            "anthropic-ratelimit-tokens-limit": str(self.tokens_per_minute + self.output_tokens_per_minute),
            "anthropic-ratelimit-tokens-remaining": str(in_rem + out_rem),
            "anthropic-ratelimit-tokens-reset": reset_tok,
        }

    def _rate_limited(
        self, provider: str, model: str, retry_after: float, now: float, message: str | None, bare: bool = False
    ) -> _Response:
        request_id = _new_id("req_")
        if bare or not self.rate_limit_headers:
            headers = {"request-id" if provider == ANTHROPIC else "x-request-id": request_id}
            msg = message or "Rate limit exceeded. Please slow down."
            err_type = "rate_limit_error" if provider == ANTHROPIC else "requests"
            return self._error(provider, 429, err_type, msg, code="rate_limit_exceeded", headers=headers)
        headers = self._rate_headers(provider, now, request_id)
        headers["retry-after"] = _retry_after_text(retry_after)
        if provider == OPENAI:
            headers["x-ratelimit-remaining-requests"] = "0"
            limit = self._limiter.limit
            msg = message or (
                f"Rate limit reached for {model} in organization org-fake on requests per min (RPM): "
                f"Limit {limit}, Used {limit}, Requested 1. Please try again in {_retry_after_text(retry_after)}s. "
                "Visit https://platform.openai.com/account/rate-limits to learn more."
            )
            return self._error(provider, 429, "requests", msg, code="rate_limit_exceeded", headers=headers)
        headers["anthropic-ratelimit-requests-remaining"] = "0"
        msg = message or "This request would exceed the rate limit for your organization of requests per minute."
        return self._error(provider, 429, "rate_limit_error", msg, headers=headers)

    # -- reply selection -------------------------------------------------------------------------------------

    def _choose(self, req: dict, provider: str, phash: str) -> tuple[Reply, Any]:
        """(the reply, the responder's normal content)."""
        override: Reply | None = None
        with self._lock:
            self._seen[phash] += 1
            occurrence = self._seen[phash]
            if self._script:
                override = self._script.popleft()
            else:
                for rule in self._rules:
                    if rule.times is not None and rule.used >= rule.times:
                        continue
                    try:
                        hit = rule.predicate(req, provider)
                    except Exception:
                        hit = False
                    if hit:
                        rule.used += 1
                        override = rule.reply
                        break
            chaos = dict(self._chaos)
            seed = self.seed
        if override is None and chaos:
            digest = hashlib.sha256(f"{seed}:{phash}:{occurrence}".encode()).hexdigest()
            u = int(digest[:13], 16) / 16**13
            acc = 0.0
            for kind, p in chaos.items():
                acc += p
                if u < acc:
                    override = Reply(kind)
                    break
        base = as_reply(self.responder(req, provider))
        normal = base.content if base is not None and base.content is not None else None
        if normal is None:
            normal = default_responder(req, provider)
        reply = copy.copy(override if override is not None else (base or Reply("ok", content=normal)))
        return reply, normal

    def _latency_for(self, reply: Reply, phash: str, req: dict, provider: str) -> float:
        if reply.latency is not None:
            latency = reply.latency
        elif callable(self.latency):
            latency = float(self.latency(req, provider))
        else:
            latency = self.latency
        if self.latency_jitter:
            u = int(hashlib.sha256(f"jitter:{self.seed}:{phash}".encode()).hexdigest()[:8], 16) / 16**8
            latency += u * self.latency_jitter
        return latency

    # -- generation ------------------------------------------------------------------------------------------

    def _generation(self, handler, provider: str, body: bytes, record: RequestRecord) -> _Response | None:
        with self._lock:
            self._counters["generation"] += 1
        try:
            req = json.loads(body.decode("utf-8") or "null")
        except (UnicodeDecodeError, ValueError) as exc:
            return self._error(provider, 400, "invalid_request_error", f"We could not parse the JSON body: {exc}")
        problem = self._validate_generation(req, provider)
        if problem:
            return self._error(provider, 400, "invalid_request_error", problem)
        record.model = req.get("model")
        record.prompt_hash = request_hash(req, provider)
        metadata = req.get("metadata") if isinstance(req.get("metadata"), dict) else {}
        record.request_key = record.request_key or metadata.get("request_key") or metadata.get("idempotency_key")

        now = time.time()
        minute = int((now - self._t0) // 60)
        with self._lock:
            accepted, wait = self._limiter.try_acquire(now)
            self._counters["accepted" if accepted else "refused"] += 1
            self._per_minute[minute]["accepted" if accepted else "refused"] += 1
        if not accepted:
            record.refused = True
            record.variant = "rate_limit"
            with self._lock:
                self._by_variant["refused_by_limiter"] += 1
            return self._rate_limited(provider, req.get("model", ""), math.ceil(wait) or 1, now, None)

        reply, normal = self._choose(req, provider, record.prompt_hash)
        record.variant = reply.kind
        with self._lock:
            self._by_variant[reply.kind] += 1
        if reply.kind in ("rate_limit", "rate_limit_bare"):
            with self._lock:
                self._counters["injected_errors"] += 1
            retry_after = self.retry_after if reply.retry_after is None else reply.retry_after
            bare = reply.kind == "rate_limit_bare"
            return self._rate_limited(provider, req.get("model", ""), retry_after, time.time(), reply.message, bare)
        if not self._sleep(self._latency_for(reply, record.prompt_hash, req, provider)):
            return None
        if reply.kind == "hang":
            if not self._sleep(self.hang_seconds if reply.hang_seconds is None else reply.hang_seconds):
                return None
        status, payload = self._build(provider, req, reply, normal)
        if status != 200:
            with self._lock:
                self._counters["injected_errors"] += 1
            return self._error(provider, status, payload["type"], payload["message"])
        request_id = _new_id("req_")
        with self._lock:
            self._counters["answered"] += 1
            usage = payload["usage"]
            n_in = usage.get("prompt_tokens", usage.get("input_tokens", 0))
            n_out = usage.get("completion_tokens", usage.get("output_tokens", 0))
            self._counters["input_tokens"] += n_in
            self._counters["output_tokens"] += n_out
            self._limiter.add_tokens(time.time(), n_in, n_out)
        response = _Response(200, payload, self._rate_headers(provider, time.time(), request_id))
        response.cut = {"cut_body": "body", "drop": "drop"}.get(reply.kind, "")
        return response

    @staticmethod
    def _validate_generation(req: Any, provider: str) -> str | None:
        if not isinstance(req, dict):
            return "The request body must be a JSON object."
        if not req.get("model"):
            return "model: Field required" if provider == ANTHROPIC else "you must provide a model parameter"
        messages = req.get("messages")
        if not isinstance(messages, list) or not messages:
            return "messages: Field required" if provider == ANTHROPIC else "'messages' must be a non-empty array"
        if req.get("stream"):
            return "stream=true is not supported by the fake teacher server"
        if provider == ANTHROPIC and not isinstance(req.get("max_tokens"), int):
            return "max_tokens: Field required"
        return None

    def _build(self, provider: str, req: dict, reply: Reply, normal: Any) -> tuple[int, dict]:
        """(status, body) for a non-429 reply; error bodies are {"type", "message"}."""
        kind = reply.kind
        if kind == "server_error":
            msg = reply.message or (
                "Internal server error"
                if provider == ANTHROPIC
                else "The server had an error while processing your request. Sorry about that!"
            )
            return 500, {"type": "api_error", "message": msg}
        if kind == "overloaded":
            if provider == ANTHROPIC:
                return 529, {"type": "overloaded_error", "message": reply.message or "Overloaded"}
            return 503, {
                "type": "server_error",
                "message": reply.message or "The engine is currently overloaded, please try again later.",
            }

        tool = forced_tool(req) if provider == ANTHROPIC else None
        if kind == "english":
            content = reply.content if reply.content is not None else default_responder(req, provider, lang="en")
        elif reply.content is not None:
            content = reply.content
        else:
            content = normal
        max_tokens = _max_tokens(req)
        text = content if isinstance(content, str) else json.dumps(content, ensure_ascii=False)
        stop = "normal"
        if kind == "empty":
            text, stop = "", "normal"
        elif kind == "truncated":
            text, stop = _truncate(text), "length"
        elif kind == "malformed":
            text = _malform(text)
        if self.enforce_max_tokens and max_tokens is not None and approx_tokens(text) > max_tokens:
            text, stop = _cut_to_tokens(text, max_tokens), "length"
        out_tokens = max_tokens if (stop == "length" and max_tokens) else approx_tokens(text)
        in_tokens = _prompt_tokens(req, provider)
        cached = written = 0
        if self.prompt_cache is not None and provider == OPENAI:
            in_tokens, cached = self.prompt_cache.openai(req)
        elif self.prompt_cache is not None:
            in_tokens, cached, written = self.prompt_cache.anthropic(req)

        if provider == OPENAI:
            n = req.get("n") if isinstance(req.get("n"), int) and req.get("n") > 0 else 1
            message = {"role": "assistant", "content": text, "refusal": None, "annotations": []}
            choices = [
                {
                    "index": i,
                    "message": dict(message),
                    "logprobs": None,
                    "finish_reason": "length" if stop == "length" else "stop",
                }
                for i in range(n)
            ]
            return 200, {
                "id": _new_id("chatcmpl-", 29),
                "object": "chat.completion",
                "created": int(time.time()),
                "model": req.get("model"),
                "choices": choices,
                "usage": {
                    "prompt_tokens": in_tokens,
                    "completion_tokens": out_tokens * n,
                    "total_tokens": in_tokens + out_tokens * n,
                    "prompt_tokens_details": {"cached_tokens": cached, "audio_tokens": 0},
                    "completion_tokens_details": {
                        "reasoning_tokens": 0,
                        "audio_tokens": 0,
                        "accepted_prediction_tokens": 0,
                        "rejected_prediction_tokens": 0,
                    },
                },
                "service_tier": "default",
                "system_fingerprint": "fp_fake_teacher",
            }

        if tool is not None:
            if kind == "empty":
                blocks, stop_reason = [], "end_turn"
            elif stop == "length":
                blocks = [{"type": "tool_use", "id": _new_id("toolu_"), "name": tool["name"], "input": {}}]
                stop_reason = "max_tokens"
            else:
                if kind == "malformed":
                    tool_input: Any = {"partial": _truncate(json.dumps(content, ensure_ascii=False))}
                elif isinstance(content, dict):
                    tool_input = content
                else:
                    try:
                        tool_input = json.loads(text)
                    except ValueError:
                        tool_input = {"text": text}
                    if not isinstance(tool_input, dict):
                        tool_input = {"value": tool_input}
                blocks = [{"type": "tool_use", "id": _new_id("toolu_"), "name": tool["name"], "input": tool_input}]
                stop_reason = "tool_use"
                out_tokens = approx_tokens(json.dumps(tool_input, ensure_ascii=False))
        else:
            blocks = [] if kind == "empty" else [{"type": "text", "text": text}]
            stop_reason = "max_tokens" if stop == "length" else "end_turn"
        return 200, {
            "id": _new_id("msg_"),
            "type": "message",
            "role": "assistant",
            "model": req.get("model"),
            "content": blocks,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": in_tokens - cached - written,
                "output_tokens": max(1, out_tokens),
                "cache_creation_input_tokens": written,
                "cache_read_input_tokens": cached,
                "service_tier": "standard",
            },
        }

    def _batch_line(self, provider: str, req: dict, batch_id: str, custom_id: str) -> tuple[int, dict]:
        """Answer one batch line with the same reply machinery (no latency, hang answers normally)."""
        phash = request_hash(req, provider)
        record = RequestRecord(
            seq=next(self._seq),
            started=time.time(),
            method="BATCH",
            path="/v1/chat/completions" if provider == OPENAI else "/v1/messages",
            provider=provider,
            model=req.get("model"),
            prompt_hash=phash,
            batch_id=batch_id,
            custom_id=custom_id,
        )
        problem = self._validate_generation(req, provider)
        if problem:
            status, body = 400, {"type": "invalid_request_error", "message": problem}
            record.variant = "invalid"
        else:
            reply, normal = self._choose(req, provider, phash)
            record.variant = reply.kind
            if reply.kind in ("rate_limit", "rate_limit_bare"):
                status, body = 429, {"type": "rate_limit_error", "message": reply.message or "Rate limit exceeded"}
            else:
                status, body = self._build(provider, req, reply, normal)
        record.status = status
        record.finished = time.time()
        with self._lock:
            self._counters["batch_lines"] += 1
            if record.variant:
                self._by_variant[record.variant] += 1
            if status == 200:
                usage = body["usage"]
                self._counters["input_tokens"] += usage.get("prompt_tokens", usage.get("input_tokens", 0))
                self._counters["output_tokens"] += usage.get("completion_tokens", usage.get("output_tokens", 0))
        self._record(record)
        return status, body

    def _ordered(self, items: list) -> list:
        if not self.batch_shuffle:
            return items
        import random

        items = list(items)
        random.Random(self.seed).shuffle(items)
        return items

    # -- OpenAI files ----------------------------------------------------------------------------------------

    def _store_file(self, data: bytes, filename: str, purpose: str) -> dict:
        file_id = _new_id("file-", 22)
        obj = {
            "id": file_id,
            "object": "file",
            "bytes": len(data),
            "created_at": int(time.time()),
            "filename": filename,
            "purpose": purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }
        with self._lock:
            self._files[file_id] = obj
            self._file_data[file_id] = data
        return obj

    def _file_upload(self, handler, body: bytes) -> _Response:
        ctype = handler.headers.get("Content-Type") or ""
        if not ctype.startswith("multipart/form-data"):
            return self._error(OPENAI, 400, "invalid_request_error", "Expected multipart/form-data")
        msg = BytesParser(policy=email_policy.HTTP).parsebytes(
            b"Content-Type: " + ctype.encode("latin-1") + b"\r\n\r\n" + body
        )
        fields: dict[str, Any] = {}
        filename = "upload.jsonl"
        for part in msg.iter_parts():
            name = part.get_param("name", header="content-disposition")
            payload = part.get_payload(decode=True) or b""
            if part.get_filename():
                filename = part.get_filename()
            fields[name] = payload
        if "file" not in fields:
            return self._error(OPENAI, 400, "invalid_request_error", "'file' is a required property")
        purpose = fields.get("purpose", b"").decode("utf-8")
        valid = {"assistants", "batch", "fine-tune", "vision", "user_data", "evals"}
        if purpose not in valid:
            return self._error(OPENAI, 400, "invalid_request_error", f"Invalid purpose {purpose!r}")
        return _Response(200, self._store_file(fields["file"], filename, purpose), {"x-request-id": _new_id("req_")})

    def _file_get(self, method: str, file_id: str, content: bool) -> _Response:
        with self._lock:
            obj = self._files.get(file_id)
            data = self._file_data.get(file_id)
        if obj is None:
            return self._error(OPENAI, 404, "invalid_request_error", f"No such File object: {file_id}")
        if method == "DELETE":
            with self._lock:
                self._files.pop(file_id, None)
                self._file_data.pop(file_id, None)
            return _Response(200, {"id": file_id, "object": "file", "deleted": True})
        if content:
            return _Response(200, data, {"x-request-id": _new_id("req_")}, "application/octet-stream")
        return _Response(200, obj, {"x-request-id": _new_id("req_")})

    # -- OpenAI batches --------------------------------------------------------------------------------------

    def _openai_batch_create(self, body: bytes) -> _Response:
        try:
            params = json.loads(body or b"null")
        except ValueError:
            return self._error(OPENAI, 400, "invalid_request_error", "Invalid JSON body")
        if not isinstance(params, dict):
            return self._error(OPENAI, 400, "invalid_request_error", "The request body must be a JSON object.")
        file_id = params.get("input_file_id")
        with self._lock:
            data = self._file_data.get(file_id)
            file_obj = self._files.get(file_id)
        if data is None:
            return self._error(OPENAI, 404, "invalid_request_error", f"No such File object: {file_id}")
        if file_obj["purpose"] != "batch":
            return self._error(OPENAI, 400, "invalid_request_error", "The input file must have purpose 'batch'")
        endpoint = params.get("endpoint")
        if endpoint != "/v1/chat/completions":
            return self._error(
                OPENAI, 400, "invalid_request_error", f"Unsupported endpoint {endpoint!r} (fake: chat completions only)"
            )
        if params.get("completion_window") != "24h":
            return self._error(OPENAI, 400, "invalid_request_error", "completion_window must be '24h'")
        lines, errors = [], []
        seen: set[str] = set()
        for number, raw in enumerate(data.decode("utf-8", errors="replace").splitlines(), start=1):
            if not raw.strip():
                continue
            try:
                item = json.loads(raw)
            except ValueError:
                errors.append(
                    {
                        "code": "invalid_json_line",
                        "message": "This line is not parseable as valid JSON.",
                        "param": None,
                        "line": number,
                    }
                )
                continue
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not custom_id:
                errors.append(
                    {
                        "code": "missing_required_parameter",
                        "message": "custom_id is required",
                        "param": "custom_id",
                        "line": number,
                    }
                )
            elif custom_id in seen:
                errors.append(
                    {
                        "code": "duplicate_custom_id",
                        "message": f"The custom_id '{custom_id}' is duplicated.",
                        "param": "custom_id",
                        "line": number,
                    }
                )
            elif (
                item.get("url") != endpoint
                or item.get("method", "POST") != "POST"
                or not isinstance(item.get("body"), dict)
            ):
                errors.append(
                    {
                        "code": "invalid_request",
                        "message": "url must match the batch endpoint, method POST, body an object",
                        "param": "url",
                        "line": number,
                    }
                )
            else:
                seen.add(custom_id)
                lines.append(item)
        if not lines and not errors:
            errors.append(
                {"code": "empty_file", "message": "The batch input file is empty.", "param": None, "line": None}
            )
        now = int(time.time())
        batch_id = _new_id("batch_")
        batch = {
            "id": batch_id,
            "object": "batch",
            "endpoint": endpoint,
            "errors": None,
            "input_file_id": file_id,
            "completion_window": "24h",
            "status": "validating",
            "output_file_id": None,
            "error_file_id": None,
            "created_at": now,
            "in_progress_at": None,
            "expires_at": now + 24 * 3600,
            "finalizing_at": None,
            "completed_at": None,
            "failed_at": None,
            "expired_at": None,
            "cancelling_at": None,
            "cancelled_at": None,
            "request_counts": {"total": 0, "completed": 0, "failed": 0},
            "metadata": params.get("metadata"),
        }
        with self._lock:
            self._openai_batches[batch_id] = {
                "obj": batch,
                "lines": lines,
                "errors": errors,
                "polls": 0,
                "t": time.time(),
            }
            self._counters["batches_created"] += 1
        return _Response(200, batch, {"x-request-id": _new_id("req_")})

    def _openai_batch_retrieve(self, batch_id: str) -> _Response:
        with self._lock:
            state = self._openai_batches.get(batch_id)
            if state is None:
                return self._error(OPENAI, 404, "invalid_request_error", f"No batch found with id '{batch_id}'.")
            state["polls"] += 1
            batch = state["obj"]
            now = int(time.time())
            if batch["status"] == "validating":
                if state["errors"]:
                    batch.update(status="failed", failed_at=now, errors={"object": "list", "data": state["errors"]})
                else:
                    batch.update(status="in_progress", in_progress_at=now)
                    batch["request_counts"]["total"] = len(state["lines"])
            elif batch["status"] == "cancelling":
                batch.update(status="cancelled", cancelled_at=now)
            done = (
                batch["status"] == "in_progress"
                and state["polls"] >= self.batch_polls
                and time.time() - state["t"] >= self.batch_delay
            )
        if done:
            self._openai_batch_complete(batch_id)
        with self._lock:
            return _Response(
                200, copy.deepcopy(self._openai_batches[batch_id]["obj"]), {"x-request-id": _new_id("req_")}
            )

    def _openai_batch_complete(self, batch_id: str) -> None:
        with self._lock:
            state = self._openai_batches[batch_id]
            if state["obj"]["status"] != "in_progress" or state.get("completing"):
                return
            state["completing"] = True
            lines = list(state["lines"])
        out, err = [], []
        usage = {"input_tokens": 0, "output_tokens": 0}
        for item in lines:
            status, body = self._batch_line(OPENAI, item["body"], batch_id, item["custom_id"])
            request_id = _new_id("req_")
            if status == 200:
                usage["input_tokens"] += body["usage"]["prompt_tokens"]
                usage["output_tokens"] += body["usage"]["completion_tokens"]
                response_body = body
                target = out
            else:
                err_type = {"rate_limit_error": "requests", "api_error": "server_error"}.get(body["type"], body["type"])
                code = "rate_limit_exceeded" if status == 429 else None
                response_body = {"error": {"message": body["message"], "type": err_type, "param": None, "code": code}}
                target = err
            target.append(
                {
                    "id": _new_id("batch_req_"),
                    "custom_id": item["custom_id"],
                    "response": {"status_code": status, "request_id": request_id, "body": response_body},
                    "error": None,
                }
            )

        def jsonl(rows: list) -> bytes:
            return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._ordered(rows)).encode("utf-8")

        output_id = self._store_file(jsonl(out), f"{batch_id}_output.jsonl", "batch_output")["id"] if out else None
        error_id = self._store_file(jsonl(err), f"{batch_id}_error.jsonl", "batch_output")["id"] if err else None
        now = int(time.time())
        with self._lock:
            state["obj"].update(
                status="completed",
                finalizing_at=now,
                completed_at=now,
                output_file_id=output_id,
                error_file_id=error_id,
                request_counts={"total": len(lines), "completed": len(out), "failed": len(err)},
                usage={
                    "input_tokens": usage["input_tokens"],
                    "input_tokens_details": {"cached_tokens": 0},
                    "output_tokens": usage["output_tokens"],
                    "output_tokens_details": {"reasoning_tokens": 0},
                    "total_tokens": usage["input_tokens"] + usage["output_tokens"],
                },
            )

    def _openai_batch_cancel(self, batch_id: str) -> _Response:
        with self._lock:
            state = self._openai_batches.get(batch_id)
            if state is None:
                return self._error(OPENAI, 404, "invalid_request_error", f"No batch found with id '{batch_id}'.")
            batch = state["obj"]
            if batch["status"] in ("validating", "in_progress"):
                batch.update(status="cancelling", cancelling_at=int(time.time()))
            return _Response(200, copy.deepcopy(batch), {"x-request-id": _new_id("req_")})

    def _list(self, table: dict, provider: str) -> _Response:
        with self._lock:
            objs = [copy.deepcopy(s["obj"]) for s in table.values()][::-1]  # newest first
        body: dict = {
            "data": objs,
            "has_more": False,
            "first_id": objs[0]["id"] if objs else None,
            "last_id": objs[-1]["id"] if objs else None,
        }
        if provider == OPENAI:
            body = {"object": "list", **body}
        return _Response(200, body)

    # -- Anthropic message batches ---------------------------------------------------------------------------

    def _anthropic_batch_create(self, body: bytes) -> _Response:
        try:
            params = json.loads(body or b"null")
        except ValueError:
            return self._error(ANTHROPIC, 400, "invalid_request_error", "Invalid JSON body")
        requests = params.get("requests") if isinstance(params, dict) else None
        if not isinstance(requests, list) or not requests:
            return self._error(ANTHROPIC, 400, "invalid_request_error", "requests: Field required (a non-empty list)")
        seen: set[str] = set()
        for i, item in enumerate(requests):
            custom_id = item.get("custom_id") if isinstance(item, dict) else None
            if not isinstance(custom_id, str) or not re.fullmatch(r"[a-zA-Z0-9_-]{1,64}", custom_id):
                return self._error(
                    ANTHROPIC,
                    400,
                    "invalid_request_error",
                    f"requests.{i}.custom_id: must match ^[a-zA-Z0-9_-]{{1,64}}$",
                )
            if custom_id in seen:
                return self._error(ANTHROPIC, 400, "invalid_request_error", f"Duplicate custom_id: {custom_id}")
            if not isinstance(item.get("params"), dict):
                return self._error(ANTHROPIC, 400, "invalid_request_error", f"requests.{i}.params: Field required")
            seen.add(custom_id)
        now = time.time()
        batch_id = _new_id("msgbatch_")
        batch = {
            "id": batch_id,
            "type": "message_batch",
            "processing_status": "in_progress",
            "request_counts": {"processing": len(requests), "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0},
            "ended_at": None,
            "created_at": rfc3339(now),
            "expires_at": rfc3339(now + 24 * 3600),
            "archived_at": None,
            "cancel_initiated_at": None,
            "results_url": None,
        }
        with self._lock:
            self._anthropic_batches[batch_id] = {
                "obj": batch,
                "requests": requests,
                "polls": 0,
                "t": now,
                "results": None,
            }
            self._counters["batches_created"] += 1
        return _Response(200, batch, {"request-id": _new_id("req_")})

    def _anthropic_batch_retrieve(self, batch_id: str) -> _Response:
        with self._lock:
            state = self._anthropic_batches.get(batch_id)
            if state is None:
                return self._error(ANTHROPIC, 404, "not_found_error", f"Message batch {batch_id} not found")
            state["polls"] += 1
            status = state["obj"]["processing_status"]
            done = status == "canceling" or (
                status == "in_progress"
                and state["polls"] >= self.batch_polls
                and time.time() - state["t"] >= self.batch_delay
            )
        if done:
            self._anthropic_batch_end(batch_id)
        with self._lock:
            return _Response(200, copy.deepcopy(state["obj"]), {"request-id": _new_id("req_")})

    def _anthropic_batch_end(self, batch_id: str) -> None:
        with self._lock:
            state = self._anthropic_batches[batch_id]
            if state["obj"]["processing_status"] == "ended" or state.get("ending"):
                return
            state["ending"] = True
            canceled = state["obj"]["processing_status"] == "canceling"
            requests = list(state["requests"])
        results = []
        counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for item in requests:
            if canceled:
                results.append({"custom_id": item["custom_id"], "result": {"type": "canceled"}})
                counts["canceled"] += 1
                continue
            status, body = self._batch_line(ANTHROPIC, item["params"], batch_id, item["custom_id"])
            if status == 200:
                results.append({"custom_id": item["custom_id"], "result": {"type": "succeeded", "message": body}})
                counts["succeeded"] += 1
            else:
                error = {
                    "type": "error",
                    "error": {"type": body["type"], "message": body["message"]},
                    "request_id": _new_id("req_"),
                }
                results.append({"custom_id": item["custom_id"], "result": {"type": "errored", "error": error}})
                counts["errored"] += 1
        data = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in self._ordered(results)).encode("utf-8")
        with self._lock:
            state["results"] = data
            state["obj"].update(
                processing_status="ended",
                ended_at=rfc3339(time.time()),
                request_counts=counts,
                results_url=f"{self.url}/v1/messages/batches/{batch_id}/results",
            )

    def _anthropic_batch_results(self, batch_id: str) -> _Response:
        with self._lock:
            state = self._anthropic_batches.get(batch_id)
            data = state["results"] if state else None
        if state is None:
            return self._error(ANTHROPIC, 404, "not_found_error", f"Message batch {batch_id} not found")
        if data is None:
            return self._error(
                ANTHROPIC, 404, "not_found_error", f"Message batch {batch_id} has not ended; no results yet"
            )
        return _Response(200, data, {"request-id": _new_id("req_")}, "application/binary")

    def _anthropic_batch_cancel(self, batch_id: str) -> _Response:
        with self._lock:
            state = self._anthropic_batches.get(batch_id)
            if state is None:
                return self._error(ANTHROPIC, 404, "not_found_error", f"Message batch {batch_id} not found")
            if state["obj"]["processing_status"] == "in_progress":
                state["obj"].update(processing_status="canceling", cancel_initiated_at=rfc3339(time.time()))
            return _Response(200, copy.deepcopy(state["obj"]), {"request-id": _new_id("req_")})


# ----------------------------------------------------------------------------------------------------------------
# Standalone use: python tests/fake_teacher_server.py --latency 1 --rpm 500
# ----------------------------------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Fake OpenAI/Anthropic teacher server on 127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--latency", type=float, default=0.0)
    parser.add_argument("--rpm", type=int, default=None, help="requests per minute (sliding window)")
    parser.add_argument("--chaos", default="", help="e.g. rate_limit=0.05,malformed=0.02")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    chaos = {k: float(v) for k, v in (p.split("=") for p in args.chaos.split(",") if p)}
    with FakeTeacherServer(
        latency=args.latency, requests_per_minute=args.rpm, chaos=chaos, seed=args.seed, port=args.port
    ) as server:
        print(f"OPENAI_BASE_URL={server.openai_base_url}\nANTHROPIC_BASE_URL={server.anthropic_base_url}", flush=True)
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
        print(json.dumps(server.stats(), ensure_ascii=False, indent=2))


if __name__ == "__main__":
    main()
