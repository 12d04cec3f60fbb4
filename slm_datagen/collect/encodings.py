"""Bytes -> text for Korean input files: UTF-8 (with or without BOM), UTF-16 with BOM, CP949 / EUC-KR.

Choice: a strict decode-try chain, not charset-normalizer's statistical guess. Korean legal files come in exactly
these encodings (UTF-8 from the API and modern tools, CP949/EUC-KR from Windows-era exports; CP949 is a superset
of EUC-KR, so one codec covers both). A strict decode is exact: valid UTF-8 is UTF-8, and a file that is neither
is reported with the byte offset instead of being "detected" as something that silently turns 한글 into mojibake —
a guesser can name short Korean text Johab or Big5. The one place a strict chain can be fooled (single-byte Latin-1
text that happens to decode as CP949) is caught by requiring the non-ASCII characters of a CP949 decode to be
mostly Hangul.

A file cut off in the middle of a multi-byte character (a truncated download: Hangul is 3 bytes in UTF-8) is not an
encoding problem: the incomplete sequence at the very end is dropped and the text is handed on, so the parser
reports what is really wrong — "truncated JSON/XML" at the position where the text stops.

The check runs over chunks (`detect_encoding`), so a 200 MB file is validated without holding it in memory;
`decode_bytes` applies the same rules to bytes already in memory (API bodies, small files).
"""

from __future__ import annotations

import codecs
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from slm_datagen.collect.problems import InputProblem

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))
# What the decoders say when the data stops inside a character (UTF-8, UTF-16, CP949 respectively). Raised only
# by the final decode, i.e. at the very end of the data.
_TAIL_REASONS = ("unexpected end of data", "truncated data", "incomplete multibyte sequence")
_HANGUL = re.compile(r"[\uac00-\ud7a3\u3131-\u318e]+")
CHUNK_BYTES = 1 << 20

Chunks = Callable[[], Iterable[bytes]]  # opens the data again from its start at every call


def _line_col(chunks: Chunks, offset: int) -> str:
    line, last_newline, position = 1, -1, 0
    for chunk in chunks():
        part = chunk[: max(0, offset - position)]
        newlines = part.count(b"\n")
        if newlines:
            line += newlines
            last_newline = position + part.rfind(b"\n")
        position += len(chunk)
        if position >= offset:
            break
    return f"line {line}, column {offset - last_newline} (byte {offset})"


def _mostly_hangul(non_ascii: int, hangul: int) -> bool:
    return not non_ascii or hangul >= 0.5 * non_ascii


def _pending(decoder: codecs.IncrementalDecoder) -> int:
    """Bytes the decoder holds from earlier input (the start of a character split between chunks)."""
    try:
        return len(decoder.getstate()[0])
    except (AttributeError, TypeError, IndexError):
        return 0


@dataclass
class _Scan:
    total: int = 0  # bytes read
    error_at: int | None = None  # offset of the first byte that does not decode
    reason: str = ""
    cut_at: int | None = None  # an incomplete character at the very end starts here
    non_ascii: int = 0
    hangul: int = 0

    @property
    def usable(self) -> int:
        return self.cut_at if self.cut_at is not None else self.total


def _scan(chunks: Iterable[bytes], codec: str, count_hangul: bool = False) -> _Scan:
    """Decode everything once, keeping nothing but the verdict (and, for CP949, the Hangul share)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    scan = _Scan()
    for chunk in chunks:
        pending = _pending(decoder)
        try:
            text = decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            scan.error_at, scan.reason = scan.total - pending + exc.start, exc.reason
            return scan
        scan.total += len(chunk)
        if count_hangul and text:
            scan.non_ascii += len(text) - len(text.encode("ascii", "ignore"))
            scan.hangul += len(text) - len(_HANGUL.sub("", text))
    pending = _pending(decoder)
    try:
        decoder.decode(b"", final=True)
    except UnicodeDecodeError as exc:
        at = scan.total - pending + exc.start
        if exc.reason in _TAIL_REASONS:
            scan.cut_at = at
        else:
            scan.error_at, scan.reason = at, exc.reason
    return scan


def detect_encoding(chunks: Chunks, declared: str = "auto") -> tuple[str, int]:
    """(codec, bytes to decode) for data read through `chunks`, without holding it all.

    The byte count leaves out an incomplete character at the very end (see the module docstring). Raises
    InputProblem naming the position of the first bad byte.
    """
    if declared != "auto":
        try:
            codecs.lookup(declared)
        except LookupError:
            raise InputProblem(f"unknown encoding {declared!r} in the config") from None
        scan = _scan(chunks(), declared)
        if scan.error_at is not None:
            raise InputProblem(f"not valid {declared} ({scan.reason})", _line_col(chunks, scan.error_at))
        return declared, scan.usable
    head = next(iter(chunks()), b"")[:4]
    for bom, codec in _BOMS:
        if head.startswith(bom):
            scan = _scan(chunks(), codec)
            if scan.error_at is not None:
                raise InputProblem(
                    f"starts with a {codec} byte-order mark but is not valid {codec}", _line_col(chunks, scan.error_at)
                )
            return codec, scan.usable
    utf8 = _scan(chunks(), "utf-8")
    if utf8.error_at is None:
        return "utf-8", utf8.usable
    cp949 = _scan(chunks(), "cp949", count_hangul=True)
    if cp949.error_at is None and _mostly_hangul(cp949.non_ascii, cp949.hangul):
        return "cp949", cp949.usable
    raise InputProblem(
        "undecodable bytes: neither UTF-8 nor CP949/EUC-KR (set `encoding:` on the source if you know it)",
        _line_col(chunks, utf8.error_at),
    )


def decode_bytes(data: bytes, declared: str = "auto") -> tuple[str, str]:
    """Return (text, encoding used). Raises InputProblem naming the position of the first bad byte."""
    codec, usable = detect_encoding(lambda: (data,), declared)
    return data[:usable].decode(codec), codec


def file_chunks(path: Path, limit: int | None = None, size: int = CHUNK_BYTES) -> Iterator[bytes]:
    """The bytes of a file, `size` at a time, up to `limit` bytes."""
    remaining = limit
    with open(path, "rb") as handle:
        while remaining is None or remaining > 0:
            chunk = handle.read(size if remaining is None else min(size, remaining))
            if not chunk:
                return
            if remaining is not None:
                remaining -= len(chunk)
            yield chunk


def decoded_chunks(path: Path, codec: str, limit: int, size: int = CHUNK_BYTES) -> Iterator[str]:
    """The text of a file, decoded chunk by chunk (the codec and limit from `detect_encoding`)."""
    decoder = codecs.getincrementaldecoder(codec)("strict")
    for chunk in file_chunks(path, limit, size):
        text = decoder.decode(chunk)
        if text:
            yield text
    tail = decoder.decode(b"", final=True)
    if tail:
        yield tail


def check_text(text: str) -> None:
    """Text that decoded but is still not text: NUL bytes (a binary or truncated-with-zeros file)."""
    position = text.find("\x00")
    if position >= 0:
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        raise InputProblem("contains NUL bytes (binary or zero-filled file)", f"line {line}, column {column}")
