"""The demo corpus shipped inside the package (`slm_datagen/data/`, see its README.md for provenance).

- statutes: the two raw law.go.kr responses under `lawgo/` and the `statutes/lawService_*.json` files that
  `make_bundled.py` wrote from real statute units — all read by the same parser as live API responses;
- statutes: `legalize/kr/<법령명>/법률.md`, the rate articles the calculator relies on, cut out of legalize-kr Markdown
  files (front matter kept) and read by the legalize reader; excerpts, so `meta["complete_law"]` is False, and
  `legalize/SOURCES.json` names the repository and commit each came from;
- rulings: `rulings/nts_casebook_2025.json`, 96 국세청 interpretations from the 2025 세법해석 사례집.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

from slm_datagen.collect.casebook import parse_casebook
from slm_datagen.collect.lawgo_parse import parse_law
from slm_datagen.collect.legalize import parse_law_markdown
from slm_datagen.collect.problems import InputProblem
from slm_forest.errors import SlmError
from slm_forest.records import Document

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
_PARTS = {
    "statutes": (("lawgo", "*.json"), ("statutes", "lawService_*.json"), ("legalize", "kr/*/*.md")),
    "rulings": (("rulings", "*.json"),),
}


def bundled_files(include: list[str]) -> list[Path]:
    files: list[Path] = []
    for part in include:
        for folder, pattern in _PARTS[part]:
            files += sorted((DATA_DIR / folder).glob(pattern))
    if not files:
        raise SlmError(f"the bundled corpus is missing from {DATA_DIR}", "reinstall slm-forest (pip install -e .)")
    return files


def read_bundled_file(path: Path) -> list[Document]:
    """A shipped file that does not parse is a packaging bug, so it stops the run instead of being skipped."""
    label = f"bundled:{path.relative_to(DATA_DIR).as_posix()}"
    try:
        if path.suffix == ".md":
            return _read_legalize_excerpt(path, label)
        data = json.loads(path.read_text(encoding="utf-8"))
        if path.parent.name == "rulings":
            return list(parse_casebook(data, source=label))
        return parse_law(data, source=label)
    except (InputProblem, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SlmError(
            f"{path}: bundled file does not parse ({exc})", "reinstall slm-forest or rerun make_bundled.py"
        ) from None


def _read_legalize_excerpt(path: Path, label: str) -> list[Document]:
    relpath = path.relative_to(DATA_DIR / "legalize").as_posix()
    sources = json.loads((DATA_DIR / "legalize" / "SOURCES.json").read_text(encoding="utf-8"))
    provenance = {"path": relpath, "excerpt": True, **sources.get(relpath, {})}
    return parse_law_markdown(path.read_text(encoding="utf-8"), source=label, complete=False, provenance=provenance)


def iter_bundled(include: list[str]) -> Iterator[tuple[Path, list[Document]]]:
    for path in bundled_files(include):
        yield path, read_bundled_file(path)
