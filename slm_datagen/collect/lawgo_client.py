"""HTTP client for the 국가법령정보 공동활용 Open API (law.go.kr DRF): `lawSearch.do` lists, `lawService.do` details.

What it takes care of, so callers only see parsed data or one clear error:
- headers: `Referer: https://www.law.go.kr/` and a browser User-Agent (without them the API answers "사용자 정보
  검증에 실패하였습니다" even with a valid OC);
- the OC comes from the environment variable the config names, only at the first request that needs the network,
  and is never part of a cache key or file name. It is masked as `***` at two choke points: every response body is
  masked the moment it becomes text (`_body_text`), before anything is parsed, cached or quoted from it (law.go.kr
  echoes the OC in list links and in some HTML error pages); and every `LawgoError` leaving `get()` has its message,
  request and body masked once more (`_masked`), which covers texts built from exceptions and requests as well;
- HTTP-200 error bodies (envelopes.py) become `LawgoError` with the API's own message and the (masked) request;
- retries with exponential backoff and jitter on 429, 5xx, timeouts, connection errors, 0-byte bodies and
  maintenance/anti-bot HTML pages, honouring `Retry-After` (seconds or HTTP date). tenacity drives the loop: its
  stop/wait/retry predicates are tested and composable, and Retry-After fits in as a custom wait function;
- a request rate limit (`requests_per_second`, default 5/s: no quota is published, public clients self-throttle
  to about that);
- a raw-response cache on disk keyed by a hash of the request parameters without the OC, so collecting again
  makes no request at all. Data responses are cached, and so are definite "no such document" answers (`일치하는 …
  없습니다`, `{}`: some listed ids have no detail, asking again gives the same); failures that depend on the OC or on
  the moment (auth, 429/5xx, timeouts, HTML pages) never are.
"""

from __future__ import annotations

import email.utils
import functools
import hashlib
import json
import os
import re
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import certifi
import httpx
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from slm_datagen.collect import envelopes
from slm_datagen.collect.encodings import decode_bytes
from slm_datagen.collect.lawgo_xml import xml_to_dict
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.temporaries import temporary_beside
from slm_forest.config import LawgoSource
from slm_forest.errors import SlmError

REFERER = "https://www.law.go.kr/"
USER_AGENT = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/126.0 Safari/537.36"
)
MAX_BACKOFF_S = 60.0
MASK = "***"

# Failures that no retry can fix and that every later request would hit too: they stop the run.
FATAL_KINDS = {envelopes.AUTH, envelopes.NOT_APPROVED, "no_oc"}
# Definite answers about the document itself: cached like data, so a rerun asks nothing.
CACHED_KINDS = {envelopes.NOT_FOUND, envelopes.EMPTY}

_HINTS = {
    envelopes.AUTH: "check the OC (the e-mail local part of your open.law.go.kr account) and register this "
    "machine's IP address/domain on open.law.go.kr",
    envelopes.NOT_APPROVED: "apply for this dataset (OPEN API 신청) on open.law.go.kr for your OC",
    envelopes.NOT_FOUND: "check the law name, ID or MST",
    envelopes.EMPTY: "check the ID/MST; law.go.kr answers unknown ids with an empty body",
    envelopes.HTML: "law.go.kr served a web page instead of data; try again later (from cloud IPs it may block)",
    "unavailable": "law.go.kr did not answer; try again later or lower requests_per_second",
    "http": "check base_url and the request parameters",
    "malformed": "law.go.kr kept sending a body that does not parse (cut short?); try again later",
    "no_oc": "export it (e.g. `export LAWGO_OC=<your id>`); the OC is only ever read from the environment",
}


@functools.cache
def _tls_context() -> ssl.SSLContext:
    # Built once per process: loading the CA bundle costs ~0.2 s, and a run may open a client per source.
    return ssl.create_default_context(cafile=certifi.where())


