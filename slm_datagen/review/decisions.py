"""The human decisions of a run: `runs/<run>/review/decisions.jsonl`, append-only, one fsync'ed line per decision.

A line: {"run", "pair_id", "pair_sha256", "decision", "question", "answer", "reason", "reviewer", "time"}.
- `pair_sha256` is the hash of the pair's content when the person decided (`pair_sha256`); a pair whose content
  changed since (teacher re-asked, source amended) no longer matches, and its decision is stale: shown, not applied.
- decision: approve | reject (with a reason) | edit (the edited question and answer) | clear (withdraw the last one).
- The last line for a pair wins; every line stays, so two tabs deciding the same pair are both on record.
- Writers hold an exclusive flock while appending, so lines from two tabs (threads) or two servers never interleave.
- A line cut short by a kill (no newline, not JSON) can only be the last one: it is read up to the tear, reported,
  copied to `decisions.torn.jsonl` and cut from the log before the next append (`repair_tear`).
- Every line names its run; a file from another run (copied in by mistake) is refused, naming the file and line.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from slm_forest.errors import SlmError
from slm_forest.records import QAPair

DecisionKind = Literal["approve", "reject", "edit", "clear"]
DECISION_KINDS: tuple[str, ...] = ("approve", "reject", "edit", "clear")
DECISIONS_FILE = "decisions.jsonl"
TORN_FILE = "decisions.torn.jsonl"
APPLIED_FILE = "review_applied.json"  # in the build dir: what the last build did with the decisions
# The fields of a pair whose change makes an earlier decision about it stale.
CONTENT_FIELDS = ("id", "chunk_id", "doc_id", "question", "answer", "citations", "calculation")


def decisions_path(run_dir: Path) -> Path:
    return Path(run_dir) / "review" / DECISIONS_FILE


def pair_sha256(pair: QAPair | dict[str, Any]) -> str:
    """sha256 of what a person judged: question, answer, citations, calculation and the source they came from."""
    data = pair.model_dump(mode="json") if isinstance(pair, QAPair) else pair
    content = {name: data.get(name) for name in CONTENT_FIELDS}
    return hashlib.sha256(json.dumps(content, ensure_ascii=False, sort_keys=True).encode("utf-8")).hexdigest()


def default_reviewer() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):  # no user name in a bare container
        return "unknown"


@dataclass(frozen=True)
class Decision:
    run: str
    pair_id: str
    pair_sha256: str
    decision: str
    question: str | None = None  # edit: the new question (None: unchanged)
    answer: str | None = None  # edit: the new answer (None: unchanged)
    reason: str = ""
    reviewer: str = ""
    time: str = ""

    def to_line(self) -> bytes:
        return (json.dumps(asdict(self), ensure_ascii=False) + "\n").encode("utf-8")


@dataclass
class DecisionLog:
    """What a decisions file holds: every decision in order, the last per pair, and a tear if there was one."""

    path: Path
    decisions: list[Decision] = field(default_factory=list)
    latest: dict[str, Decision] = field(default_factory=dict)  # pair id -> its last decision (clear removes it)
    torn: str | None = None  # the text after the last newline, when it is not a whole line
    torn_line: int | None = None

    def tear_message(self) -> str:
        return (
            f"{self.path}:{self.torn_line}: the last line was cut short (the writer was killed mid-write); "
            f"read up to it, and kept aside in {self.path.parent / TORN_FILE}"
        )


def _parse_line(path: Path, number: int, text: str, run_name: str) -> Decision:
    try:
        row = json.loads(text)
        decision = Decision(**row)
    except (json.JSONDecodeError, TypeError) as exc:
        raise SlmError(
            f"{path}:{number}: not a decision line ({exc})",
            "the log is append-only: restore it from a backup, or move the broken line out by hand",
        ) from None
    if decision.run != run_name:
        raise SlmError(
            f"{path}:{number}: decisions of run '{decision.run}', not of run '{run_name}'",
            f"this file belongs to another run: move it away (its run dir is runs/{decision.run}/review/)",
        )
    if decision.decision not in DECISION_KINDS:
        raise SlmError(f"{path}:{number}: unknown decision '{decision.decision}'", f"use one of {DECISION_KINDS}")
    return decision


def read_decisions(path: Path, run_name: str) -> DecisionLog:
    """Every whole line of the log, checked; a torn last line is reported in `torn`, never raised."""
    log = DecisionLog(Path(path))
    if not log.path.exists():
        return log
    raw = log.path.read_bytes()
    whole, _, tail = raw.rpartition(b"\n")
    lines = whole.split(b"\n") if whole or raw.startswith(b"\n") else []
    if tail.strip():
        log.torn, log.torn_line = tail.decode("utf-8", errors="replace"), len(lines) + 1
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        decision = _parse_line(log.path, number, line.decode("utf-8", errors="replace"), run_name)
        log.decisions.append(decision)
        if decision.decision == "clear":
            log.latest.pop(decision.pair_id, None)
        else:
            log.latest[decision.pair_id] = decision
    return log


def complete_lines_sha256(path: Path) -> str | None:
    """sha256 of the whole lines of the log (a tear left by a kill does not count): build's fingerprint input."""
    if not Path(path).exists():
        return None
    raw = Path(path).read_bytes()
    return hashlib.sha256(raw[: raw.rfind(b"\n") + 1]).hexdigest()


@contextmanager
def _locked(path: Path) -> Iterator[int]:
    import fcntl  # POSIX, like the stage lock

    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_APPEND, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield fd
    finally:
        os.close(fd)  # releases the lock


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def repair_tear(path: Path) -> str | None:
    """Move a torn last line to decisions.torn.jsonl and cut it from the log; returns the tear's message, if any."""
    path = Path(path)
    if not path.exists():
        return None
    with _locked(path) as fd:
        raw = path.read_bytes()
        keep = raw.rfind(b"\n") + 1
        if keep == len(raw) or not raw[keep:].strip():
            return None
        line = raw[:keep].count(b"\n") + 1
        with open(path.parent / TORN_FILE, "ab") as aside:
            aside.write(raw[keep:] + b"\n")
            aside.flush()
            os.fsync(aside.fileno())
        os.ftruncate(fd, keep)
        os.fsync(fd)
    return f"{path}:{line}: the last line was cut short (killed mid-write); kept aside in {path.parent / TORN_FILE}"


def append_decision(path: Path, decision: Decision) -> Decision:
    """Append one line under the lock and fsync it: once this returns, a kill or a power cut cannot lose it."""
    path = Path(path)
    new_file = not path.exists()
    stamped = decision if decision.time else _with_time(decision)
    with _locked(path) as fd:
        os.write(fd, stamped.to_line())
        os.fsync(fd)
    if new_file:
        _fsync_dir(path.parent)  # the file's directory entry too
    return stamped


def _with_time(decision: Decision) -> Decision:
    now = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
    return Decision(**(asdict(decision) | {"time": now}))


def build_signature(cfg: Any) -> dict[str, Any]:
    """Build's outside inputs: the contamination CSVs and the decisions (by content), so a new decision reruns build
    without --force."""
    from slm_forest.pipeline import contamination_files_signature  # noqa: PLC0415 - the runner imports this module

    return {
        "contamination_files": contamination_files_signature(cfg),
        "decisions_sha256": complete_lines_sha256(decisions_path(cfg.run_dir())),
    }
