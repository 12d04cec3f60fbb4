"""Which paths a `dump` source names: its files, and every path under it that cannot be read, with the reason.

A directory is walked in sorted order. Symbolic links to directories are followed once: each real directory (by
its resolved path) is read the first time it is reached, so a link back to a directory above it (a loop) or a
second link to one already read never reads anything twice. Nothing is dropped silently — a path that matches the
glob but cannot be read is returned with its reason (dangling link, link loop, directory that cannot be listed,
named pipe, socket, device) for `skipped.jsonl`; a second path to the same real file or directory is returned as a
duplicate. Named pipes are never opened: reading one would block until some other process writes to it.

Hidden files and directories (a name starting with ".") are not read, as before: editors and tools keep their
state there. Files that exist but cannot be opened (permission denied) are found when they are read (dumps.py).
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

from slm_forest.config import DumpSource
from slm_forest.errors import SlmError


@dataclass
class DumpEntry:
    path: Path
    problem: str | None = None  # why it cannot be read; None for a file to read


@dataclass
class DumpListing:
    root: Path
    entries: list[DumpEntry] = field(default_factory=list)  # sorted by path relative to the root
    duplicates: list[tuple[Path, Path]] = field(default_factory=list)  # (path, the path it was read as)

    @property
    def files(self) -> list[Path]:
        return [entry.path for entry in self.entries if entry.problem is None]


def glob_regex(pattern: str) -> re.Pattern[str]:
    """A glob over '/'-separated relative paths as a regex: `**` spans directories, `*` and `?` stay in one name."""
    parts = pattern.strip("/").split("/")
    out = ""
    for index, part in enumerate(parts):
        last = index == len(parts) - 1
        if part == "**":
            out += ".*" if last else "(?:[^/]+/)*"
            continue
        out += _segment_regex(part) + ("" if last else "/")
    return re.compile(out + r"\Z")


def _segment_regex(part: str) -> str:
    out, i = "", 0
    while i < len(part):
        char = part[i]
        close = part.find("]", i + 2) if char == "[" else -1
        if char == "*":
            out += "[^/]*"
        elif char == "?":
            out += "[^/]"
        elif close > 0:
            inner = part[i + 1 : close]
            out += "[" + ("^" + re.escape(inner[1:]) if inner.startswith("!") else re.escape(inner)) + "]"
            i = close
        else:
            out += re.escape(char)
        i += 1
    return out


def _not_regular(mode: int) -> str:
    if stat.S_ISFIFO(mode):
        return "a named pipe, not a regular file (not opened: reading it would block)"
    if stat.S_ISSOCK(mode):
        return "a socket, not a regular file"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device, not a regular file"
    return "not a regular file"


def _stat_problem(path: Path, exc: OSError) -> str:
    if path.is_symlink():
        target = os.readlink(path)
        if exc.errno == errno.ELOOP:
            return f"symbolic link loop (→ {target})"
        if exc.errno == errno.ENOENT:
            return f"dangling symbolic link (→ {target}, which does not exist)"
    return f"cannot read ({exc.strerror or exc})"


class _Walk:
    def __init__(self, root: Path, pattern: str) -> None:
        self.listing = DumpListing(root)
        self.matches = glob_regex(pattern)
        self.max_depth = None if "**" in pattern else pattern.strip("/").count("/")
        self.dirs_read: dict[Path, Path] = {}
        self.files_read: dict[Path, Path] = {}

    def add(self, path: Path, problem: str | None = None) -> None:
        self.listing.entries.append(DumpEntry(path, problem))

    def directory(self, directory: Path, depth: int, above: frozenset[Path]) -> None:
        real = directory.resolve()
        self.dirs_read[real] = directory
        try:
            with os.scandir(directory) as scan:
                names = sorted(entry.name for entry in scan)
        except OSError as exc:
            self.add(directory, f"cannot list this directory ({exc.strerror or exc})")
            return
        for name in names:
            if not name.startswith("."):
                self.entry(directory / name, depth, above | {real})

    def entry(self, path: Path, depth: int, above: frozenset[Path]) -> None:
        matched = self.matches.match(path.relative_to(self.listing.root).as_posix()) is not None
        try:
            mode = path.stat().st_mode  # follows links
        except OSError as exc:
            if matched or self.max_depth is None:  # with ** an unreadable name may have been a directory
                self.add(path, _stat_problem(path, exc))
            return
        if stat.S_ISDIR(mode):
            if self.max_depth is not None and depth >= self.max_depth:
                return
            real = path.resolve()
            if real in above:
                self.add(path, f"symbolic link loop (→ {os.readlink(path)}, a directory above it): not followed")
            elif real in self.dirs_read:
                self.listing.duplicates.append((path, self.dirs_read[real]))
            else:
                self.directory(path, depth + 1, above)
        elif not matched:
            return
        elif not stat.S_ISREG(mode):
            self.add(path, _not_regular(mode))
        elif (real := path.resolve()) in self.files_read:
            self.listing.duplicates.append((path, self.files_read[real]))
        else:
            self.files_read[real] = path
            self.add(path)


def list_dump(source: DumpSource, where: str) -> DumpListing:
    """The files a dump source names (the file itself, or those under the directory matching `glob`) and the
    paths under it that cannot be read."""
    root = Path(source.path).expanduser()
    if not root.exists():
        if root.is_symlink():
            raise SlmError(
                f"{where}.path: {root} is a dangling symbolic link (→ {os.readlink(root)})",
                "point `path` at a file or a directory of dumps",
            )
        raise SlmError(f"{where}.path: {root} does not exist", "point `path` at a file or a directory of dumps")
    mode = root.stat().st_mode
    if not stat.S_ISDIR(mode):
        return DumpListing(root, [DumpEntry(root, None if stat.S_ISREG(mode) else _not_regular(mode))])
    walk = _Walk(root, source.glob)
    walk.directory(root, 0, frozenset())
    walk.listing.entries.sort(key=lambda entry: entry.path.relative_to(root).as_posix())
    return walk.listing
