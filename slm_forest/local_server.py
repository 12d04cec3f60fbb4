"""An ASGI app (FastAPI) served by uvicorn on a socket bound up front: `slm serve` and `slm review` share it.

Binding before uvicorn starts means a busy port is a one-line SlmError at once, port 0 picks a free port whose
number is known before the first request (tests), and the same object runs in a thread (tests) or in the
foreground until Ctrl-C (the commands). uvicorn and the app are imported by the caller; nothing here at import time.
"""

from __future__ import annotations

import socket
import threading
import time
from typing import Any

from slm_forest.errors import SlmError

LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class LocalServer:
    """uvicorn on one pre-bound socket; `url`, `server_address`, `run_in_thread`, `serve_forever`, `shutdown`."""

    def __init__(self, app: Any, host: str, port: int, *, log_requests: bool = False) -> None:
        import uvicorn

        family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.socket = socket.socket(family, socket.SOCK_STREAM)
        self.socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            self.socket.bind((host, port))
        except OSError as exc:
            self.socket.close()
            raise SlmError(
                f"cannot listen on {host}:{port} ({exc.strerror or exc})",
                "pick another --port, or stop the process using it",
            ) from None
        self.socket.listen(128)
        self.socket.set_inheritable(True)
        config = uvicorn.Config(
            app, log_level="warning", access_log=log_requests, lifespan="off", timeout_graceful_shutdown=2
        )
        self.uvicorn = uvicorn.Server(config)
        self.thread: threading.Thread | None = None

    @property
    def server_address(self) -> tuple[str, int]:
        host, port = self.socket.getsockname()[:2]
        return host, port

    @property
    def url(self) -> str:
        host, port = self.server_address
        return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"

    def serve_forever(self) -> None:
        """Serve in this thread until Ctrl-C (uvicorn handles the signal and finishes open requests)."""
        self.uvicorn.run(sockets=[self.socket])

    def run_in_thread(self) -> threading.Thread:
        self.thread = threading.Thread(target=self.serve_forever, name="slm-http", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.uvicorn.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.uvicorn.started:
            raise SlmError(f"{self.url}: the HTTP server did not start", "rerun with SLM_DEBUG=1 to see why")
        return self.thread

    def shutdown(self) -> None:
        self.uvicorn.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)

    def server_close(self) -> None:
        self.socket.close()
