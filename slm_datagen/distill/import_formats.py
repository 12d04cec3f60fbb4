"""Reading the pair files people already have: the seed project's JSON, alpaca, chat `messages` JSONL and CSV.

    read_pair_file(path, fmt, label) -> (format used, [RawPair, ...], [SkippedRecord, ...])

| format   | records                                                        | question / answer                  |
|----------|----------------------------------------------------------------|------------------------------------|
| seed     | a JSON list (or JSONL) of {question, answer, type, source}     | question / answer                  |
| alpaca   | a JSON list or JSONL of {instruction, input, output}           | instruction (+ blank line + input) / output |
| messages | JSONL (or a JSON list) of {messages: [system?, user, assistant]} | the user turn / the assistant turn |
| csv      | a header row with question and answer (or 질문 / 답변) columns   | those columns                      |

`auto` picks csv for .csv/.tsv files and otherwise looks at the keys of the first record. Every record keeps its
1-based line (the line a JSON list element or a CSV row starts on) and the fields it had besides question/answer.

A file that cannot be read as its format is an SlmError naming `file:line`: bad JSON (the decoder's line), a record
without a question or an answer (missing, null, not text, or blank), a CSV without the needed columns, an unknown
audience value. A chat record that is well formed but is not one question and one answer (several user turns) is
not an error: it is returned as a SkippedRecord, which the stage writes to failures.jsonl.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.collect.encodings import decode_bytes
from slm_datagen.collect.problems import InputProblem
from slm_forest.errors import SlmError

FORMATS = ("seed", "alpaca", "messages", "csv")

# Values that say who an answer is for. The seed project wrote "teacher" (전문가 수준) and "student" (일반인 수준).
_AUDIENCES = {
    "expert": "expert",
    "전문가": "expert",
    "teacher": "expert",
    "layperson": "layperson",
    "lay": "layperson",
    "일반인": "layperson",
    "student": "layperson",
}
# Column names accepted for the two required CSV columns (compared lower-cased, spaces stripped).
_QUESTION_COLUMNS = ("question", "질문", "instruction", "prompt")
_ANSWER_COLUMNS = ("answer", "답변", "output", "response")


@dataclass(frozen=True)
class RawPair:
    """One record as read from a file, before it is linked to the corpus and typed."""

    question: str
    answer: str
    line: int  # 1-based line the record starts on
    audience: str | None = None  # expert / layperson when the data says so
    hints: tuple[str, ...] = ()  # what the data says about the pair's nature: its type / style / kind values
    citations: tuple[str, ...] = ()  # citations given in a field of their own
    system: str | None = None  # a chat record's system prompt
    original: dict[str, Any] = field(default_factory=dict)  # every other field, as written (id, type, source …)


@dataclass(frozen=True)
class SkippedRecord:
    line: int
    reason: str  # import_multi_turn
    detail: str


def _where(label: str, line: int | None) -> str:
    return f"{label}:{line}" if line else label


def decode_file(path: Path, label: str) -> str:
    try:
        text, _ = decode_bytes(path.read_bytes())
    except InputProblem as problem:
        raise SlmError(f"{label}: {problem}", "save the file as UTF-8") from None
    return text


# ------------------------------------------------------------------------------------------------ JSON records
def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


class _LineCounter:
    """Line numbers of increasing offsets in one pass (counting from the start each time is quadratic)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset < self.offset:
            return _line_at(self.text, offset)
        self.line += self.text.count("\n", self.offset, offset)
        self.offset = offset
        return self.line


def _json_error(label: str, text: str, exc: json.JSONDecodeError, base: int = 0) -> SlmError:
    line = _line_at(text, base + exc.pos)
    return SlmError(f"{label}:{line}: not valid JSON ({exc.msg})", "fix the JSON at that line")


def _skip_space(text: str, pos: int) -> int:
    while pos < len(text) and text[pos] in " \t\r\n\ufeff":
        pos += 1
    return pos


def _json_array(text: str, label: str, start: int) -> list[tuple[int, Any]]:
    """The elements of a top-level JSON array, each with the line it starts on (json.load gives no lines)."""
    decoder = json.JSONDecoder()
    lines = _LineCounter(text)
    out: list[tuple[int, Any]] = []
    pos = _skip_space(text, start + 1)
    if pos < len(text) and text[pos] == "]":
        return out
    while True:
        try:
            value, end = decoder.raw_decode(text, pos)
        except json.JSONDecodeError as exc:
            raise _json_error(label, text, exc) from None
        out.append((lines.at(pos), value))
        pos = _skip_space(text, end)
        if pos < len(text) and text[pos] == ",":
            pos = _skip_space(text, pos + 1)
            continue
        if pos < len(text) and text[pos] == "]":
            break
        what = "the end of the file" if pos >= len(text) else repr(text[pos])
        raise SlmError(
            f"{label}:{_line_at(text, pos)}: not valid JSON (expected ',' or ']' but found {what})",
            "fix the JSON at that line",
        )
    tail = _skip_space(text, pos + 1)
    if tail < len(text):
        raise SlmError(f"{label}:{_line_at(text, tail)}: not valid JSON (extra data after the list)", "fix the JSON")
    return out


