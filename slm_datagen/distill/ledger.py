"""The append-only request ledger: `<stage_dir>/ledger.jsonl`, one JSON line per event, never rewritten.

It is the stage's memory of money spent. A request is keyed by the sha256 of what was sent (provider, model, prompt
version, messages, parameters; see `plan.request_key`); a key with a `done` line is never sent again, whatever
happens to the other files, and `--force` leaves the ledger alone. `qa_pairs.jsonl` and `failures.jsonl` are
rebuilt from it at the end of every run.

Line types:
- `done`    a finished request: `status` ok (with `pair`) or failed (with `reason`), usage and cost included.
- `attempt` a first reply that failed its checks and was paid for: a resumed run goes straight to the repair call.
- `error`   a request that could not be completed (HTTP errors after all retries); retried by the next run.
- `batch`   a provider batch (`phase`: submitting / submitted / collected, or abandoned for a submission the
            provider never received) with its submission token, id and keys, for resuming batches.

Money: `index.spent_usd` is every paid call ever recorded, each counted once. A `done` line's usage already
includes the paid first reply of its `attempt` line (the repair conversation is one request), so the attempt's cost
is taken back out when the done line arrives. `distill.max_cost_usd` starts from this number.

Every line is written with one `write` + flush + fsync, so a SIGKILL leaves at most a torn final line, which is
ignored (and cut off before the next append). A bad line anywhere else is an error naming the line.
"""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

LEDGER_NAME = "ledger.jsonl"


@dataclass
class LedgerIndex:
    done: dict[str, int] = field(default_factory=dict)  # key -> byte offset of its done line
    done_status: dict[str, str] = field(default_factory=dict)  # key -> ok / failed
    attempts: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> last unrepaired attempt
    errors: dict[str, dict[str, Any]] = field(default_factory=dict)  # key -> last error (not completed)
    batches: dict[str, dict[str, Any]] = field(default_factory=dict)  # batch id -> latest batch line
    # submission tokens whose batch is settled in the ledger (submitted, collected or abandoned): a `submitting`
    # line whose token is here is not an orphan to look for at the provider
    batch_tokens: set[str] = field(default_factory=set)
    spent_usd: float = 0.0  # every paid call recorded in the ledger, each once (all teachers, all runs)


class Ledger:
    """Open (creating if needed) and index a ledger; `append` writes one durable line.

    `readonly=True` (for `--dry-run`) only reads: a missing ledger stays missing, a torn tail is skipped but not cut.
    """

    def __init__(self, path: Path, *, fsync: bool = True, readonly: bool = False) -> None:
        self.path = Path(path)
        self.fsync = fsync
        self.readonly = readonly
        self.index = LedgerIndex()
        self._reader: Any = None
        self._handle: Any = None
        if not readonly:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        self._load()
        if not readonly:
            self._handle = open(self.path, "ab")

    # ---------------------------------------------------------------------------------------------------- reading
    def _load(self) -> None:
        """Index the ledger line by line (streamed: a big ledger is never read into memory at once)."""
        if not self.path.exists():
            return
        good_end = 0
        bad: tuple[int, str] | None = None
        with open(self.path, "rb") as handle:
            line_no = 0
            while True:
                offset = handle.tell()
                raw = handle.readline()
                if not raw:
                    break
                line_no += 1
                if not raw.endswith(b"\n"):  # a torn final line from a kill mid-write: drop it
                    break
                if bad is not None:  # a bad line followed by more lines is corruption, not a torn tail
                    raise SlmError(
                        f"{self.path}:{bad[0]}: not valid JSON ({bad[1]})",
                        "delete that line (its request will be sent again) and rerun",
                    )
                if raw.strip():
                    try:
                        row = json.loads(raw)
                    except json.JSONDecodeError as exc:
                        bad = (line_no, exc.msg)
                        continue
                    self._apply(row, offset)
                good_end = handle.tell()
        if good_end < self.path.stat().st_size and not self.readonly:
            with open(self.path, "r+b") as handle:
                handle.truncate(good_end)
                handle.flush()
                os.fsync(handle.fileno())

    def _apply(self, row: dict[str, Any], offset: int) -> None:
        kind = row.get("type")
        key = row.get("key")
        if kind == "done" and key:
            self.index.done[key] = offset
            self.index.done_status[key] = row.get("status", "ok")
            attempt = self.index.attempts.pop(key, None)
            self.index.errors.pop(key, None)
            self.index.spent_usd += float(row.get("usage", {}).get("cost_usd", 0.0))
            if attempt is not None:  # the done usage already includes the paid first reply
                self.index.spent_usd -= float(attempt.get("usage", {}).get("cost_usd", 0.0))
        elif kind == "attempt" and key:
            if key not in self.index.done:
                self.index.attempts[key] = row
            self.index.spent_usd += float(row.get("usage", {}).get("cost_usd", 0.0))
        elif kind == "error" and key:
            if key not in self.index.done:
                self.index.errors[key] = row
        elif kind == "batch":
            if row.get("batch_id"):
                self.index.batches[row["batch_id"]] = row
            if row.get("token") and row.get("phase") != "submitting":
                self.index.batch_tokens.add(row["token"])

    def is_done(self, key: str) -> bool:
        return key in self.index.done

    def read_done(self, key: str) -> dict[str, Any] | None:
        """The done line for `key` (read from disk by offset, so big ledgers are not held in memory)."""
        offset = self.index.done.get(key)
        if offset is None:
            return None
        if self._reader is None:
            self._reader = open(self.path, "rb")
        self._reader.seek(offset)
        return json.loads(self._reader.readline())

    # ---------------------------------------------------------------------------------------------------- writing
    def append(self, row: dict[str, Any]) -> None:
        if self._handle is None:
            raise RuntimeError(f"{self.path}: opened read-only")
        row = {"ts": round(time.time(), 3), **row}
        line = (json.dumps(row, ensure_ascii=False, separators=(",", ":")) + "\n").encode("utf-8")
        offset = self._handle.tell()
        self._handle.write(line)
        self._handle.flush()
        if self.fsync:
            os.fsync(self._handle.fileno())
        self._apply(row, offset)

    def close(self) -> None:
        if self._handle is not None and not self._handle.closed:
            self._handle.close()
        if self._reader is not None:
            self._reader.close()
            self._reader = None

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
