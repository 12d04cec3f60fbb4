"""The review page's FastAPI app: the static page (package data) and a small JSON API.

GET  /                          the page (static/index.html; CSS and JS beside it, no build step, works offline)
GET  /api/summary               run, reviewer, progress (progress.review_progress), filter choices, a repaired tear
GET  /api/pairs?queue=1&rule=…  the list (filters: queue rule law article kind split teacher audience status q)
GET  /api/pairs/{id}            one pair: source chunk, cited articles' text, findings, calculator, decisions
POST /api/pairs/{id}/check      {"question", "answer"}: build's per-pair rules on an edit, nothing stored
POST /api/pairs/{id}/decision   {"decision": approve|reject|edit|clear, "reason", "question", "answer",
                                 "pair_sha256"}: checked, appended and fsync'ed before the reply (201)
With an API key (`--api-key-env`) every /api/ request needs `Authorization: Bearer <key>`; the page asks for it once.
"""

from __future__ import annotations

import hmac
from importlib import resources
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from starlette.concurrency import run_in_threadpool

from slm_datagen.review.decisions import Decision
from slm_datagen.review.state import EditRefused, ReviewState, check_edit, record_decision
from slm_datagen.review.views import FILTERS, list_pairs, pair_detail, summary
from slm_forest.errors import SlmError

STATIC_TYPES = {".css": "text/css; charset=utf-8", ".js": "text/javascript; charset=utf-8"}


def _static(name: str) -> bytes | None:
    files = resources.files("slm_datagen.review") / "static"
    target = files / name
    return target.read_bytes() if "/" not in name and target.is_file() else None


def _error(status: int, message: str, **extra: Any) -> JSONResponse:
    return JSONResponse({"error": message} | extra, status_code=status)


def _authorised(request: Request, api_key: str | None) -> bool:
    if not api_key:
        return True
    header = request.headers.get("authorization", "")
    given = header[7:].strip() if header.lower().startswith("bearer ") else ""
    return hmac.compare_digest(given.encode(), api_key.encode())


async def _json_body(request: Request) -> dict[str, Any]:
    try:
        body = await request.json()
    except ValueError:
        raise ValueError("the body is not valid JSON") from None
    if not isinstance(body, dict):
        raise ValueError("the body must be a JSON object")
    return body


def make_app(state: ReviewState, api_key: str | None = None) -> FastAPI:
    app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Any) -> Response:
        if request.url.path.startswith("/api/") and not _authorised(request, api_key):
            return _error(401, "missing or wrong API key (Authorization: Bearer …)")
        try:
            return await call_next(request)
        except SlmError as exc:  # e.g. a decisions file of another run copied in while serving
            return _error(409, str(exc))

    @app.get("/")
    async def index() -> HTMLResponse:
        return HTMLResponse(_static("index.html") or b"", headers={"Cache-Control": "no-cache"})

    @app.get("/static/{name}")
    async def static(name: str) -> Response:
        data = _static(name)
        suffix = name[name.rfind(".") :]
        if data is None or suffix not in STATIC_TYPES:
            return _error(404, f"no file {name}")
        return Response(data, media_type=STATIC_TYPES[suffix], headers={"Cache-Control": "no-cache"})

    @app.get("/api/summary")
    async def get_summary() -> dict[str, Any]:
        return await run_in_threadpool(summary, state)

    @app.get("/api/pairs")
    async def get_pairs(request: Request) -> dict[str, Any]:
        filters = {key: request.query_params.get(key, "") for key in FILTERS}
        return await run_in_threadpool(list_pairs, state, filters)

    @app.get("/api/pairs/{pair_id}")
    async def get_pair(pair_id: str) -> Any:
        try:
            return await run_in_threadpool(pair_detail, state, pair_id)
        except LookupError as exc:
            return _error(404, str(exc))

    @app.post("/api/pairs/{pair_id}/check")
    async def check(pair_id: str, request: Request) -> Any:
        row = state.rows.get(pair_id)
        if row is None:
            return _error(404, f"no pair {pair_id} in this run")
        try:
            body = await _json_body(request)
        except ValueError as exc:
            return _error(400, str(exc))
        edit = Decision(state.cfg.run_name, pair_id, row.sha256, "edit", body.get("question"), body.get("answer"))
        findings, refusal = await run_in_threadpool(check_edit, state, row.pair, edit)
        return {"findings": findings, "refused": refusal}

    @app.post("/api/pairs/{pair_id}/decision")
    async def decide(pair_id: str, request: Request) -> Any:
        try:
            body = await _json_body(request)
            stored = await run_in_threadpool(record_decision, state, pair_id, body)
        except LookupError as exc:
            return _error(404, str(exc))
        except EditRefused as exc:
            return _error(422, f"edit refused: {exc}", findings=exc.findings)
        except ValueError as exc:
            return _error(422, str(exc))
        return JSONResponse(stored | {"progress": state.progress()}, status_code=201)

    return app