def json_records(text: str, label: str) -> list[tuple[int, dict[str, Any]]]:
    """(line, object) for a JSON list of objects or for JSONL (one object per line, blank lines allowed)."""
    start = _skip_space(text, 0)
    if start < len(text) and text[start] == "[":
        records = _json_array(text, label, start)
    else:
        records = []
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            try:
                records.append((number, json.loads(line)))
            except json.JSONDecodeError as exc:
                raise SlmError(
                    f"{label}:{number}: not valid JSON ({exc.msg} at column {exc.colno})",
                    "fix that line (JSONL: one JSON object per line), or give the file as one JSON list",
                ) from None
    for line, value in records:
        if not isinstance(value, dict):
            raise SlmError(
                f"{label}:{line}: expected a JSON object per pair, found {type(value).__name__}",
                'each record must be an object such as {"question": …, "answer": …}',
            )
    return records


# ------------------------------------------------------------------------------------------------ fields
def required_text(record: dict[str, Any], key: str, label: str, line: int, what: str) -> str:
    value = record.get(key)
    if not isinstance(value, str) or not value.strip():
        found = "missing" if key not in record else "blank" if isinstance(value, str) else f"{type(value).__name__}"
        raise SlmError(
            f"{label}:{line}: {what} '{key}' is {found}",
            f"every record needs a non-empty text '{key}'; fix or delete that record",
        )
    return value.strip()


def audience_of(value: Any, label: str, line: int) -> str | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    audience = _AUDIENCES.get(str(value).strip().lower())
    if audience is None:
        raise SlmError(
            f"{label}:{line}: unknown audience {value!r}",
            "use expert or layperson (전문가/일반인; the seed's teacher/student also work), or leave it empty",
        )
    return audience


def _citations_field(value: Any) -> tuple[str, ...]:
    if isinstance(value, list):
        return tuple(str(v).strip() for v in value if str(v).strip())
    if isinstance(value, str):
        return tuple(part.strip() for part in value.replace("|", ";").split(";") if part.strip())
    return ()


def _hints(record: dict[str, Any]) -> tuple[str, ...]:
    values = (record.get(k) for k in ("style", "type", "kind"))
    return tuple(v.strip() for v in values if isinstance(v, str) and v.strip())


def _extras(record: dict[str, Any], used: tuple[str, ...]) -> dict[str, Any]:
    return {k: v for k, v in record.items() if k not in used and v not in (None, "")}


def _raw(record: dict[str, Any], question: str, answer: str, line: int, label: str, used: tuple[str, ...]) -> RawPair:
    audience = audience_of(record.get("audience"), label, line)
    if audience is None and isinstance(record.get("type"), str):
        audience = _AUDIENCES.get(record["type"].strip().lower())  # the seed's type: teacher / student
    return RawPair(
        question=question,
        answer=answer,
        line=line,
        audience=audience,
        hints=_hints(record),
        citations=_citations_field(record.get("citations")),
        original=_extras(record, used + ("citations",)),
    )


# ------------------------------------------------------------------------------------------------ formats
def read_seed(records: list[tuple[int, dict[str, Any]]], label: str) -> list[RawPair]:
    out = []
    for line, record in records:
        question = required_text(record, "question", label, line, "seed record")
        answer = required_text(record, "answer", label, line, "seed record")
        out.append(_raw(record, question, answer, line, label, ("question", "answer")))
    return out


def read_alpaca(records: list[tuple[int, dict[str, Any]]], label: str) -> list[RawPair]:
    out = []
    for line, record in records:
        instruction = required_text(record, "instruction", label, line, "alpaca record")
        answer = required_text(record, "output", label, line, "alpaca record")
        extra = record.get("input")
        question = f"{instruction}\n\n{extra.strip()}" if isinstance(extra, str) and extra.strip() else instruction
        raw = _raw(record, question, answer, line, label, ("instruction", "input", "output", "system"))
        system = record.get("system")
        out.append(raw if not isinstance(system, str) else _with_system(raw, system))
    return out


def _with_system(raw: RawPair, system: str) -> RawPair:
    return RawPair(**{**raw.__dict__, "system": system.strip() or None})


def _turns(record: dict[str, Any], label: str, line: int) -> list[tuple[str, str]]:
    messages = record.get("messages")
    if not isinstance(messages, list) or not messages:
        raise SlmError(f"{label}:{line}: 'messages' is missing or empty", 'each line needs {"messages": [...]}')
    turns = []
    for index, message in enumerate(messages):
        role = message.get("role") if isinstance(message, dict) else None
        content = message.get("content") if isinstance(message, dict) else None
        if role not in ("system", "user", "assistant") or not isinstance(content, str):
            raise SlmError(
                f"{label}:{line}: messages[{index}] is not a {{role: system|user|assistant, content: text}} turn",
                "fix that message",
            )
        turns.append((role, content.strip()))
    return turns


