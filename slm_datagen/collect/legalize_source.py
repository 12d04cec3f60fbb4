"""What a `legalize` source reads: which law files (`laws: tax-all | [names]`), and which version of each (`as_of`).

A law name maps to a folder of the checkout's `kr/` by its spelling-insensitive key (legalize-kr writes folder names
without spaces: `kr/상속세및증여세법/`), and its suffix to the file: "… 시행령" -> 시행령.md, "… 시행규칙" -> 시행규칙.md,
anything else -> 법률.md. A name that matches no folder stops the run with the closest folder names (did-you-mean);
under `tax-all` a law the checkout lacks is a warning, since the list is ours, not the user's.

In a git checkout the version in force on `as_of` (default: today) comes from the file's history (legalize_git.py),
and the commit and 시행일자 go into each document's `meta["legalize"]`. A plain copy is read as it is, with a warning
when its 시행일자 is after `as_of`.
"""

from __future__ import annotations

import difflib
import unicodedata
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import date
from pathlib import Path

from slm_datagen.collect.catalogue import DECREE_SUFFIX, RULE_SUFFIX, TAX_ALL, name_key, resolve_laws, suggest
from slm_datagen.collect.legalize import parse_law_markdown, read_front_matter
from slm_datagen.collect.legalize_git import git_root, head_commit, version_in_force
from slm_datagen.collect.problems import InputProblem
from slm_forest.config import LegalizeSource
from slm_forest.errors import SlmError
from slm_forest.records import Document

LAW_FILE, DECREE_FILE, RULE_FILE = "법률.md", "시행령.md", "시행규칙.md"


@dataclass
class LawItem:
    label: str
    documents: list[Document]
    problem: InputProblem | None = None
    input_file: Path | None = None  # a file read from disk (not from git history): hashed into the manifest


def as_of_date(source: LegalizeSource) -> str:
    return (source.as_of or date.today()).isoformat()


def laws_dir(source: LegalizeSource, where: str) -> Path:
    """The folder holding one folder per law: `<path>/kr`, or `<path>` itself when it is that folder."""
    path = Path(source.path).expanduser()
    if not path.is_dir():
        raise SlmError(
            f"{where}.path: {path} is not a directory", "clone it: git clone https://github.com/legalize-kr/legalize-kr"
        )
    if (path / "kr").is_dir():
        return path / "kr"
    if any(
        (child / LAW_FILE).is_file() or (child / DECREE_FILE).is_file() for child in path.iterdir() if child.is_dir()
    ):
        return path
    raise SlmError(
        f"{where}.path: {path} has no kr/ folder of laws (kr/<법령명>/법률.md)",
        "point path at a clone of legalize-kr/legalize-kr (its root or its kr/ folder)",
    )


def _split_name(official: str) -> tuple[str, str]:
    """'소득세법 시행령' -> ('소득세법', '시행령.md')."""
    for suffix, filename in ((DECREE_SUFFIX, DECREE_FILE), (RULE_SUFFIX, RULE_FILE)):
        if official.endswith(suffix):
            return official[: -len(suffix)].strip(), filename
    return official, LAW_FILE


def select_files(source: LegalizeSource, where: str, warn: Callable[[str], None]) -> list[Path]:
    """The law files the source names, in the order of `laws`."""
    root = laws_dir(source, where)
    folders = {name_key(unicodedata.normalize("NFC", p.name)): p for p in sorted(root.iterdir()) if p.is_dir()}
    from_catalogue = source.laws == TAX_ALL or TAX_ALL in source.laws
    files: list[Path] = []
    for index, official in enumerate(resolve_laws(source.laws, f"{where}.laws")):
        base, filename = _split_name(official)
        folder = folders.get(name_key(base))
        path = folder / filename if folder else None
        if path is not None and path.is_file():
            files.append(path)
            continue
        if from_catalogue:
            warn(f"{where}: {official}: not in {root} ({'no ' + filename if folder else 'no folder'}); skipped")
            continue
        if folder is None:
            close = difflib.get_close_matches(name_key(base), list(folders), n=3, cutoff=0.5)
            names = [folders[c].name for c in close] + [s for s in suggest(official) if s not in close]
            hint = f"did you mean {', '.join(dict.fromkeys(names))}?" if names else "check the name against kr/"
            raise SlmError(f"{where}.laws.{index}: no law named {official!r} in {root}", hint)
        present = ", ".join(sorted(p.name for p in folder.glob("*.md"))) or "no .md files"
        raise SlmError(f"{where}.laws.{index}: {folder} has no {filename} ({present})", "check the law's name")
    return files


