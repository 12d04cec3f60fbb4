"""A stage's manifest: written last, so its presence means the stage finished.

It records inputs (with sha256 and row counts), outputs, counts, stats, the config fingerprint and package
versions. The runner skips a stage whose manifest is complete and whose fingerprint matches.
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from slm_forest.files import count_jsonl, sha256_file, write_json

MANIFEST_NAME = "manifest.json"

# Versions that matter for reproducing a stage; missing packages are recorded as absent, never imported.
_TRACKED_PACKAGES = (
    "slm-forest",
    "torch",
    "transformers",
    "peft",
    "trl",
    "datasets",
    "accelerate",
    "bitsandbytes",
    "tokenizers",
    "openai",
    "anthropic",
    "pydantic",
    "datasketch",
)


class FileEntry(BaseModel):
    model_config = ConfigDict(extra="forbid")

    path: str  # relative to the run directory
    sha256: str
    bytes: int
    mtime_ns: int | None = None  # with bytes: a cheap check that the file is still the one hashed
    rows: int | None = None  # for JSONL files


class Manifest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    stage: str
    run_name: str
    complete: bool = True  # False: the stage stopped early on purpose (budget) and will resume when rerun
    fingerprint: str
    config: dict[str, Any]
    inputs: list[FileEntry] = Field(default_factory=list)
    outputs: list[FileEntry] = Field(default_factory=list)
    counts: dict[str, int] = Field(default_factory=dict)
    stats: dict[str, Any] = Field(default_factory=dict)
    versions: dict[str, str] = Field(default_factory=dict)
    started_at: str
    finished_at: str
    seconds: float


def package_versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for name in _TRACKED_PACKAGES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return versions


def describe_files(paths: list[Path], run_dir: Path) -> list[FileEntry]:
    """Hash files; a directory stands for every file under it (adapters, HF datasets)."""
    entries: list[FileEntry] = []
    for path in paths:
        files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
        for file in files:
            rows = count_jsonl(file) if file.suffix == ".jsonl" else None
            try:
                rel = str(file.resolve().relative_to(run_dir.resolve()))
            except ValueError:
                rel = str(file)
            stat = file.stat()
            entries.append(
                FileEntry(path=rel, sha256=sha256_file(file), bytes=stat.st_size, mtime_ns=stat.st_mtime_ns, rows=rows)
            )
    return entries


def manifest_path(stage_dir: Path) -> Path:
    return stage_dir / MANIFEST_NAME


def read_manifest(stage_dir: Path) -> Manifest | None:
    path = manifest_path(stage_dir)
    if not path.exists():
        return None
    try:
        return Manifest.model_validate(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, json.JSONDecodeError):
        return None  # unreadable manifest = stage not finished; it will be redone


def write_manifest(stage_dir: Path, manifest: Manifest) -> Path:
    path = manifest_path(stage_dir)
    write_json(path, manifest)
    return path


# Model weights and tensor blobs can be gigabytes and are never edited by hand: they keep the cheap size+mtime check.
# Every other output (JSONL, JSON, cards, charts, tokenizers, configs) is re-hashed whenever a stage is skipped as
# finished or its outputs are read downstream, so an edit that keeps the length and restores the mtime is caught.
SIZE_MTIME_ONLY = frozenset(
    {".safetensors", ".bin", ".gguf", ".pt", ".pth", ".ckpt", ".arrow", ".parquet", ".npy", ".npz", ".onnx", ".h5"}
)


def hashed_on_check(path: Path) -> bool:
    """Whether `changed_output` re-hashes this file (True) or trusts its size and mtime (a weights file)."""
    return path.suffix.lower() not in SIZE_MTIME_ONLY


def changed_output(manifest: Manifest, run_dir: Path) -> tuple[Path, str] | None:
    """The first output that is no longer the file the manifest hashed, with what changed; None when all are intact.

    Size and mtime first (any rewrite, even of the same bytes, changes the mtime); then the sha256 of every file
    that is not a weights file (see SIZE_MTIME_ONLY).
    """
    for entry in manifest.outputs:
        path = Path(entry.path)
        path = path if path.is_absolute() else run_dir / path
        if not path.is_file():
            return path, "it is missing"
        stat = path.stat()
        if stat.st_size != entry.bytes:
            return path, f"its size changed ({entry.bytes} → {stat.st_size} bytes)"
        if entry.mtime_ns is not None and stat.st_mtime_ns != entry.mtime_ns:
            return path, "it was rewritten (modification time changed)"
        if hashed_on_check(path) and sha256_file(path) != entry.sha256:
            return path, "its contents changed (sha256 differs, same size and modification time)"
    return None


def outputs_intact(manifest: Manifest, run_dir: Path) -> bool:
    """Whether every output a manifest lists is still the file it hashed (see `changed_output`)."""
    return changed_output(manifest, run_dir) is None
