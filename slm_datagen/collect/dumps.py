"""Files people already have (a `dump` source): one file at a time, decoded, parsed, problems kept with positions.

A directory is listed (sorted, for a deterministic order) and read one file at a time, so a 400 MB directory is
never in memory at once. Within a file, memory stays bounded too where files get big: a file that is one JSON
array of records (the seed's 200 MB tax-law-judgment/data_main.json, the casebook) is validated for its encoding
chunk by chunk and then parsed one record at a time (jsonstream.py), each record becoming a Document as it is
read. Other shapes (a law.go.kr response, a Markdown precedent, JSON lines of statute units) are small per file and
are decoded whole.

A file that breaks half-way must contribute nothing rather than half of itself: `DumpFile.documents()` raises
InputProblem at the break, and the collect stage rolls back what it already wrote from that file (stage.py);
`read_dump_file` gives the same all-or-nothing result as a list.
"""

from __future__ import annotations

import codecs
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from slm_datagen.collect.encodings import (
    CHUNK_BYTES,
    check_text,
    decoded_chunks,
    detect_encoding,
    file_chunks,
)
from slm_datagen.collect.jsonstream import iter_json_array
from slm_datagen.collect.listing import list_dump
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.shapes import ARRAY_FORMATS, documents_from_items, documents_from_text
from slm_forest.config import DumpSource
from slm_forest.records import Document

_PEEK_BYTES = 64 * 1024
_WHITESPACE = " \t\r\n\ufeff"


@dataclass
class FileResult:
    path: Path
    documents: list[Document] = field(default_factory=list)
    problem: InputProblem | None = None
    encoding: str | None = None


def dump_files(source: DumpSource, where: str) -> list[Path]:
    """The readable files a dump source names (listing.py walks the directory and keeps what cannot be read)."""
    return list_dump(source, where).files


def _nul_checked(chunks: Iterator[str]) -> Iterator[str]:
    """The chunks unchanged; InputProblem (line, column) at the first NUL character, as `check_text` reports it."""
    line, column = 1, 1  # of the next chunk's first character
    for chunk in chunks:
        nul = chunk.find("\x00")
        if nul >= 0:
            newlines = chunk.count("\n", 0, nul)
            at_column = column + nul if not newlines else nul - chunk.rfind("\n", 0, nul)
            raise InputProblem(
                "contains NUL bytes (binary or zero-filled file)", f"line {line + newlines}, column {at_column}"
            )
        newlines = chunk.count("\n")
        line += newlines
        column = len(chunk) - chunk.rfind("\n") if newlines else column + len(chunk)
        yield chunk


def _peek(path: Path, codec: str, limit: int) -> str:
    """The start of the file's text (a character cut at `limit` is left out, not an error)."""
    with open(path, "rb") as handle:
        return codecs.getincrementaldecoder(codec)("strict").decode(handle.read(limit))


class DumpFile:
    """One dump file. `documents()` streams its documents; `encoding` is known once reading started."""

    def __init__(self, path: Path, source: DumpSource, chunk_bytes: int = CHUNK_BYTES) -> None:
        self.path = path
        self.source = source
        self.encoding: str | None = None
        self._chunk_bytes = chunk_bytes

    def documents(self) -> Iterator[Document]:
        """Every document of the file, in order; InputProblem (with its position) when the file is not usable."""
        try:
            yield from self._documents()
        except OSError as exc:
            raise InputProblem(f"cannot read ({exc.strerror or exc})", unreadable=True) from None

    def _documents(self) -> Iterator[Document]:
        path, size = self.path, self._chunk_bytes
        if path.stat().st_size == 0:
            raise InputProblem("empty file")
        if not any(chunk.strip() for chunk in file_chunks(path, size=size)):
            raise InputProblem("only whitespace")
        codec, usable = detect_encoding(lambda: file_chunks(path, size=size), self.source.encoding)
        self.encoding = codec
        label = f"dump:{path.as_posix()}"
        head = _peek(path, codec, min(usable, _PEEK_BYTES)).lstrip(_WHITESPACE)
        count = 0
        if head.startswith("[") and self.source.format in ARRAY_FORMATS:
            items = iter_json_array(_nul_checked(decoded_chunks(path, codec, usable, size)))
            documents = documents_from_items(items, fmt=self.source.format, source=label)
        else:
            with open(path, "rb") as handle:
                text = handle.read(usable).decode(codec)
            check_text(text)
            documents = documents_from_text(text, fmt=self.source.format, source=label)
        for document in documents:
            count += 1
            yield document
        if not count:
            raise InputProblem("no documents in this file")


def read_dump_file(path: Path, source: DumpSource) -> FileResult:
    """Parse one file into a list; never raises for bad content (the problem is returned with its position)."""
    result = FileResult(path)
    dump = DumpFile(path, source)
    try:
        result.documents = list(dump.documents())
    except InputProblem as problem:
        result.documents = []
        result.problem = problem
    result.encoding = dump.encoding
    return result
