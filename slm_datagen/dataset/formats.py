"""The dataset on disk, in every format `build.formats` asks for.

Always written (the train stage reads them): `train.jsonl`, `val.jsonl`, `test.jsonl`, one SFTExample per line
(system prompt from the config, the question, the answer; `meta` keeps the provenance). A RAFT pair's user message
is its retrieved law and then the question (`index.context.question_with_context`, the layout `--retrieve` uses).
Optional, each in its own directory with one file per split:
  alpaca/     {"instruction", "input", "output"}
  seed_text/  {"text": "### 질문: …\n\n### 답변: …"}, the seed project's prompt format
  openai/     {"messages": [...]}, OpenAI fine-tuning JSONL (no extra keys: the API rejects them)
  hf/         a `datasets.DatasetDict` (train / validation / test) saved with save_to_disk
`build.push_to_hub` uploads the chat JSONL, README.md and the charts once the build is written (hub.py).
Directories of formats no longer asked for are removed, so a stage directory never mixes two builds.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slm_datagen.dataset.rules import Finding
from slm_datagen.dataset.splits import SPLITS
from slm_datagen.index.context import DEFAULT_MAX_CHARS, ContextArticle, question_with_context
from slm_datagen.taxlaw.citations import find_citations, normalize_law_name
from slm_forest.files import write_jsonl
from slm_forest.records import ChatMessage, QAPair, SFTExample, content_id

FORMAT_DIRS = ("alpaca", "seed_text", "openai", "hf")
HF_SPLIT_NAMES = {"train": "train", "val": "validation", "test": "test"}


def pair_law(pair: QAPair) -> str | None:
    """The law a pair is about: its source statute's, else the first law it cites (rulings and decisions carry no
    law_name of their own), else None."""
    if pair.law_name:
        return normalize_law_name(pair.law_name)
    for text in (*pair.citations, pair.answer):
        cited = find_citations(text)
        if cited:
            return normalize_law_name(cited[0].law)
    return None


def to_example(pair: QAPair, system_prompt: str, flags: list[Finding] | None = None) -> SFTExample:
    """The chat example for one accepted pair; `meta` is what splits, stats, evaluation and the card read."""
    messages = [ChatMessage(role="system", content=system_prompt)] if system_prompt else []
    # RAFT pairs (distill.context): the retrieved law, then the question
    user = question_with_context(
        pair.question, _context_articles(pair), pair.meta.get("context_max_chars", DEFAULT_MAX_CHARS)
    )
    messages += [ChatMessage(role="user", content=user), ChatMessage(role="assistant", content=pair.answer)]
    meta: dict[str, Any] = {
        "pair_id": pair.id,
        "doc_id": pair.doc_id,
        "chunk_id": pair.chunk_id,
        "kind": pair.kind,
        "law_name": pair_law(pair),
        "audience": pair.audience,
        "style": pair.style,
        "citations": list(pair.citations),
        "source_citation": pair.source_citation,
        "teacher": pair.teacher,
        "model": pair.model,
        "prompt_version": pair.prompt_version,
        "usage": pair.usage.model_dump(mode="json"),
        "flags": [{"rule": f.rule, "details": f.details} for f in flags or []],
    }
    if pair.meta.get("context"):  # what the prompt showed: evaluation and the card can tell RAFT items apart
        meta["context_citations"] = list(pair.meta.get("context_citations") or [])
        meta["context_gold"] = pair.meta.get("context_gold")
    if pair.calculation is not None:  # evaluation recomputes the right amount from it (numeric accuracy to the 원)
        meta["calculation"] = pair.calculation.model_dump(mode="json")
    return SFTExample(id=content_id("sft", pair.id, system_prompt), messages=messages, meta=meta)


def _context_articles(pair: QAPair) -> list[ContextArticle]:
    return [ContextArticle.model_validate(article) for article in pair.meta.get("context") or []]


def _turns(example: SFTExample) -> tuple[str, str, str]:
    by_role = {m.role: m.content for m in example.messages}
    return by_role.get("system", ""), by_role.get("user", ""), by_role.get("assistant", "")


def alpaca_row(example: SFTExample) -> dict[str, str]:
    _, question, answer = _turns(example)
    return {"instruction": question, "input": "", "output": answer}


def seed_text_row(example: SFTExample) -> dict[str, str]:
    _, question, answer = _turns(example)
    return {"text": f"### 질문: {question}\n\n### 답변: {answer}"}


def openai_row(example: SFTExample) -> dict[str, Any]:
    return {"messages": [{"role": m.role, "content": m.content} for m in example.messages]}


_ROW_FORMATS: dict[str, Callable[[SFTExample], dict[str, Any]]] = {
    "alpaca": alpaca_row,
    "seed_text": seed_text_row,
    "openai": openai_row,
}


def write_chat(stage_dir: Path, splits: dict[str, list[SFTExample]]) -> list[Path]:
    paths = []
    for name in SPLITS:
        path = stage_dir / f"{name}.jsonl"
        write_jsonl(path, splits[name])
        paths.append(path)
    return paths


def write_row_format(stage_dir: Path, fmt: str, splits: dict[str, list[SFTExample]]) -> Path:
    directory = stage_dir / fmt
    directory.mkdir(parents=True, exist_ok=True)
    to_row = _ROW_FORMATS[fmt]
    for name in SPLITS:
        write_jsonl(directory / f"{name}.jsonl", (to_row(example) for example in splits[name]))
    return directory


def hf_features() -> Any:
    from datasets import Features, List, Value  # noqa: PLC0415 - keep `datasets` out of module import time

    text = Value("string")
    return Features(
        {
            "id": text,
            "messages": List({"role": text, "content": text}),
            "question": text,
            "answer": text,
            "pair_id": text,
            "doc_id": text,
            "kind": text,
            "law_name": text,
            "audience": text,
            "style": text,
            "citations": List(text),
            "flags": List(text),
        }
    )


def hf_row(example: SFTExample) -> dict[str, Any]:
    _, question, answer = _turns(example)
    meta = example.meta
    return {
        "id": example.id,
        "messages": [{"role": m.role, "content": m.content} for m in example.messages],
        "question": question,
        "answer": answer,
        "pair_id": meta.get("pair_id"),
        "doc_id": meta.get("doc_id"),
        "kind": meta.get("kind"),
        "law_name": meta.get("law_name"),
        "audience": meta.get("audience"),
        "style": meta.get("style"),
        "citations": list(meta.get("citations") or []),
        "flags": [flag["rule"] for flag in meta.get("flags") or []],
    }


def build_dataset_dict(splits: dict[str, list[SFTExample]]) -> Any:
    from datasets import Dataset, DatasetDict  # noqa: PLC0415

    features = hf_features()
    parts = {}
    for name in SPLITS:
        rows = [hf_row(example) for example in splits[name]]
        columns = {column: [row[column] for row in rows] for column in features}
        parts[HF_SPLIT_NAMES[name]] = Dataset.from_dict(columns, features=features)
    return DatasetDict(parts)


def write_hf(stage_dir: Path, splits: dict[str, list[SFTExample]]) -> Path:
    """save_to_disk into a temporary directory, then swap it in: a killed build never leaves half a dataset."""
    import datasets  # noqa: PLC0415

    target = stage_dir / "hf"
    dataset = build_dataset_dict(splits)
    staging = Path(tempfile.mkdtemp(prefix=".hf.", dir=stage_dir))
    bars_were_on = datasets.is_progress_bar_enabled()
    datasets.disable_progress_bars()  # the stage prints its own summary; "Saving the dataset" bars are noise
    try:
        dataset.save_to_disk(str(staging / "hf"))
        old = staging / "old"
        if target.exists():
            os.replace(target, old)
        os.replace(staging / "hf", target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        if bars_were_on:
            datasets.enable_progress_bars()
    return target


def remove_stale_formats(stage_dir: Path, formats: list[str]) -> None:
    for fmt in FORMAT_DIRS:
        if fmt not in formats and (stage_dir / fmt).is_dir():
            shutil.rmtree(stage_dir / fmt)


def write_formats(stage_dir: Path, formats: list[str], splits: dict[str, list[SFTExample]]) -> list[Path]:
    """Write the chat JSONL (always) and every requested format; returns the files/directories written."""
    remove_stale_formats(stage_dir, formats)
    outputs = write_chat(stage_dir, splits)
    for fmt in formats:
        if fmt in _ROW_FORMATS:
            outputs.append(write_row_format(stage_dir, fmt, splits))
        elif fmt == "hf":
            outputs.append(write_hf(stage_dir, splits))
    return outputs
