"""Temporary files a killed collect leaves behind, and their removal at the start of the next one.

Every file collect writes goes to a temporary name beside it and is renamed into place (slm_forest/files.py for
the stage's outputs, `temporary_beside` for law.go.kr cache entries), so a SIGKILL can leave only such temporaries,
never a half-written output. The stage directory belongs to one run: every `.*.tmp` in it is stale when collect
starts. A response cache may be shared by runs (`collect.cache_dir`), so its temporaries carry the id of the process
writing them, and one whose process still runs is left alone.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

_TAGGED = re.compile(r"^\..+\.pid(\d+)\.tmp$")


def temporary_beside(path: Path) -> Path:
    """The temporary name `path` is written under: hidden, tagged with this process's id."""
    return path.with_name(f".{path.name}.pid{os.getpid()}.tmp")


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # it exists, owned by another user
    return True


def sweep_temporaries(stage_dir: Path, cache_dir: Path) -> list[Path]:
    """Remove the stale temporaries of earlier collects; returns what was removed."""
    removed = [path for path in stage_dir.glob(".*.tmp") if path.is_file()]
    if cache_dir.is_dir():
        for path in cache_dir.rglob(".*.tmp"):
            tagged = _TAGGED.match(path.name)
            if tagged and int(tagged[1]) != os.getpid() and _process_alive(int(tagged[1])):
                continue  # another collect is writing this entry right now
            removed.append(path)
    for path in removed:
        path.unlink(missing_ok=True)
    return removed
