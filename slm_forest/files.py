"""Atomic file writing and JSONL reading/writing.

Every artifact is written to a temporary name in the same directory and renamed into place, so a stage killed
mid-write never leaves a half-written file that a later run would trust. JSONL is UTF-8, one object per line,
`ensure_ascii=False` so Korean stays readable.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from slm_forest.errors import SlmError
from slm_forest.redact import ScrubbingWriter, known_secrets

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it onto `path`, on failure remove it."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    # mkstemp creates 0600; artifacts get the usual mode (0666 minus umask) so teammates and services (ollama) read them.
    os.chmod(tmp_path, 0o666 & ~_UMASK)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    except BaseException:
        tmp_path.unlink(missing_ok=True)
        raise


@contextlib.contextmanager
def atomic_writer(path: Path, mode: str = "w") -> Iterator[Any]:
    """Open a temporary file for writing; it replaces `path` only if the block finishes without error.

    In text mode every write has the known secrets replaced by their variable's name (slm_forest.redact).
    """
    with atomic_path(path) as tmp:
        encoding = None if "b" in mode else "utf-8"
        with open(tmp, mode, encoding=encoding) as handle:
            # Text artifacts (manifests, cards, JSONL) never carry a secret's value, whatever put it in the text.
            secrets = [] if "b" in mode else known_secrets()
            yield ScrubbingWriter(handle, secrets) if secrets else handle
            handle.flush()
            os.fsync(handle.fileno())


def _to_jsonable(row: Any) -> Any:
    if isinstance(row, BaseModel):
        return row.model_dump(mode="json")
    return row


def dumps_line(row: Any) -> str:
    return json.dumps(_to_jsonable(row), ensure_ascii=False, separators=(",", ":")) + "\n"


def write_jsonl(path: Path, rows: Iterable[Any]) -> int:
    """Write rows (dicts or pydantic models) atomically; returns the number of rows."""
    count = 0
    with atomic_writer(path) as out:
        for row in rows:
            out.write(dumps_line(row))
            count += 1
    return count


def write_json(path: Path, obj: Any) -> None:
    text = json.dumps(_to_jsonable(obj), ensure_ascii=False, indent=2) + "\n"  # one write: scrubbed whole
    with atomic_writer(path) as out:
        out.write(text)


def read_jsonl(path: Path) -> Iterator[dict]:
    """Stream rows; a malformed line is an error naming the file and line."""
    path = Path(path)
    if not path.exists():
        raise SlmError(f"{path}: file not found", "check the path or run the stage that writes it")
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield json.loads(line)
            except json.JSONDecodeError as exc:
                raise SlmError(
                    f"{path}:{line_no}: not valid JSON ({exc.msg} at column {exc.colno})",
                    "fix or delete that line, or rerun the stage that wrote the file with --force",
                ) from None


def count_jsonl(path: Path) -> int:
    with open(path, "rb") as handle:
        return sum(1 for line in handle if line.strip())


def sha256_file(path: Path, chunk_size: int = 1 << 20) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        while block := handle.read(chunk_size):
            digest.update(block)
    return digest.hexdigest()


def sha256_text(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


# What this project's writers name their temporaries. Files: atomic_path's `.<name>.<8 random>.tmp`, prepare's spool
# `.<name>.<8 random>.spool`, export's `.<model>.gguf.tmp`. Directories: the `.<name>.tmp` that train and export
# fill before a rename, build's staging `.hf.<8 random>`. A finished run leaves none; a killed one (SIGKILL, power
# loss) may. Other dotfiles (`.x.tmp` written by hand, `.gitignore`) are not ours and stay.
_STALE_TEMP_FILE = re.compile(r"\..+\.[a-z0-9_]{8}\.(?:tmp|spool)|\..+\.gguf\.tmp")
_STALE_TEMP_DIR = re.compile(r"\.[^.].*\.tmp|\.hf\.[a-z0-9_]{8}")


def sweep_stale_temps(directory: Path) -> list[Path]:
    """Remove the temporaries a killed run left anywhere under `directory`; returns what was removed.

    Call it only while holding the stage's lock (pipeline.run_stage does): a temp file of a run in progress looks
    the same as a stale one. Symbolic links are neither followed nor removed.
    """
    removed: list[Path] = []
    if not Path(directory).is_dir():
        return removed
    for root, dirs, names in os.walk(directory):
        for name in list(dirs):
            path = Path(root) / name
            if _STALE_TEMP_DIR.fullmatch(name) and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
                removed.append(path)
                dirs.remove(name)
        for name in names:
            path = Path(root) / name
            if _STALE_TEMP_FILE.fullmatch(name) and not path.is_symlink():
                path.unlink(missing_ok=True)
                removed.append(path)
    return removed
