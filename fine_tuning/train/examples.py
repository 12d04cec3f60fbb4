"""The train stage's input: the build stage's SFTExample splits, read and checked, as chat conversations."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, sha256_file
from slm_forest.records import SFTExample


def read_examples(path: Path, *, required: bool) -> list[SFTExample]:
    """SFTExample rows of a split; a malformed row is an error naming file and line."""
    if not path.exists():
        if required:
            raise SlmError(f"{path}: not found", "run `slm build CONFIG` first")
        return []
    examples: list[SFTExample] = []
    for line_no, row in enumerate(read_jsonl(path), start=1):
        try:
            examples.append(SFTExample.model_validate(row))
        except ValueError as exc:
            first = str(exc).splitlines()[1:2] or [str(exc)]
            raise SlmError(
                f"{path}:{line_no}: not an SFTExample ({first[0].strip()})", "rerun `slm build --force`"
            ) from None
    if required and not examples:
        raise SlmError(f"{path}: no training examples", "check the build stage's counts (rejected.jsonl)")
    return examples


def conversations(examples: list[SFTExample]) -> list[tuple[str, list[dict[str, str]]]]:
    return [(ex.id, [{"role": m.role, "content": m.content} for m in ex.messages]) for ex in examples]


def corpus_texts(examples: list[SFTExample]) -> list[str]:
    return [m.content for ex in examples for m in ex.messages]


@dataclass(frozen=True)
class TrainingData:
    """The build stage's splits as the train stage uses them."""

    train_examples: list[SFTExample]
    train_convs: list[tuple[str, list[dict[str, str]]]]  # (id, messages)
    val_convs: list[tuple[str, list[dict[str, str]]]]
    hashes: list[str]  # sha256 of train.jsonl (and val.jsonl when it exists): part of the resume key

    @property
    def has_eval(self) -> bool:
        """A val split exists: evaluation, early stopping and the best checkpoint are on."""
        return bool(self.val_convs)


def read_training_data(build_dir: Path) -> TrainingData:
    """build/train.jsonl (required) and build/val.jsonl (optional: no val split, no evaluation)."""
    train_path, val_path = build_dir / "train.jsonl", build_dir / "val.jsonl"
    train_examples = read_examples(train_path, required=True)
    val_examples = read_examples(val_path, required=False)
    hashes = [sha256_file(train_path)] + ([sha256_file(val_path)] if val_path.exists() else [])
    return TrainingData(train_examples, conversations(train_examples), conversations(val_examples), hashes)
