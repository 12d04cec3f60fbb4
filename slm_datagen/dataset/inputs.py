"""Reading the upstream stages' JSONL into typed records, with errors that name the file, line and field."""

from __future__ import annotations

import json
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from slm_forest.errors import SlmError

RecordT = TypeVar("RecordT", bound=BaseModel)


def load_records(path: Path, model: type[RecordT], stage: str) -> list[RecordT]:
    """Every line of `path` as a `model`; `stage` names the stage that writes the file, for the hint."""
    path = Path(path)
    if not path.is_file():
        raise SlmError(f"{path}: not found", f"run `slm {stage} CONFIG` first")
    records: list[RecordT] = []
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                data = json.loads(line)
            except json.JSONDecodeError as exc:
                raise SlmError(
                    f"{path}:{line_no}: not valid JSON ({exc.msg} at column {exc.colno})",
                    f"fix or delete that line, or rerun `slm {stage} CONFIG --force`",
                ) from None
            try:
                records.append(model.model_validate(data))
            except ValidationError as exc:
                error = exc.errors()[0]
                key = ".".join(str(part) for part in error["loc"]) or "<line>"
                raise SlmError(
                    f"{path}:{line_no}: {model.__name__} field '{key}': {error['msg']}",
                    f"fix that line, or rerun `slm {stage} CONFIG --force` to rewrite the file",
                ) from None
    return records
