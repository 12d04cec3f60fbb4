"""The judge's verdict and the second teacher's answer on one pair, for the page, read from build's judge ledger.

Every judge and second-teacher reply is a `done` line of `build/judge_ledger.jsonl`, keyed by the content of the
request (`dataset.teacher_calls.check_key`). The page rebuilds the request the build would send for the pair as it is
now, with the run's `build.judge` / `build.second_teacher`, and looks its key up: a verdict shown is exactly the one
build used, and a pair whose answer, source or judge changed since shows "not judged" instead of an old verdict.
Nothing is sent and no key is needed. The ledger is indexed again only when its size or mtime changes.
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from slm_datagen.dataset.teacher_calls import JUDGE_LEDGER_NAME, check_key
from slm_datagen.distill.ledger import Ledger
from slm_forest.config import BuildConfig
from slm_forest.records import Chunk, QAPair

_cache: dict[Path, tuple[tuple[int, int], Ledger]] = {}
_cache_lock = threading.Lock()


def _done_line(path: Path, key: str) -> dict[str, Any] | None:
    """The ledger's done line for `key` (None when there is none, or no ledger)."""
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    signature = (stat.st_size, stat.st_mtime_ns)
    with _cache_lock:
        cached = _cache.get(path)
        if cached is None or cached[0] != signature:
            if cached is not None:
                cached[1].close()
            cached = (signature, Ledger(path, readonly=True))
            _cache[path] = cached
        return cached[1].read_done(key)


def _judge(path: Path, cfg: BuildConfig, pair: QAPair, source: str) -> dict[str, Any]:
    from slm_datagen.dataset.judge import judge_request, parse_judgement  # noqa: PLC0415 - the page's imports

    assert cfg.judge is not None
    out: dict[str, Any] = {"model": f"{cfg.judge.provider}:{cfg.judge.model}", "min_score": cfg.judge_min_score}
    row = _done_line(path, check_key(cfg.judge, "build.judge", judge_request(pair, source)))
    if row is None:
        return out | {"status": "not judged"}
    if row.get("status") != "ok":
        return out | {"status": "failed", "reason": row.get("reason", "")}
    try:
        score, reason = parse_judgement(row.get("reply"))
    except ValueError as exc:
        return out | {"status": "unreadable", "reason": str(exc)}
    return out | {"status": "judged", "score": score, "reason": reason}


def _second(path: Path, cfg: BuildConfig, pair: QAPair, source: str) -> dict[str, Any]:
    from slm_datagen.dataset.judge import compare_answers, second_teacher_request  # noqa: PLC0415

    assert cfg.second_teacher is not None
    out: dict[str, Any] = {"model": f"{cfg.second_teacher.provider}:{cfg.second_teacher.model}"}
    request = second_teacher_request(pair, source, cfg)
    row = _done_line(path, check_key(cfg.second_teacher, "build.second_teacher", request))
    if row is None or row.get("status") != "ok" or not row.get("reply"):
        return out | {"status": "not asked" if row is None else "failed"}
    answer = str(row["reply"])
    return out | {"status": "answered", "answer": answer, "disagreement": compare_answers(pair.answer, answer)}


def teacher_checks(build_dir: Path, cfg: BuildConfig, pair: QAPair, chunk: Chunk | None) -> dict[str, Any]:
    """{"judge": {...}, "second_teacher": {...}} for the checks this run configures (empty when none, or no source)."""
    if chunk is None:
        return {}
    path = Path(build_dir) / JUDGE_LEDGER_NAME
    out: dict[str, Any] = {}
    if cfg.judge is not None and cfg.judge.provider != "offline":
        out["judge"] = _judge(path, cfg, pair, chunk.text)
    if cfg.second_teacher is not None and cfg.second_teacher.provider != "offline":
        out["second_teacher"] = _second(path, cfg, pair, chunk.text)
    return out
