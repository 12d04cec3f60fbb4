"""Client-side rate limiting: token buckets per teacher, tightened by the providers' rate-limit headers.

Buckets: requests/min, and tokens/min either combined (OpenAI counts prompt + max_tokens) or split into input and
output tokens (Anthropic's ITPM/OTPM). A request reserves its estimated tokens (prompt estimate + max_tokens) and
`settle` refunds what the reply did not use. Burst capacity is one second of the rate (at least one request), so
the engine paces smoothly instead of emptying a minute's allowance at once, which providers enforce on shorter
windows anyway.

Headers (read from every reply, 429s included) only ever make the limiter stricter:
- limits (`x-ratelimit-limit-requests`, `anthropic-ratelimit-requests-limit`, … tokens) lower the configured rate,
  or set it when none was configured;
- remaining counts cap what the bucket may still hand out now;
- when most recent replies are 429s the whole teacher pauses until the reset (`Retry-After`), instead of every
  request hammering the server on its own; a stray 429 only delays its own request.

Repeated 429s also lower the sending rate itself (AIMD, as TCP does with congestion): a 429 storm cuts the
requests/min rate by 30 %, starting from what was actually sent over the last minute (at most once per cooldown: one
overshoot is one decrease, not one per refused request); every later success adds back `peak / 60` requests/min per
second, up to the configured or advertised limit. So a server whose real limit is below the configured one, and
that says nothing about it (no rate-limit headers, no Retry-After), is met at its own pace instead of being
retried into the ground.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections import deque
from collections.abc import Callable, Mapping
from datetime import datetime
from email.utils import parsedate_to_datetime

Clock = Callable[[], float]


class TokenBucket:
    """`per_minute` units per minute with one second of burst. `per_minute=None` means unlimited."""

    def __init__(self, per_minute: float | None, clock: Clock = time.monotonic, burst_seconds: float = 1.0) -> None:
        self.clock = clock
        self.burst_seconds = burst_seconds
        self.per_minute: float | None = None
        self.capacity = 0.0
        self.level = 0.0
        self.updated = clock()
        self.set_rate(per_minute, fill=True)

    def set_rate(self, per_minute: float | None, *, fill: bool = False) -> None:
        self._refill()
        self.per_minute = per_minute
        if per_minute is None:
            return
        self.capacity = max(1.0, per_minute / 60.0 * self.burst_seconds)
        self.level = self.capacity if fill else min(self.level, self.capacity)

    @property
    def rate(self) -> float:
        return (self.per_minute or 0.0) / 60.0

    def _refill(self) -> None:
        now = self.clock()
        if self.per_minute is not None:
            self.level = min(self.capacity, self.level + (now - self.updated) * self.rate)
        self.updated = now

    def wait_time(self, amount: float) -> float:
        """Seconds until `amount` can be taken (an amount above capacity waits for a full bucket)."""
        if self.per_minute is None:
            return 0.0
        self._refill()
        need = min(amount, self.capacity)
        if self.level >= need:
            return 0.0
        return (need - self.level) / self.rate

    def take(self, amount: float) -> None:
        if self.per_minute is None:
            return
        self._refill()
        self.level -= amount  # may go negative for requests larger than the burst: later ones wait it out

    def give_back(self, amount: float) -> None:
        if self.per_minute is None:
            return
        self._refill()
        self.level = min(self.capacity, self.level + amount)

    def cap(self, remaining: float) -> None:
        """The server says only `remaining` units are left now."""
        if self.per_minute is None:
            return
        self._refill()
        self.level = min(self.level, remaining)


# ---------------------------------------------------------------------------------------------------- headers
_DURATION_RE = re.compile(r"(\d+(?:\.\d+)?)(ms|h|m|s)")


def parse_reset(value: str | None, now_wall: float | None = None) -> float | None:
    """Seconds until reset: OpenAI's '6m0s' / '20ms' / '1s', or Anthropic's RFC 3339 timestamp."""
    if not value:
        return None
    value = value.strip()
    if "T" in value and ("Z" in value or "+" in value):
        try:
            moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            return None
        return max(0.0, moment.timestamp() - (time.time() if now_wall is None else now_wall))
    total, matched = 0.0, False
    for number, unit in _DURATION_RE.findall(value):
        matched = True
        total += float(number) * {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}[unit]
    if matched:
        return total
    try:
        return float(value)
    except ValueError:
        return None


def parse_retry_after(headers: Mapping[str, str] | None) -> float | None:
    """Seconds from `retry-after-ms` or `retry-after` (seconds or an HTTP date)."""
    if not headers:
        return None
    lower = {k.lower(): v for k, v in headers.items()}
    if "retry-after-ms" in lower:
        try:
            return max(0.0, float(lower["retry-after-ms"]) / 1000.0)
        except ValueError:
            pass
    value = lower.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        try:
            return max(0.0, parsedate_to_datetime(value).timestamp() - time.time())
        except (TypeError, ValueError):
            return None


def _int(value: str | None) -> int | None:
    try:
        return int(float(value)) if value is not None else None
    except ValueError:
        return None


def read_limits(headers: Mapping[str, str] | None) -> dict[str, dict[str, float | None]]:
    """{'requests' | 'tokens' | 'input_tokens' | 'output_tokens': {'limit', 'remaining', 'reset'}} from headers."""
    if not headers:
        return {}
    lower = {k.lower(): v for k, v in headers.items()}
    out: dict[str, dict[str, float | None]] = {}
    for name in ("requests", "tokens"):
        limit = _int(lower.get(f"x-ratelimit-limit-{name}"))
        remaining = _int(lower.get(f"x-ratelimit-remaining-{name}"))
        if limit is not None or remaining is not None:
            out[name] = {
                "limit": limit,
                "remaining": remaining,
                "reset": parse_reset(lower.get(f"x-ratelimit-reset-{name}")),
            }
    for name in ("requests", "tokens", "input-tokens", "output-tokens"):
        limit = _int(lower.get(f"anthropic-ratelimit-{name}-limit"))
        remaining = _int(lower.get(f"anthropic-ratelimit-{name}-remaining"))
        if limit is not None or remaining is not None:
            out[name.replace("-", "_")] = {
                "limit": limit,
                "remaining": remaining,
                "reset": parse_reset(lower.get(f"anthropic-ratelimit-{name}-reset")),
            }
    return out


# Multiplicative decrease on a 429 storm: CUBIC's 0.7 rather than Reno's 0.5, since one storm is often a small
# overshoot at a window boundary (bench/distill.py: one 0.5 decrease after a few refusals at the limit cost 12 % of
# the next minute).
AIMD_DECREASE = 0.7
AIMD_MIN_RPM = 1.0
AIMD_COOLDOWN_S = 2.0  # at least this long (or the server's Retry-After) between two decreases
AIMD_CREDIT_CAP_S = 5.0  # one success credits at most this many seconds of additive increase


class RateLimiter:
    """The buckets of one teacher plus a shared pause; `acquire` waits for all of them."""

    def __init__(
        self,
        *,
        requests_per_minute: int | None = None,
        tokens_per_minute: int | None = None,
        input_tokens_per_minute: int | None = None,
        output_tokens_per_minute: int | None = None,
        split_tokens: bool = False,
        clock: Clock = time.monotonic,
    ) -> None:
        self.clock = clock
        self.split_tokens = split_tokens
        self.requests = TokenBucket(requests_per_minute, clock)
        self.tokens = TokenBucket(tokens_per_minute, clock)
        self.input_tokens = TokenBucket(input_tokens_per_minute, clock)
        self.output_tokens = TokenBucket(output_tokens_per_minute, clock)
        self.paused_until = 0.0
        self.pauses = 0
        self._lock = asyncio.Lock()
        self._recent: deque[tuple[float, bool]] = deque()  # (time, was_429) of recent replies
        self._consecutive_429 = 0
        # AIMD state: the requests/min limit from the config or the headers, and the adaptive rate below it
        self.limit_rpm: float | None = float(requests_per_minute) if requests_per_minute else None
        self.aimd_rpm: float | None = None  # None: no 429 storm seen, send at the limit
        self.decreases = 0
        self._ai_per_s = 0.0
        self._last_decrease = float("-inf")
        self._last_increase = float("-inf")
        self._sent: deque[float] = deque()  # send times over the last minute (the measured rate)
        self._first_sent: float | None = None

    def _buckets_for(self, input_tokens: int, output_tokens: int) -> list[tuple[TokenBucket, float]]:
        pairs = [(self.requests, 1.0), (self.tokens, float(input_tokens + output_tokens))]
        if self.split_tokens:
            pairs += [(self.input_tokens, float(input_tokens)), (self.output_tokens, float(output_tokens))]
        return pairs

    async def acquire(self, input_tokens: int, output_tokens: int) -> None:
        """Wait until a request of this size may be sent, then reserve it (FIFO among waiters)."""
        async with self._lock:
            while True:
                now = self.clock()
                wait = max(0.0, self.paused_until - now)
                for bucket, amount in self._buckets_for(input_tokens, output_tokens):
                    wait = max(wait, bucket.wait_time(amount))
                if wait <= 0:
                    for bucket, amount in self._buckets_for(input_tokens, output_tokens):
                        bucket.take(amount)
                    self._sent.append(now)
                    if self._first_sent is None:
                        self._first_sent = now
                    return
                await asyncio.sleep(min(wait, 5.0))

    def settle(self, reserved_in: int, reserved_out: int, used_in: int, used_out: int) -> None:
        """Give back the reserved tokens a reply did not use (e.g. max_tokens reserved, 300 used)."""
        spare_in = max(0, reserved_in - used_in)
        spare_out = max(0, reserved_out - used_out)
        self.tokens.give_back(spare_in + spare_out)
        if self.split_tokens:
            self.input_tokens.give_back(spare_in)
            self.output_tokens.give_back(spare_out)

    def observe(
        self, headers: Mapping[str, str] | None, *, rate_limited: bool = False, retry_after: float | None = None
    ) -> None:
        """Tighten from a reply's headers; after a 429, maybe pause the whole teacher."""
        now = self.clock()
        self._recent.append((now, rate_limited))
        while self._recent and self._recent[0][0] < now - 5.0:
            self._recent.popleft()
        buckets = {
            "requests": self.requests,
            "tokens": self.tokens,
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
        }
        for name, info in read_limits(headers).items():
            bucket = buckets[name]
            limit = info.get("limit")
            if limit and name == "requests":
                if self.limit_rpm is None or limit < self.limit_rpm:
                    fill = self.limit_rpm is None and self.aimd_rpm is None
                    self.limit_rpm = float(limit)
                    self._apply_rate(fill=fill)
            elif limit:
                if bucket.per_minute is None or limit < bucket.per_minute:
                    bucket.set_rate(float(limit), fill=bucket.per_minute is None)
            remaining = info.get("remaining")
            if remaining is not None and not rate_limited:
                bucket.cap(float(remaining))
        if not rate_limited:
            self._consecutive_429 = 0
            self._increase(now)
            return
        self._consecutive_429 += 1
        refused = sum(1 for _, was in self._recent if was)
        # A stray 429 (an injected one, a burst elsewhere on the account) delays only its own request; when most
        # recent replies are 429s (or five in a row: 1 in 3 million at a 5 % stray rate) the teacher is over the
        # limit: everything waits for the reset, and the rate comes down.
        if (len(self._recent) >= 4 and refused / len(self._recent) > 0.3) or self._consecutive_429 >= 5:
            delay = retry_after if retry_after is not None else 1.0
            if now + delay > self.paused_until:
                self.paused_until = now + delay
                self.pauses += 1
            self._decrease(now, retry_after)

    # ------------------------------------------------------------------------------------------------------- AIMD
    def measured_rpm(self, now: float) -> float | None:
        """Requests actually sent per minute, over the last minute (or since the first send, if sooner)."""
        while self._sent and self._sent[0] < now - 60.0:
            self._sent.popleft()
        if not self._sent or self._first_sent is None:
            return None
        span = min(60.0, max(1.0, now - self._first_sent))
        return len(self._sent) / span * 60.0

    def current_rpm(self) -> float | None:
        rates = [r for r in (self.limit_rpm, self.aimd_rpm) if r is not None]
        return min(rates) if rates else None

    def _apply_rate(self, *, fill: bool = False) -> None:
        self.requests.set_rate(self.current_rpm(), fill=fill)

    def _decrease(self, now: float, retry_after: float | None) -> None:
        if now - self._last_decrease < max(AIMD_COOLDOWN_S, retry_after or 0.0):
            return  # the same overshoot: already answered
        candidates = [r for r in (self.current_rpm(), self.measured_rpm(now)) if r is not None]
        if not candidates:
            return
        base = min(candidates)
        if self.aimd_rpm is None:
            self._ai_per_s = max(0.5, base / 60.0)  # climbs back to where it was in about a minute
        self.aimd_rpm = max(AIMD_MIN_RPM, base * AIMD_DECREASE)
        self.decreases += 1
        self._last_decrease = now
        self._apply_rate()

    def _increase(self, now: float) -> None:
        if self.aimd_rpm is None:
            return
        since = now - max(self._last_increase, self._last_decrease)
        self._last_increase = now
        self.aimd_rpm += min(max(0.0, since), AIMD_CREDIT_CAP_S) * self._ai_per_s
        if self.limit_rpm is not None and self.aimd_rpm >= self.limit_rpm:
            self.aimd_rpm = None  # back at the limit: nothing to adapt any more
        self._apply_rate()
