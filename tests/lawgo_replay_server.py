"""A local stand-in for law.go.kr's DRF API: replays recorded responses and injects the failures the real one has.

It listens on 127.0.0.1 on a random port, in a background thread, and the tests point the REAL client
(`slm_datagen.collect.lawgo_client.LawgoClient`, httpx underneath) at it through `base_url` — nothing is patched.

    with ReplayServer() as server:
        server.route("lawService.do", {"target": "eflaw", "MST": "1"}, Reply.file(path))
        server.route("lawSearch.do", {"query": "소득세법"}, Reply.status(429, retry_after="1"), Reply.json(page1))
        ... LawgoClient(base_url=server.base_url, ...) ...
        server.requests  # every request received: endpoint, params (OC included: the test checks it arrived), headers

A route matches when every given parameter equals the request's. Its replies are served in order; the last one
repeats. A request no route matches gets HTTP 404 "no route", so a test that asks for the wrong thing fails.

Fault injection (`server.inject(FaultMix(seed=…))`): an attempt at a request may be answered by a fault instead of
its route's reply — a body cut short (with an honest Content-Length, as a proxy sends it, or with the full length and
the connection dropped), law.go.kr's maintenance page, a hang past the client's timeout, 429 (with Retry-After 0 or
without), 500, 502, 503. The draw depends only on the seed, the request (OC aside) and the attempt number, so a mix
is the same whatever order requests come in and however often the client is killed and rerun. Each request fails
at most `max_failures` times and is then answered for real (a client with more retries collects everything), except
the requests listed in `broken`, which always fail.
Recorded bodies come from ../shared/corpus/lawgo (real responses) and tests/fixtures/collect/lawgo.
"""

from __future__ import annotations

import json
import random
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit


@dataclass
class Reply:
    status: int = 200
    body: bytes = b""
    content_type: str = "application/json;charset=UTF-8"
    headers: dict[str, str] = field(default_factory=dict)
    delay_s: float = 0.0  # sleep before answering: longer than the client's timeout = a hang
    send_bytes: int | None = None  # announce the whole body, send only this much, drop the connection

    @classmethod
    def json(cls, obj: Any, **kw: Any) -> Reply:
        return cls(body=json.dumps(obj, ensure_ascii=False).encode("utf-8"), **kw)

    @classmethod
    def text(cls, text: str, content_type: str = "text/html;charset=UTF-8", **kw: Any) -> Reply:
        return cls(body=text.encode("utf-8"), content_type=content_type, **kw)

    @classmethod
    def file(cls, path: Path, **kw: Any) -> Reply:
        content_type = (
            "text/xml;charset=UTF-8"
            if path.suffix == ".xml"
            else ("text/html;charset=UTF-8" if path.suffix == ".html" else "application/json;charset=UTF-8")
        )
        return cls(body=path.read_bytes(), content_type=content_type, **kw)

    @classmethod
    def error(cls, status: int, retry_after: str | None = None) -> Reply:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        return cls(status=status, body=f"error {status}".encode(), content_type="text/plain", headers=headers)

    @classmethod
    def hang(cls, seconds: float) -> Reply:
        return cls(body=b"{}", delay_s=seconds)


@dataclass
class Received:
    endpoint: str
    params: dict[str, str]
    headers: dict[str, str]
    fault: str | None = None  # the injected fault that answered it, if any

    @property
    def key(self) -> str:
        """The request without the OC: what the client's cache is keyed by."""
        return request_key(self.endpoint, self.params)


def request_key(endpoint: str, params: dict[str, str]) -> str:
    return endpoint + "?" + "&".join(f"{k}={v}" for k, v in sorted(params.items()) if k != "OC")


FAULT_KINDS = ("cut", "cut_connection", "html", "hang", "429", "429_retry_after", "500", "502", "503")
_MAINTENANCE = Path(__file__).parent / "fixtures" / "collect" / "lawgo" / "errors" / "maintenance.html"


