"""The evaluation examples and the two models they are asked of: reading a split, prompt/answer, report groups.

Base and tuned are one PEFT model: `as_model(model, "base")` switches the adapter off, so nothing but the adapter
differs between the two columns of the report.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.records import SFTExample

MODELS = ("base", "tuned")
ALL = "all"


def read_split(path: Path, *, required: bool) -> list[SFTExample]:
    if not path.exists():
        if required:
            raise SlmError(f"{path}: not found", "run `slm build CONFIG` first")
        return []
    out: list[SFTExample] = []
    for line_no, row in enumerate(read_jsonl(path), start=1):
        try:
            out.append(SFTExample.model_validate(row))
        except ValueError:
            raise SlmError(f"{path}:{line_no}: not an SFTExample", "rerun `slm build CONFIG --force`") from None
    if required and not out:
        raise SlmError(f"{path}: no examples", "the build stage put nothing in this split; check build.test_share")
    return out


def messages_of(example: SFTExample) -> list[dict[str, str]]:
    return [{"role": m.role, "content": m.content} for m in example.messages]


def split_prompt_answer(example: SFTExample, path: str = "") -> tuple[list[dict[str, str]], str]:
    messages = messages_of(example)
    if not messages or messages[-1]["role"] != "assistant":
        raise SlmError(
            f"{path or 'test.jsonl'}: example {example.id} does not end with an assistant answer",
            "rerun `slm build --force`",
        )
    return messages[:-1], messages[-1]["content"]


def groups_of(example: SFTExample) -> list[str]:
    """The groups an example is reported in: all, its law and its source kind."""
    meta = example.meta
    return [ALL, f"law:{meta.get('law_name') or '(none)'}", f"kind:{meta.get('kind') or '(unknown)'}"]


@contextlib.contextmanager
def as_model(model: Any, which: str) -> Iterator[None]:
    """`base`: the same PEFT model with its adapter disabled; `tuned`: as trained."""
    if which == "base":
        with model.disable_adapter():
            yield
    else:
        yield