def _oc_pattern(oc: str) -> re.Pattern[str]:
    """The OC as it may appear in a text: each character raw or percent-encoded (an echoed URL), any case."""
    parts = []
    for char in oc:
        encoded = "".join(f"%{byte:02X}" for byte in char.encode("utf-8"))
        plus = r"|\+" if char == " " else ""
        parts.append(f"(?:{re.escape(char)}|{re.escape(encoded)}{plus})")
    return re.compile("".join(parts), re.IGNORECASE)


class LawgoError(Exception):
    """One failed API request: `kind` (auth, not_found, empty, html, unavailable, http, malformed), the API's
    message, and the request with the OC masked."""

    def __init__(self, kind: str, message: str, request: str, body: str | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.request = request
        self.body = body  # the raw body of a definite answer (cached when kind is in CACHED_KINDS)

    @property
    def fatal(self) -> bool:
        return self.kind in FATAL_KINDS

    @property
    def hint(self) -> str:
        return _HINTS.get(self.kind, "")

    def __str__(self) -> str:
        return f"law.go.kr: {self.message} (request: {self.request})"

    def to_slm_error(self, where: str = "") -> SlmError:
        return SlmError(f"{where + ': ' if where else ''}{self}", self.hint)


class _Retryable(Exception):
    def __init__(self, kind: str, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.retry_after = retry_after


@dataclass
class ClientStats:
    requests: int = 0  # HTTP requests actually sent (retries included)
    cache_hits: int = 0
    retries: int = 0


def _retry_after_seconds(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


def parse_body(text: str) -> Any:
    """A JSON or XML body -> dict (XML in the JSON shape). The API may answer XML when asked for JSON."""
    head = text.lstrip("\ufeff \t\r\n")
    if head.startswith("<"):
        return xml_to_dict(head)
    try:
        return json.loads(head)
    except json.JSONDecodeError as exc:
        raise InputProblem(f"not valid JSON ({exc.msg})", f"line {exc.lineno}, column {exc.colno}") from None


class LawgoClient:
    def __init__(
        self,
        *,
        base_url: str,
        oc: str | None,
        oc_env: str = "LAWGO_OC",
        response_type: str = "JSON",
        requests_per_second: float = 5.0,
        timeout_s: float = 30.0,
        max_retries: int = 5,
        backoff_s: float = 1.0,
        max_retry_after_s: float = 120.0,
        cache_dir: Path | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._oc = oc or None
        self._oc_env = oc_env
        self._oc_pattern = _oc_pattern(oc) if oc else None
        self.response_type = response_type
        self._interval = 1.0 / requests_per_second
        self._next_slot = 0.0
        self._max_retries = max_retries
        self._max_retry_after_s = max_retry_after_s
        self._jitter = wait_exponential_jitter(multiplier=backoff_s, max=MAX_BACKOFF_S, jitter=backoff_s)
        self.cache_dir = cache_dir
        self.stats = ClientStats()
        self._http = httpx.Client(
            headers={"User-Agent": USER_AGENT, "Referer": REFERER, "Accept": "application/json, application/xml, */*"},
            timeout=httpx.Timeout(timeout_s),
            follow_redirects=True,
            verify=_tls_context(),
        )

    @classmethod
    def from_source(cls, source: LawgoSource, cache_dir: Path | None) -> LawgoClient:
        return cls(
            base_url=source.base_url,
            oc=os.environ.get(source.oc_env),
            oc_env=source.oc_env,
            response_type=source.response_type,
            requests_per_second=source.requests_per_second,
            timeout_s=source.timeout_s,
            max_retries=source.max_retries,
            backoff_s=source.backoff_s,
            max_retry_after_s=source.max_retry_after_s,
            cache_dir=cache_dir,
        )

    def __enter__(self) -> LawgoClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    # ---------------------------------------------------------------------------------------------- public API
    def search(self, target: str, **params: Any) -> dict[str, Any]:
        """`lawSearch.do` (a list page)."""
        return self.get("lawSearch.do", {"target": target, **params})

    def detail(self, target: str, **params: Any) -> dict[str, Any]:
        """`lawService.do` (one document)."""
        return self.get("lawService.do", {"target": target, **params})

    def get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        """Parsed body of a data response, from the cache when it is there; LawgoError otherwise.

        The one exit for failures: whatever raised the error, its texts leave with the OC masked.
        """
        try:
            return self._get(endpoint, params)
        except LawgoError as exc:
            raise self._masked(exc) from None

    def _masked(self, exc: LawgoError) -> LawgoError:
        body = self.mask(exc.body) if exc.body is not None else None
        return LawgoError(exc.kind, self.mask(exc.message), self.mask(exc.request), body)

    def _get(self, endpoint: str, params: dict[str, Any]) -> dict[str, Any]:
        params = {k: str(v) for k, v in params.items() if v not in (None, "")}
        params.setdefault("type", self.response_type)
        cached = self._cache_read(endpoint, params)
        if cached is not None:
            self.stats.cache_hits += 1
            error = envelopes.envelope_error(cached)
            if error is not None:
                raise LawgoError(error[0], error[1], self.describe(endpoint, params) + " (cached answer)")
            return cached
        try:
            text, parsed = self._fetch_with_retries(endpoint, params)
        except LawgoError as exc:
            if exc.kind in CACHED_KINDS and exc.body is not None:
                self._cache_write(endpoint, params, exc.body)
            raise
        self._cache_write(endpoint, params, text)
        return parsed

    def describe(self, endpoint: str, params: dict[str, Any]) -> str:
        """The request as a user may see it: the OC always masked."""
        query = "&".join(f"{k}={v}" for k, v in [("OC", MASK), *params.items()])
        return f"GET {self.base_url}/{endpoint}?{query}"

    def mask(self, text: str) -> str:
        """`text` with every occurrence of the OC (raw or URL-encoded) replaced by ***."""
        if self._oc_pattern is None or not text:
            return text
        return self._oc_pattern.sub(MASK, text)

    def _body_text(self, response: httpx.Response, request: str) -> str:
        """The response body as text with the OC masked: nothing downstream ever sees the raw body."""
        try:
            text, _ = decode_bytes(response.content)
        except InputProblem as problem:
            raise LawgoError("malformed", f"undecodable body at {problem.where}", request) from None
        return self.mask(text)

    # ------------------------------------------------------------------------------------------------- cache
    def _cache_path(self, endpoint: str, params: dict[str, str]) -> Path | None:
        if self.cache_dir is None:
            return None
        # The key is the request without the OC (and without the host: the same request to a mirror is the same
        # data), so the cache can be shared between accounts and never reveals the OC in a file name.
        payload = json.dumps({"endpoint": endpoint, "params": sorted(params.items())}, ensure_ascii=False)
        digest = hashlib.sha256(payload.encode("utf-8")).hexdigest()
        suffix = "xml" if params.get("type", "").upper() == "XML" else "json"
        return self.cache_dir / f"{endpoint.split('.')[0]}-{params.get('target', 'none')}" / f"{digest}.{suffix}"

    def _cache_read(self, endpoint: str, params: dict[str, str]) -> dict[str, Any] | None:
        path = self._cache_path(endpoint, params)
        if path is None or not path.exists():
            return None
        try:
            parsed = parse_body(self.mask(path.read_text(encoding="utf-8")))
        except (InputProblem, UnicodeDecodeError):
            path.unlink(missing_ok=True)  # a damaged cache entry is fetched again
            return None
        return parsed

    def _cache_write(self, endpoint: str, params: dict[str, str], text: str) -> None:
        path = self._cache_path(endpoint, params)
        if path is None:
            return
        # Written beside the entry under a name carrying this process's id, then renamed: a kill leaves at most a
        # temporary file, which the next collect removes once its process is gone (temporaries.py).
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = temporary_beside(path)
        try:
            with open(tmp, "w", encoding="utf-8") as handle:
                handle.write(text)
                handle.flush()
                os.fsync(handle.fileno())
            os.replace(tmp, path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise

    # ------------------------------------------------------------------------------------------------ network
    def _throttle(self) -> None:
        now = time.monotonic()
        if self._next_slot > now:
            time.sleep(self._next_slot - now)
            now = time.monotonic()
        self._next_slot = max(now, self._next_slot) + self._interval

    def _wait(self, retry_state: Any) -> float:
        exc = retry_state.outcome.exception() if retry_state.outcome else None
        if isinstance(exc, _Retryable) and exc.retry_after is not None:
            return exc.retry_after
        return self._jitter(retry_state)

    def _fetch_with_retries(self, endpoint: str, params: dict[str, str]) -> tuple[str, dict[str, Any]]:
        request = self.describe(endpoint, params)
        if self._oc is None:
            raise LawgoError("no_oc", f"the environment variable {self._oc_env} (the OC) is not set", request)
        retrying = Retrying(
            retry=retry_if_exception_type(_Retryable),
            stop=stop_after_attempt(self._max_retries + 1),
            wait=self._wait,
            before_sleep=lambda _state: setattr(self.stats, "retries", self.stats.retries + 1),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    return self._fetch_once(endpoint, params, request)
        except _Retryable as exc:
            kind = exc.kind if exc.kind in (envelopes.HTML, "malformed") else "unavailable"
            raise LawgoError(kind, f"{exc.message} (gave up after {self._max_retries + 1} attempts)", request) from None
        raise AssertionError("unreachable: tenacity either returns or raises")

    def _fetch_once(self, endpoint: str, params: dict[str, str], request: str) -> tuple[str, dict[str, Any]]:
        self._throttle()
        self.stats.requests += 1
        assert self._oc is not None
        try:
            response = self._http.get(f"{self.base_url}/{endpoint}", params={"OC": self._oc, **params})
        except httpx.TimeoutException:
            raise _Retryable("timeout", "no answer within the timeout") from None
        except httpx.TransportError as exc:
            raise _Retryable("connection", f"connection failed ({type(exc).__name__}: {exc})") from None
        status = response.status_code
        if status == 429 or status >= 500:
            retry_after = _retry_after_seconds(response.headers.get("Retry-After"))
            if retry_after is not None and retry_after > self._max_retry_after_s:
                raise LawgoError(
                    "unavailable",
                    f"HTTP {status} with Retry-After {retry_after:.0f}s (over max_retry_after_s)",
                    request,
                )
            raise _Retryable("http", f"HTTP {status}", retry_after)
        if status != 200:
            try:
                snippet = " ".join(self._body_text(response, request).split())[:120]
            except LawgoError:
                snippet = "(undecodable body)"
            raise LawgoError("http", f"HTTP {status}: {snippet}", request)
        if not response.content.strip():
            raise _Retryable("empty", "empty response (0 bytes)")
        text = self._body_text(response, request)
        if envelopes.is_html(text):
            kind, message = envelopes.html_error(text)
            if kind == envelopes.HTML:
                raise _Retryable(kind, message)
            raise LawgoError(kind, message, request)
        try:
            parsed = parse_body(text)
        except InputProblem as problem:
            # A body cut short with HTTP 200 (a proxy, a dropped connection) looks like this: asking again helps.
            raise _Retryable("malformed", f"{problem.message} at {problem.where}") from None
        error = envelopes.envelope_error(parsed)
        if error is not None:
            raise LawgoError(error[0], error[1], request, body=text)
        if not isinstance(parsed, dict):
            raise LawgoError("malformed", f"expected a JSON object, got {type(parsed).__name__}", request)
        return text, parsed
