"""Bytes -> text for Korean input files: UTF-8 (with or without BOM), UTF-16 with BOM, CP949 / EUC-KR.

Choice: a strict decode-try chain, not charset-normalizer's statistical guess. Korean legal files come in exactly
these encodings (UTF-8 from the API and modern tools, CP949/EUC-KR from Windows-era exports; CP949 is a superset
of EUC-KR, so one codec covers both). A strict decode is exact: valid UTF-8 is UTF-8, and a file that is neither
is reported with the byte offset instead of being "detected" as something that silently turns 한글 into mojibake —
a guesser can name short Korean text Johab or Big5. The one place a strict chain can be fooled (single-byte Latin-1
text that happens to decode as CP949) is caught by requiring the non-ASCII characters of a CP949 decode to be
mostly Hangul.
"""

from __future__ import annotations

import codecs

from slm_datagen.collect.problems import InputProblem

_BOMS = ((codecs.BOM_UTF8, "utf-8-sig"), (codecs.BOM_UTF16_LE, "utf-16"), (codecs.BOM_UTF16_BE, "utf-16"))


def _line_col(data: bytes, offset: int) -> str:
    line = data.count(b"\n", 0, offset) + 1
    column = offset - (data.rfind(b"\n", 0, offset) + 1) + 1
    return f"line {line}, column {column} (byte {offset})"


def _mostly_hangul(text: str) -> bool:
    non_ascii = [c for c in text if ord(c) > 127]
    if not non_ascii:
        return True
    hangul = sum(1 for c in non_ascii if "\uac00" <= c <= "\ud7a3" or "\u3131" <= c <= "\u318e")
    return hangul >= 0.5 * len(non_ascii)


def decode_bytes(data: bytes, declared: str = "auto") -> tuple[str, str]:
    """Return (text, encoding used). Raises InputProblem naming the position of the first bad byte."""
    if declared != "auto":
        try:
            return data.decode(declared), declared
        except LookupError:
            raise InputProblem(f"unknown encoding {declared!r} in the config") from None
        except UnicodeDecodeError as exc:
            raise InputProblem(f"not valid {declared} ({exc.reason})", _line_col(data, exc.start)) from None
    for bom, codec in _BOMS:
        if data.startswith(bom):
            try:
                return data.decode(codec), codec
            except UnicodeDecodeError as exc:
                raise InputProblem(f"starts with a {codec} byte-order mark but is not valid {codec}",
                                   _line_col(data, exc.start)) from None
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError as exc:
        utf8_error = exc
    try:
        text = data.decode("cp949")
    except UnicodeDecodeError:
        text = None
    if text is not None and _mostly_hangul(text):
        return text, "cp949"
    raise InputProblem(
        "undecodable bytes: neither UTF-8 nor CP949/EUC-KR (set `encoding:` on the source if you know it)",
        _line_col(data, utf8_error.start),
    )


def check_text(text: str) -> None:
    """Text that decoded but is still not text: NUL bytes (a binary or truncated-with-zeros file)."""
    position = text.find("\x00")
    if position >= 0:
        line = text.count("\n", 0, position) + 1
        column = position - (text.rfind("\n", 0, position) + 1) + 1
        raise InputProblem("contains NUL bytes (binary or zero-filled file)", f"line {line}, column {column}")
