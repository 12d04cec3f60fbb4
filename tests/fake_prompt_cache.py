"""The providers' prompt caches, simulated for the fake teacher server (`FakeTeacherServer(prompt_cache=True)`).

Token counts use the server's own estimate (`approx_tokens`: one token per non-ASCII character, four ASCII
characters per token) for the prompt, the cached prefix and the reply alike.

OpenAI (automatic caching): a prompt of at least 1,024 tokens is cached; a later prompt that starts with the same
text reads the longest cached prefix, counted from 1,024 tokens in steps of 128. The prefix order is the response
format's JSON schema, then the messages in order. Usage: `prompt_tokens` is every input token,
`prompt_tokens_details.cached_tokens` the part read from the cache (no write is billed). `prompt_cache_key` only
routes requests between machines at OpenAI; one simulated machine ignores it.

Anthropic (explicit caching): the prefix order is tools, system, messages; a block with `cache_control` ends a
cacheable prefix when that prefix reaches the model's minimum (1,024 tokens; 2,048 for Claude 3 / 3.5 Haiku; 4,096
for Haiku 4.5 and Opus 4.5). The longest cached breakpoint prefix is read (`cache_read_input_tokens`), the part up
to the last cacheable breakpoint beyond it is written (`cache_creation_input_tokens`), the rest is
`input_tokens`. Entries live `ttl` seconds from their last use: 300 (`"5m"`, the default) or 3,600 (`"1h"`).
Not simulated: Anthropic's 20-block lookback before a breakpoint, OpenAI's routing and cache overflow.

Batches: the fake server answers a batch's lines one after the other, so each line finds what the lines before it
wrote, the best case. `with cache.concurrent():` around a batch models the worst case, every line running at once:
lines read only what was cached before the batch started, and their writes land when it ends (each still pays
its own write). The providers promise neither: a batch's cache hits are best-effort.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import threading
import time
from collections.abc import Iterator
from typing import Any

OPENAI_MIN, OPENAI_STEP = 1024, 128
ANTHROPIC_MIN = {"claude-3-5-haiku": 2048, "claude-3-haiku": 2048, "claude-haiku-4-5": 4096, "claude-opus-4-5": 4096}
ANTHROPIC_DEFAULT_MIN = 1024
TTL = {"5m": 300.0, "1h": 3600.0}


def _tokens(text: str) -> int:
    ascii_n = sum(1 for c in text if ord(c) < 128)
    return (len(text) - ascii_n) + -(-ascii_n // 4)


def _text(content: Any) -> list[tuple[str, dict | None]]:
    """(text, cache_control) per content block."""
    if content is None:
        return []
    if isinstance(content, str):
        return [(content, None)]
    blocks = []
    for block in content:
        if isinstance(block, str):
            blocks.append((block, None))
        elif isinstance(block, dict):
            text = block.get("text")
            if not isinstance(text, str):
                text = json.dumps(block.get("input", block.get("content", "")), ensure_ascii=False)
            blocks.append((text, block.get("cache_control")))
    return blocks


def anthropic_min_tokens(model: str) -> int:
    matches = [name for name in ANTHROPIC_MIN if model == name or model.startswith(name + "-")]
    return ANTHROPIC_MIN[max(matches, key=len)] if matches else ANTHROPIC_DEFAULT_MIN


def anthropic_blocks(req: dict) -> list[tuple[str, dict | None]]:
    blocks: list[tuple[str, dict | None]] = []
    for tool in req.get("tools") or []:
        if isinstance(tool, dict):
            plain = {k: v for k, v in tool.items() if k != "cache_control"}
            blocks.append((json.dumps(plain, ensure_ascii=False, sort_keys=True), tool.get("cache_control")))
    blocks.extend(_text(req.get("system")))
    for message in req.get("messages") or []:
        if isinstance(message, dict):
            blocks.extend((f"{message.get('role')}: {t}", cc) for t, cc in _text(message.get("content")))
    return blocks


def openai_text(req: dict) -> str:
    parts = []
    fmt = req.get("response_format") or {}
    if isinstance(fmt, dict) and fmt.get("type") == "json_schema":
        parts.append(json.dumps(fmt.get("json_schema"), ensure_ascii=False, sort_keys=True))
    for message in req.get("messages") or []:
        if isinstance(message, dict):
            parts.append(f"{message.get('role')}: " + "\n".join(t for t, _ in _text(message.get("content"))))
    return "\n".join(parts)


class PromptCache:
    """Prefix hashes with their expiry time, per provider and model. Thread-safe."""

    def __init__(self, ttl_s: float = 300.0, clock=time.monotonic) -> None:
        self.ttl_s = ttl_s
        self.clock = clock
        self._entries: dict[str, float] = {}
        self._pending: dict[str, float] | None = None  # writes of the batch running "concurrently"
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def concurrent(self) -> Iterator[None]:
        """Requests inside see only entries from before it; their writes are applied when it ends."""
        with self._lock:
            self._pending = {}
        try:
            yield
        finally:
            with self._lock:
                pending, self._pending = self._pending or {}, None
                for key, expiry in pending.items():
                    self._entries[key] = max(expiry, self._entries.get(key, -1.0))

    def _store(self, key: str, expiry: float) -> None:
        (self._entries if self._pending is None else self._pending)[key] = expiry

    def _key(self, scope: str, text: str) -> str:
        return hashlib.sha256(f"{scope}\0{text}".encode()).hexdigest()

    def _alive(self, key: str, now: float) -> bool:
        return self._entries.get(key, -1.0) > now

    def openai(self, req: dict) -> tuple[int, int]:
        """(prompt tokens, cached tokens) of one request; caches its prefixes."""
        text = openai_text(req)
        scope = f"openai:{req.get('model')}"
        cumulative, total = [], 0
        for ch in text:  # tokens of text[:i + 1], the same estimate as `_tokens`
            total += 1 if ord(ch) >= 128 else 0
            cumulative.append(total)
        ascii_seen = 0
        ends: list[tuple[int, int]] = []  # (tokens, end index) at each 128-token step from 1,024
        target = OPENAI_MIN
        for index, ch in enumerate(text):
            ascii_seen += ord(ch) < 128
            if cumulative[index] + -(-ascii_seen // 4) >= target:
                ends.append((target, index + 1))
                target += OPENAI_STEP
        prompt_tokens = _tokens(text) + 3 * len(req.get("messages") or []) + 3
        now = self.clock()
        with self._lock:
            hit = 0
            for tokens, end in ends:
                if self._alive(self._key(scope, text[:end]), now):
                    hit = tokens
            for _, end in ends:
                self._store(self._key(scope, text[:end]), now + self.ttl_s)
        return prompt_tokens, hit

    def anthropic(self, req: dict) -> tuple[int, int, int]:
        """(every input token, cache read, cache write) of one request; writes its cacheable breakpoints."""
        blocks = anthropic_blocks(req)
        scope = f"anthropic:{req.get('model')}"
        minimum = anthropic_min_tokens(str(req.get("model") or ""))
        prefix, tokens, points = "", 0, []
        for text, cache_control in blocks:
            prefix += text + "\n"
            tokens += _tokens(text)
            if isinstance(cache_control, dict) and tokens >= minimum:
                points.append((tokens, prefix, TTL.get(str(cache_control.get("ttl", "5m")), self.ttl_s)))
        total = tokens + 3 * len(req.get("messages") or []) + 3
        now = self.clock()
        with self._lock:
            read = max((t for t, p, _ in points if self._alive(self._key(scope, p), now)), default=0)
            written = max(0, points[-1][0] - read) if points else 0
            for _, p, ttl in points:
                self._store(self._key(scope, p), now + ttl)
        return total, read, written