def _from_history(repo: Path, path: Path, as_of: str, warn: Callable[[str], None]) -> LawItem | None:
    relpath = path.resolve().relative_to(repo.resolve()).as_posix()
    chosen, newest = version_in_force(repo, relpath, as_of)
    if newest is None:  # never committed: what is on disk is all there is
        warn(f"{path}: not committed in {repo}; read as it is on disk")
        return None
    if chosen is None:
        warn(f"{relpath}: no version in force on {as_of} (the newest starts {newest.effective_date}); skipped")
        return LawItem(f"legalize:{relpath}", [])
    provenance = {
        "path": relpath,
        "commit": chosen.commit,
        "commit_date": chosen.commit_date,
        "시행일자": chosen.effective_date,
        "as_of": as_of,
    }
    if newest.commit != chosen.commit:
        provenance["newer_version"] = {"commit": newest.commit, "시행일자": newest.effective_date}
    label = f"legalize:{relpath}@{chosen.commit[:12]}"
    return LawItem(label, parse_law_markdown(chosen.text, source=label, provenance=provenance))


def read_law_file(path: Path, repo: Path | None, as_of: str, warn: Callable[[str], None]) -> LawItem:
    """One law file's documents, or the problem it has (with its line)."""
    try:
        if repo is not None:
            item = _from_history(repo, path, as_of, warn)
            if item is not None:
                return item
        text = path.read_text(encoding="utf-8")
        law = read_front_matter(text)
        if law.effective_date > as_of:
            warn(
                f"{path}: 시행일자 {law.effective_date} is after as_of {as_of}, and without git history no earlier "
                "version can be chosen; read as it is"
            )
        provenance = {"path": str(path), "시행일자": law.effective_date, "as_of": as_of}
        label = f"legalize:{path}"
        return LawItem(label, parse_law_markdown(text, source=label, provenance=provenance), input_file=path)
    except InputProblem as problem:
        return LawItem(f"legalize:{path}", [], problem, input_file=path)
    except (OSError, UnicodeDecodeError) as exc:
        return LawItem(f"legalize:{path}", [], InputProblem(f"cannot read ({exc})", unreadable=True))


def checkout_root(source: LegalizeSource, where: str) -> Path | None:
    """The git work tree of the checkout, when the path is one (its root or its kr/): a copy of the laws that merely
    sits inside some other repository (a project's fixtures) is a plain copy, not a history of the laws."""
    folder = laws_dir(source, where).resolve()
    repo = git_root(folder)
    return repo if repo is not None and repo.resolve() in (folder, folder.parent) else None


def legalize_items(source: LegalizeSource, where: str, warn: Callable[[str], None]) -> Iterator[LawItem]:
    as_of = as_of_date(source)
    files = select_files(source, where, warn)
    repo = checkout_root(source, where)
    for path in files:
        yield read_law_file(path, repo, as_of, warn)


def signature(source: LegalizeSource, where: str) -> list[object]:
    """What must rerun collect: the checkout's HEAD (a `git pull`), the day `as_of` resolves to, the files named;
    for a plain copy each file's size and mtime."""
    files = select_files(source, where, lambda message: None)
    repo = checkout_root(source, where)
    entry: list[object] = [source.path, as_of_date(source), [str(p) for p in files]]
    if repo is not None:
        return [*entry, head_commit(repo)]
    return [*entry, [[p.stat().st_size, p.stat().st_mtime_ns] for p in files]]
