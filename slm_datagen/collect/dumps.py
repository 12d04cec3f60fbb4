"""Files people already have (a `dump` source): one file at a time, decoded, parsed, problems kept with positions.

A directory is listed (sorted, for a deterministic order) and read one file at a time, so a 400 MB directory is
never in memory at once; a file's documents are handed back only once the whole file parsed, so a file that
breaks half-way contributes nothing rather than half of itself.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from slm_forest.errors import SlmError
from slm_forest.records import Document
from slm_forest.config import DumpSource
from slm_datagen.collect.encodings import check_text, decode_bytes
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.shapes import documents_from_text


@dataclass
class FileResult:
    path: Path
    documents: list[Document] = field(default_factory=list)
    problem: InputProblem | None = None
    encoding: str | None = None


def dump_files(source: DumpSource, where: str) -> list[Path]:
    """The files a dump source names: the file itself, or the files under the directory matching `glob`."""
    root = Path(source.path).expanduser()
    if not root.exists():
        raise SlmError(f"{where}.path: {root} does not exist", "point `path` at a file or a directory of dumps")
    if root.is_file():
        return [root]
    files = [
        p for p in root.glob(source.glob)
        if p.is_file() and not any(part.startswith(".") for part in p.relative_to(root).parts)
    ]
    return sorted(files, key=lambda p: p.relative_to(root).as_posix())


def read_dump_file(path: Path, source: DumpSource) -> FileResult:
    """Parse one file; never raises for bad content (the problem is returned with its position)."""
    result = FileResult(path)
    try:
        data = path.read_bytes()
        if not data.strip():
            raise InputProblem("empty file" if not data else "only whitespace")
        text, result.encoding = decode_bytes(data, source.encoding)
        check_text(text)
        result.documents = list(documents_from_text(text, fmt=source.format, source=f"dump:{path.as_posix()}"))
        if not result.documents:
            raise InputProblem("no documents in this file")
    except InputProblem as problem:
        result.documents = []
        result.problem = problem
    except OSError as exc:
        result.problem = InputProblem(f"cannot read ({exc.strerror})")
    return result

