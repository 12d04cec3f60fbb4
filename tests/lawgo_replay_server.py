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
Recorded bodies come from ../shared/corpus/lawgo (real responses) and tests/fixtures/collect/lawgo.
"""

from __future__ import annotations

import json
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
                    self.wfile.write(reply.body)
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

    def requests_to(self, endpoint: str, **match: str) -> list[Received]:
        return [
            r for r in self.requests if r.endpoint == endpoint and all(r.params.get(k) == v for k, v in match.items())
        ]

    def _dispatch(self, endpoint: str, params: dict[str, str], headers: dict[str, str]) -> Reply:
        with self._lock:
            self.requests.append(Received(endpoint, params, headers))
            for route in self.routes:
                if route.endpoint == endpoint and all(params.get(k) == v for k, v in route.match.items()):
                    return route.next_reply()
        return Reply(status=404, body=b"no route", content_type="text/plain")

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
