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


def outputs_intact(manifest: Manifest, run_dir: Path) -> bool:
    """Cheap check that the outputs a manifest lists are the files it hashed: same size and modification time.

    Any rewrite (a later run that died half-way, a hand edit) changes the mtime, so it is caught without re-hashing
    gigabytes on every `slm run`.
    """
    for entry in manifest.outputs:
        path = Path(entry.path)
        path = path if path.is_absolute() else run_dir / path
        if not path.exists():
            return False
        stat = path.stat()
        if stat.st_size != entry.bytes or (entry.mtime_ns is not None and stat.st_mtime_ns != entry.mtime_ns):
            return False
    return True