def read_messages(records: list[tuple[int, dict[str, Any]]], label: str) -> tuple[list[RawPair], list[SkippedRecord]]:
    out, skipped = [], []
    for line, record in records:
        turns = _turns(record, label, line)
        system = "\n".join(c for r, c in turns if r == "system") or None
        dialogue = [(r, c) for r, c in turns if r != "system"]
        users = sum(1 for r, _ in dialogue if r == "user")
        if users > 1:
            skipped.append(
                SkippedRecord(line, "import_multi_turn", f"{label}:{line}: {users} user turns; a pair is one exchange")
            )
            continue
        question = next((c for r, c in dialogue if r == "user"), "")
        answer = next((c for r, c in dialogue if r == "assistant"), "")
        for text, role in ((question, "user"), (answer, "assistant")):
            if not text:
                raise SlmError(
                    f"{label}:{line}: no {role} turn with text",
                    "each conversation needs one user turn (the question) and one assistant turn (the answer)",
                )
        if [r for r, _ in dialogue] != ["user", "assistant"]:
            raise SlmError(f"{label}:{line}: the assistant turn must follow the user turn", "reorder the messages")
        raw = _raw(record, question, answer, line, label, ("messages",))
        out.append(_with_system(raw, system) if system else raw)
    return out, skipped


def _column(header: dict[str, str], names: tuple[str, ...]) -> str | None:
    return next((header[n] for n in names if n in header), None)


def read_csv(text: str, label: str, delimiter: str) -> list[RawPair]:
    reader = csv.DictReader(io.StringIO(text.lstrip("\ufeff"), newline=""), delimiter=delimiter)
    columns = reader.fieldnames or []
    header = {name.strip().lower(): name for name in columns if name}
    question_col, answer_col = _column(header, _QUESTION_COLUMNS), _column(header, _ANSWER_COLUMNS)
    if question_col is None or answer_col is None:
        missing = "question" if question_col is None else "answer"
        raise SlmError(
            f"{label}:1: no '{missing}' column (columns: {', '.join(c for c in columns if c) or 'none'})",
            "the header row needs question and answer columns (질문/답변 also work); optional: audience, type, "
            "style, source, id, citations",
        )
    out = []
    line = 2  # the line the next row starts on (reader.line_num is where a row ends: cells may span lines)
    for row in reader:
        if None in row:
            raise SlmError(f"{label}:{line}: more cells than header columns", "quote cells that contain the delimiter")
        record = {(k or "").strip().lower(): (v or "").strip() for k, v in row.items()}
        if any(record.values()):
            question = required_text(record, question_col.strip().lower(), label, line, "row")
            answer = required_text(record, answer_col.strip().lower(), label, line, "row")
            used = (question_col.strip().lower(), answer_col.strip().lower())
            out.append(_raw(record, question, answer, line, label, used))
        line = reader.line_num + 1
    return out


# ------------------------------------------------------------------------------------------------ detection
def detect_format(path: Path, text: str, label: str) -> str:
    if path.suffix.lower() in (".csv", ".tsv"):
        return "csv"
    try:
        records = json_records(text, label)
    except SlmError as exc:
        if path.suffix.lower() in (".json", ".jsonl"):
            raise
        raise SlmError(exc.message, f"{exc.hint}; or set format: csv if it is a CSV file") from None
    if not records:
        raise SlmError(f"{label}: no records", "the file is empty; remove it from distill.imports or fill it")
    keys = set(records[0][1])
    for fmt, needed in (("messages", {"messages"}), ("alpaca", {"instruction", "output"}), ("seed", {"question"})):
        if needed <= keys:
            return fmt
    raise SlmError(
        f"{label}:{records[0][0]}: cannot tell the format from the keys {sorted(keys)}",
        "set distill.imports[].format to seed (question/answer), alpaca (instruction/output), messages or csv",
    )


def read_pair_file(path: Path, fmt: str, label: str) -> tuple[str, list[RawPair], list[SkippedRecord]]:
    """Parse one import file; `label` is how errors name it (the path as the config writes it)."""
    text = decode_file(path, label)
    if fmt == "auto":
        fmt = detect_format(path, text, label)
    if fmt == "csv":
        first_line = text.lstrip("\ufeff").split("\n", 1)[0]
        tab = path.suffix.lower() == ".tsv" or ("\t" in first_line and "," not in first_line)
        return fmt, read_csv(text, label, "\t" if tab else ","), []
    records = json_records(text, label)
    if fmt == "seed":
        return fmt, read_seed(records, label), []
    if fmt == "alpaca":
        return fmt, read_alpaca(records, label), []
    if fmt == "messages":
        pairs, skipped = read_messages(records, label)
        return fmt, pairs, skipped
    raise SlmError(f"{label}: unknown import format {fmt!r}", f"use auto or one of: {', '.join(FORMATS)}")
