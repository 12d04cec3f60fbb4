"""The version of a law file in force on a date, from the git history of a legalize-kr checkout.

Every amendment of a law is one commit of its file, and the file at the tip can be a version not yet in force
(소득세법 there was promulgated 2026-09-08 with 시행일자 2027-09-09). `version_in_force` walks `git log` of the file
newest first and takes the first commit whose front-matter 시행일자 is on or before `as_of`. Git itself does the
reading (`git log`, `git show` in subprocesses): no home-made reader of git objects, so packed, shallow and partial
clones all work as git handles them.
"""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

from slm_datagen.collect.legalize import read_front_matter
from slm_datagen.collect.problems import InputProblem
from slm_forest.errors import SlmError

_TIMEOUT_S = 120


@dataclass(frozen=True)
class FileVersion:
    """One version of a law file: the commit that wrote it, and the text."""

    commit: str
    commit_date: str  # ISO 8601, committer date
    effective_date: str  # 시행일자 of that version
    text: str


def _git(root: Path, *args: str) -> str:
    try:
        done = subprocess.run(
            ["git", "-c", "core.quotepath=off", "-C", str(root), *args],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except FileNotFoundError:
        raise SlmError("git is not installed, but the legalize source is a git checkout", "install git") from None
    except subprocess.TimeoutExpired:
        raise SlmError(f"{root}: git {args[0]} took over {_TIMEOUT_S} s", "check the checkout (git fsck)") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip().splitlines()
        raise SlmError(
            f"{root}: git {' '.join(args[:2])} failed: {message[-1] if message else done.returncode}",
            "check that the path is an intact clone of legalize-kr (git status)",
        )
    return done.stdout.decode("utf-8")


def git_root(path: Path) -> Path | None:
    """The top of the git work tree `path` is in, or None when it is not a git checkout (or git is missing)."""
    try:
        done = subprocess.run(
            ["git", "-C", str(path), "rev-parse", "--show-toplevel"],
            capture_output=True,
            timeout=_TIMEOUT_S,
            check=False,
        )
    except (FileNotFoundError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return None
    return Path(done.stdout.decode("utf-8").strip())


def head_commit(root: Path) -> str:
    return _git(root, "rev-parse", "HEAD").strip()


def file_commits(root: Path, relpath: str) -> list[tuple[str, str]]:
    """(commit, committer date) of every commit that changed the file, newest first (renames not followed:
    legalize-kr keeps one path per law)."""
    out = _git(root, "log", "--format=%H %cI", "--", relpath)
    commits = []
    for line in out.splitlines():
        commit, _, date = line.partition(" ")
        if commit:
            commits.append((commit, date))
    return commits


def show_file(root: Path, commit: str, relpath: str) -> str:
    raw = _git(root, "show", f"{commit}:{relpath}")
    return raw


def version_in_force(root: Path, relpath: str, as_of: str) -> tuple[FileVersion | None, FileVersion | None]:
    """(the newest version with 시행일자 <= as_of, the newest version of all) of one file.

    The first is None when every version starts after `as_of`; both are None when the file has no history (not
    committed). A version whose front matter does not parse is skipped for the choice (a broken commit in the
    history must not hide an older good version) unless it is the only one, which then raises its InputProblem.
    """
    newest: FileVersion | None = None
    problem: InputProblem | None = None
    for commit, date in file_commits(root, relpath):
        text = show_file(root, commit, relpath)
        try:
            effective = read_front_matter(text).effective_date
        except InputProblem as exc:
            problem = problem or InputProblem(f"{exc.message} (in commit {commit[:12]})", exc.where)
            continue
        version = FileVersion(commit, date, effective, text)
        newest = newest or version
        if effective <= as_of:
            return version, newest
    if newest is None and problem is not None:
        raise problem
    return None, newest
