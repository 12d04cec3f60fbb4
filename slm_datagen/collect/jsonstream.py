"""The items of a top-level JSON array, one at a time, from text that arrives in chunks: bounded memory.

The seed's tax-law-judgment/data_main.json is one 200 MB array; `json.loads` on it holds the bytes, the text and
every parsed record at once (1.2 GB RSS). Here the standard library's own decoder (`JSONDecoder.raw_decode`) parses
one item at a time out of a sliding buffer: memory is about one chunk plus the largest item. The stdlib is enough
(no ijson): the items are small objects and raw_decode is the C scanner `json.loads` uses, so the results are
identical by construction.

Malformed or truncated input raises InputProblem with the same wording as the whole-file path (`truncated JSON
(…)` when the text stops inside a value, `not valid JSON (…)` otherwise) and the line/column in the file.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from typing import Any

from slm_datagen.collect.problems import InputProblem

_NOT_SPACE = re.compile(r"[^ \t\n\r]")
# An error this close to the end of the buffer may only mean that the item goes on in the next chunk.
_NEAR_END = 16
_DECODER = json.JSONDecoder()


class _Buffer:
    def __init__(self, chunks: Iterable[str]) -> None:
        self._chunks = iter(chunks)
        self.text = ""
        self.pos = 0
        self.eof = False
        self._line = 1  # line and column of text[0] in the whole input
        self._column = 1

    def more(self, at_least: int = 1) -> bool:
        """Drop what was consumed and append at least `at_least` characters; False at the end of the input."""
        if self.eof:
            return False
        self._compact()
        added: list[str] = []
        size = 0
        while size < at_least:
            chunk = next(self._chunks, None)
            if chunk is None:
                self.eof = True
                break
            added.append(chunk)
            size += len(chunk)
        self.text += "".join(added)
        return size > 0

    def _compact(self) -> None:
        if not self.pos:
            return
        consumed = self.text[: self.pos]
        newlines = consumed.count("\n")
        if newlines:
            self._line += newlines
            self._column = len(consumed) - consumed.rfind("\n")
        else:
            self._column += len(consumed)
        self.text = self.text[self.pos :]
        self.pos = 0

    def where(self, position: int) -> str:
        newlines = self.text.count("\n", 0, position)
        if not newlines:
            return f"line {self._line}, column {self._column + position}"
        return f"line {self._line + newlines}, column {position - self.text.rfind(chr(10), 0, position)}"

    def next_char(self) -> str | None:
        """The next character that is not whitespace (the position moves to it); None at the end."""
        while True:
            match = _NOT_SPACE.search(self.text, self.pos)
            if match:
                self.pos = match.start()
                return self.text[self.pos]
            self.pos = len(self.text)
            if not self.more():
                return None

    def fail(self, message: str, position: int, truncated: bool) -> InputProblem:
        return InputProblem(f"{'truncated' if truncated else 'not valid'} JSON ({message})", self.where(position))

    def value(self) -> Any:
        while True:
            try:
                item, end = _DECODER.raw_decode(self.text, self.pos)
            except json.JSONDecodeError as exc:
                # An unterminated string runs to the end of the text (as in shapes._load_json).
                unterminated = exc.msg.startswith("Unterminated string")
                at_end = exc.pos >= len(self.text) - _NEAR_END or unterminated
                offset = exc.pos - self.pos  # `more` moves the item to the start of the buffer
                if at_end and self.more(len(self.text) - self.pos):  # grow geometrically: one long item stays O(n)
                    continue
                position = self.pos + offset
                truncated = self.eof and (position >= len(self.text.rstrip()) or unterminated)
                raise self.fail(exc.msg, position, truncated) from None
            if end >= len(self.text) and self.more(len(self.text) - self.pos):
                continue  # a number or literal at the very end of the buffer may go on in the next chunk
            self.pos = end
            return item


def iter_json_array(chunks: Iterable[str]) -> Iterator[Any]:
    """Each item of the JSON array that `chunks` spell (a leading BOM is allowed); InputProblem when malformed."""
    buffer = _Buffer(chunks)
    buffer.more()
    if buffer.text.startswith("\ufeff"):
        buffer.pos = 1
    first = buffer.next_char()
    if first != "[":
        raise buffer.fail("Expecting '['", buffer.pos, first is None)
    buffer.pos += 1
    char = buffer.next_char()
    if char == "]":
        buffer.pos += 1
    else:
        while True:
            if char is None:
                raise buffer.fail("Expecting value", buffer.pos, True)
            yield buffer.value()
            char = buffer.next_char()
            if char == "]":
                buffer.pos += 1
                break
            if char != ",":
                raise buffer.fail("Expecting ',' delimiter", buffer.pos, char is None)
            buffer.pos += 1
            char = buffer.next_char()
            if char == "]":
                raise buffer.fail("Illegal trailing comma before end of array", buffer.pos, False)
    if buffer.next_char() is not None:
        raise buffer.fail("Extra data", buffer.pos, False)