@dataclass
class FaultMix:
    seed: int
    rate: float = 0.5  # chance that an attempt fails (until the request failed max_failures times)
    max_failures: int = 2
    kinds: tuple[str, ...] = FAULT_KINDS
    hang_s: float = 1.0  # longer than the client's timeout
    broken: frozenset[str] = frozenset()  # request keys (request_key) that always fail

    def fault(self, key: str, attempt: int, failures: int) -> str | None:
        rng = random.Random(f"{self.seed}|{key}|{attempt}")
        if key in self.broken or (failures < self.max_failures and rng.random() < self.rate):
            return rng.choice(self.kinds)
        return None

    def reply(self, kind: str, real: Reply, key: str, attempt: int) -> Reply:
        rng = random.Random(f"{self.seed}|{key}|{attempt}|reply")
        cut = rng.randint(1, max(1, len(real.body) - 1))
        if kind == "cut":
            return Reply(body=real.body[:cut], content_type=real.content_type)
        if kind == "cut_connection":
            return Reply(body=real.body, content_type=real.content_type, send_bytes=cut)
        if kind == "html":
            return Reply.file(_MAINTENANCE)
        if kind == "hang":
            return Reply(body=real.body, content_type=real.content_type, delay_s=self.hang_s)
        if kind == "429_retry_after":
            return Reply.error(429, retry_after="0")
        return Reply.error(int(kind))


@dataclass
class _Route:
    endpoint: str
    match: dict[str, str]
    replies: list[Reply]
    served: int = 0

    def next_reply(self) -> Reply:
        reply = self.replies[min(self.served, len(self.replies) - 1)]
        self.served += 1
        return reply


class ReplayServer:
    def __init__(self) -> None:
        self.routes: list[_Route] = []
        self.requests: list[Received] = []
        self.mix: FaultMix | None = None
        self._attempts: dict[str, int] = {}
        self._failures: dict[str, int] = {}
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                url = urlsplit(self.path)
                endpoint = url.path.rsplit("/", 1)[-1]
                params = dict(parse_qsl(url.query, keep_blank_values=True))
                reply = server._dispatch(endpoint, params, dict(self.headers.items()))
                if reply.delay_s:
                    time.sleep(reply.delay_s)
                try:
                    self.send_response(reply.status)
                    self.send_header("Content-Type", reply.content_type)
                    self.send_header("Content-Length", str(len(reply.body)))
                    for key, value in reply.headers.items():
                        self.send_header(key, value)
                    self.end_headers()
                    self.wfile.write(reply.body[: reply.send_bytes])
                    if reply.send_bytes is not None:
                        self.close_connection = True
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test): nothing to answer

            def log_message(self, *args: Any) -> None:  # keep test output clean
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True  # a hung reply must not block shutdown
        # A short poll interval: shutdown() waits for the next poll, and tests start many servers.
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True)

    @property
    def base_url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/DRF"

    def route(self, endpoint: str, match: dict[str, str], *replies: Reply) -> ReplayServer:
        self.routes.append(_Route(endpoint, {k: str(v) for k, v in match.items()}, list(replies)))
        return self

    def inject(self, mix: FaultMix | None) -> ReplayServer:
        """Answer attempts with faults from `mix` from now on (None: stop injecting)."""
        with self._lock:
            self.mix = mix
        return self

    def requests_to(self, endpoint: str, **match: str) -> list[Received]:
        return [
            r for r in self.requests if r.endpoint == endpoint and all(r.params.get(k) == v for k, v in match.items())
        ]

    def _dispatch(self, endpoint: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        with self._lock:
            received = Received(endpoint, params, headers)
            self.requests.append(received)
            route = next(
                (
                    r
                    for r in self.routes
                    if r.endpoint == endpoint and all(params.get(k) == v for k, v in r.match.items())
                ),
                None,
            )
            if route is None:
                return Reply(status=404, body=b"no route", content_type="text/plain")
            if self.mix is None:
                return route.next_reply()
            key = received.key
            attempt = self._attempts[key] = self._attempts.get(key, 0) + 1
            received.fault = self.mix.fault(key, attempt, self._failures.get(key, 0))
            if received.fault is None:
                return route.next_reply()
            self._failures[key] = self._failures.get(key, 0) + 1
            return self.mix.reply(received.fault, route.replies[-1], key, attempt)

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
