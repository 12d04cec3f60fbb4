"""The stage runner: one plain function per stage, manifests written last, finished stages skipped.

A stage function has the signature `run_<stage>(ctx: StageContext) -> StageResult`. It reads its upstream stages'
files from `ctx.upstream_dir(name)`, writes its own artifacts into `ctx.stage_dir` (atomically), and returns what it
wrote. The runner hashes inputs/outputs and writes `manifest.json` last.

Fingerprint of a stage = sha256(its config section + seed + the sha256 of every upstream output). So a changed
config section or a changed upstream artifact reruns the stage and everything after it, and nothing else.
"""

from __future__ import annotations

import contextlib
import hashlib
import importlib
import json
import os
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import sweep_stale_temps
from slm_forest.manifest import (
    Manifest,
    changed_output,
    describe_files,
    package_versions,
    read_manifest,
    write_manifest,
)


@dataclass(frozen=True)
class StageSpec:
    name: str
    runner: str  # "module:function", imported only when the stage runs (keeps torch out of `slm --help`)
    upstream: tuple[str, ...]
    summary: str
    # "module:function" returning a JSON-able description of inputs from outside the run dir (e.g. dump files'
    # sizes and mtimes); it goes into the fingerprint so an edited input reruns the stage without --force.
    signature: str | None = None
    # Runs in `slm run` only when its config section says `enabled: true` (its own command always runs it).
    optional: bool = False


STAGES: dict[str, StageSpec] = {
    spec.name: spec
    for spec in (
        StageSpec(
            "collect",
            "slm_datagen.collect.stage:run_collect",
            (),
            "Read statutes and rulings into documents.",
            signature="slm_datagen.collect.stage:input_signature",
        ),
        StageSpec(
            "prepare",
            "slm_datagen.prepare.stage:run_prepare",
            ("collect",),
            "Clean, de-duplicate and chunk the documents.",
        ),
        StageSpec(
            "index", "slm_datagen.index.stage:run_index", ("prepare",), "Build the retrieval index over the chunks."
        ),
        StageSpec(
            "distill",
            "slm_datagen.distill.stage:run_distill",
            ("prepare",),
            "Ask teacher LLMs for question/answer pairs about each chunk.",
            signature="slm_datagen.distill.imports:input_signature",
        ),
        StageSpec(
            "build",
            "slm_datagen.dataset.stage:run_build",
            ("distill", "prepare", "collect"),
            "Check the pairs, split them and write the dataset.",
            signature="slm_datagen.review.decisions:build_signature",  # contamination CSVs + human decisions
        ),
        StageSpec(
            "train", "fine_tuning.train.stage:run_train", ("build",), "Fine-tune the base model with LoRA or QLoRA."
        ),
        StageSpec(
            "reinforce",
            "fine_tuning.reinforce.stage:run_reinforce",
            ("train", "build", "distill", "collect"),
            "Reinforce the tuned model with GRPO on calculation questions, rewarded by the tax calculator.",
            optional=True,
        ),
        StageSpec(
            "evaluate",
            "fine_tuning.evaluate.stage:run_evaluate",
            ("build", "train"),
            "Compare the base and the tuned model on the test split.",
            signature="slm_forest.pipeline:evaluate_signature",
        ),
        StageSpec(
            "export",
            "fine_tuning.export.stage:run_export",
            ("train",),
            "Merge the adapter and package the model (GGUF, Ollama Modelfile).",
            signature="slm_forest.pipeline:export_signature",  # the RL adapter, when there is one
        ),
    )
}
STAGE_ORDER: list[str] = list(STAGES)


@dataclass
class StageResult:
    """What a stage function returns. `outputs` are files or directories under the stage dir."""

    outputs: list[Path]
    counts: dict[str, int] = field(default_factory=dict)
    stats: dict[str, Any] = field(default_factory=dict)
    extra_inputs: list[Path] = field(default_factory=list)  # files read from outside the run dir (dumps, CSVs)
    complete: bool = True  # False: stopped on purpose (e.g. budget reached); rerunning resumes
    summary: str = ""  # one line for the end-of-run table


@dataclass
class StageContext:
    cfg: RunConfig
    name: str
    run_dir: Path
    stage_dir: Path
    upstream: dict[str, Manifest]
    options: dict[str, Any] = field(default_factory=dict)  # CLI extras: limit, dry_run, resume …

    def upstream_dir(self, name: str) -> Path:
        return self.run_dir / name

    def option(self, key: str, default: Any = None) -> Any:
        value = self.options.get(key)
        return default if value is None else value


@dataclass
class StageReport:
    name: str
    skipped: bool
    seconds: float
    counts: dict[str, int]
    complete: bool
    summary: str = ""
    manifest: Manifest | None = None
    dry_run: bool = False


def _load(target: str) -> Callable[..., Any]:
    module_name, func_name = target.split(":")
    return getattr(importlib.import_module(module_name), func_name)


# CLI options that change what a stage produces: a `--limit 20` trial must not pass for the full run later.
_OUTPUT_OPTIONS = ("limit",)


def _fingerprint(cfg: RunConfig, spec: StageSpec, upstream: dict[str, Manifest], options: dict[str, Any]) -> str:
    payload = {
        "stage": spec.name,
        "options": {k: options[k] for k in _OUTPUT_OPTIONS if options.get(k) is not None},
        "section": cfg.section_fingerprint(spec.name),
        "upstream": {name: sorted(e.sha256 for e in m.outputs) for name, m in sorted(upstream.items())},
        "external_inputs": _load(spec.signature)(cfg) if spec.signature else None,
    }
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _is_finished(stage_dir: Path) -> bool:
    manifest = read_manifest(stage_dir)
    return manifest is not None and manifest.complete


def _missing_upstream_hint(config_arg: str, spec: StageSpec, run_dir: Path) -> str:
    """The one command that works: the first unfinished stage when it is the only one missing, else `slm run`
    (which starts there and skips finished stages). Suggesting the direct upstream would only move the error."""
    needed: set[str] = set()
    todo = list(spec.upstream)
    while todo:
        name = todo.pop()
        if name not in needed:
            needed.add(name)
            todo.extend(STAGES[name].upstream)
    unfinished = [n for n in STAGE_ORDER if n in needed and not _is_finished(run_dir / n)]
    if len(unfinished) == 1:
        return f"run `slm {unfinished[0]} {config_arg}` first"
    return (
        f"run `slm run {config_arg} --to {spec.name}`: it starts at '{unfinished[0]}', the first stage not finished "
        f"({', '.join(unfinished)} are missing), and skips the finished ones"
    )


def _require_upstream(cfg: RunConfig, spec: StageSpec, run_dir: Path) -> dict[str, Manifest]:
    manifests: dict[str, Manifest] = {}
    for name in spec.upstream:
        manifest = read_manifest(run_dir / name)
        if manifest is None or not manifest.complete:
            state = "is missing" if manifest is None else "is incomplete"
            raise SlmError(
                f"stage '{spec.name}' needs '{name}', whose manifest {state} in {run_dir / name}",
                _missing_upstream_hint(cfg.source_path or "CONFIG", spec, run_dir),
            )
        changed = changed_output(manifest, run_dir)
        if changed is not None:
            path, why = changed
            raise SlmError(
                f"{path}: {why} after stage '{name}' wrote its manifest, so stage '{spec.name}' will not read it",
                f"rerun `slm {name} {cfg.source_path or 'CONFIG'} --force` to remake it (or restore the file)",
            )
        manifests[name] = manifest
    return manifests


def run_stage(
    cfg: RunConfig,
    name: str,
    *,
    force: bool = False,
    options: dict[str, Any] | None = None,
) -> StageReport:
    if name not in STAGES:
        raise SlmError(f"unknown stage '{name}'", f"stages are: {', '.join(STAGE_ORDER)}")
    spec = STAGES[name]
    run_dir = cfg.run_dir()
    stage_dir = run_dir / name
    upstream = _require_upstream(cfg, spec, run_dir)
    options = {**(options or {}), "force": force}
    fingerprint = _fingerprint(cfg, spec, upstream, options)
    ctx = StageContext(cfg, name, run_dir, stage_dir, upstream, options)
    with _stage_lock(stage_dir):
        return _run_locked(ctx, spec, fingerprint, force=force)


def _run_locked(ctx: StageContext, spec: StageSpec, fingerprint: str, *, force: bool) -> StageReport:
    cfg, name, run_dir, stage_dir, upstream = ctx.cfg, ctx.name, ctx.run_dir, ctx.stage_dir, ctx.upstream
    dry_run = bool(ctx.options.get("dry_run"))
    if _is_main_process():
        sweep_stale_temps(stage_dir)  # what a killed run left; the lock guarantees no other run is writing here
    previous = read_manifest(stage_dir)
    redo_reason = ""
    if (
        not force
        and not dry_run
        and previous is not None
        and previous.complete
        and previous.fingerprint == fingerprint
        # a stage may finish with work a plain rerun should retry (distill: transient failures, e.g. 429s, 5xx)
        and not previous.stats.get("retry_on_rerun")
    ):
        changed = changed_output(previous, run_dir)
        if changed is None:
            return StageReport(name, True, 0.0, previous.counts, True, "unchanged: skipped", previous)
        redo_reason = f"redoing: {changed[0]}: {changed[1]} after the manifest was written"

    started = time.time()
    started_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
    runner: Callable[[StageContext], StageResult] = _load(spec.runner)
    if dry_run:
        # A dry run only reports what it would do: the previous manifest and outputs stay as they were.
        result = runner(ctx)
        return StageReport(name, False, time.time() - started, result.counts, False, result.summary, None, dry_run=True)
    # The previous manifest stays until this run succeeds: a run that fails on bad input before writing anything
    # leaves the finished stage as it was. A run that dies after rewriting some outputs is caught by
    # changed_output (sizes, mtimes, hashes no longer match), so a half-replaced stage is never skipped.
    result = runner(ctx)
    seconds = time.time() - started
    summary = "; ".join(part for part in (redo_reason, result.summary) if part)

    if not _is_main_process():
        # Under torchrun/accelerate every rank runs the stage; only rank 0 records it.
        return StageReport(name, False, seconds, result.counts, result.complete, summary, None)
    inputs = [entry for m in upstream.values() for entry in m.outputs]
    if result.extra_inputs:
        inputs += describe_files(result.extra_inputs, run_dir)
    manifest = Manifest(
        stage=name,
        run_name=cfg.run_name,
        complete=result.complete,
        fingerprint=fingerprint,
        config=getattr(cfg, name).model_dump(mode="json"),
        inputs=inputs,
        outputs=describe_files(result.outputs, run_dir),
        counts=result.counts,
        stats=result.stats,
        versions=package_versions(),
        started_at=started_at,
        finished_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        seconds=round(seconds, 3),
    )
    write_manifest(stage_dir, manifest)
    return StageReport(name, False, seconds, result.counts, result.complete, summary, manifest)


@contextlib.contextmanager
def _stage_lock(stage_dir: Path) -> Iterator[None]:
    """One run per stage directory at a time: an advisory lock on the directory itself (no file left behind), which
    the OS releases when the process dies, even on SIGKILL. Under torchrun/accelerate only rank 0 takes it: the
    other ranks run the same stage with it."""
    stage_dir.mkdir(parents=True, exist_ok=True)
    if not _is_main_process():
        yield
        return
    import fcntl  # POSIX only, like the rest of the tooling (RunPod, CI, macOS)

    fd = os.open(stage_dir, os.O_RDONLY)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise SlmError(
                f"{stage_dir}: stage '{stage_dir.name}' is already running here (another slm process holds it)",
                "wait for that run to finish or stop it; two runs of one stage would overwrite each other's files",
            ) from None
        yield
    finally:
        os.close(fd)  # releases the lock


def files_signature(paths: list[str]) -> list[list[object]]:
    """Path, size and mtime of each named file (missing ones too), so an edited file changes the fingerprint."""
    listing: list[list[object]] = []
    for name in paths:
        path = Path(name)
        stat = path.stat() if path.exists() else None
        listing.append([name, stat.st_size if stat else None, stat.st_mtime_ns if stat else None])
    return listing


def contamination_files_signature(cfg: RunConfig) -> list[list[object]]:
    return files_signature(cfg.build.contamination_files)


def benchmark_files_signature(cfg: RunConfig) -> list[list[object]]:
    return files_signature(cfg.evaluate.benchmarks)


def optional_stage_signature(cfg: RunConfig, stage: str) -> list[str] | None:
    """A finished optional stage's output hashes (None without one), for a stage that reads its outputs when they
    exist although it is not a declared upstream: a new RL adapter or a rebuilt index then reruns the reader."""
    manifest = read_manifest(cfg.run_dir() / stage)
    return sorted(e.sha256 for e in manifest.outputs) if manifest is not None and manifest.complete else None


def reinforce_signature(cfg: RunConfig) -> list[str] | None:
    """evaluate and export read the RL adapter when there is one."""
    return optional_stage_signature(cfg, "reinforce")


def export_signature(cfg: RunConfig) -> list[str] | None:
    return None if cfg.export.adapter == "sft" else reinforce_signature(cfg)


def evaluate_signature(cfg: RunConfig) -> dict[str, object]:
    signature: dict[str, object] = {"benchmarks": benchmark_files_signature(cfg), "reinforce": reinforce_signature(cfg)}
    if cfg.evaluate.retrieve is not False:  # evaluate answers with the run's index when it has one
        signature["index"] = optional_stage_signature(cfg, "index")
    return signature


def _is_main_process() -> bool:
    return os.environ.get("RANK", "0") in ("", "0")


def stage_enabled(cfg: RunConfig, name: str) -> bool:
    """Whether `slm run` runs this stage: always, unless it is optional and its section is not enabled."""
    return not STAGES[name].optional or bool(getattr(cfg, name).enabled)


def stage_range(start: str | None, end: str | None) -> list[str]:
    for value, flag in ((start, "--from"), (end, "--to")):
        if value is not None and value not in STAGES:
            raise SlmError(f"{flag} {value}: unknown stage", f"stages are: {', '.join(STAGE_ORDER)}")
    first = STAGE_ORDER.index(start) if start else 0
    last = STAGE_ORDER.index(end) if end else len(STAGE_ORDER) - 1
    if first > last:
        raise SlmError(f"--from {start} comes after --to {end}", f"stage order: {' → '.join(STAGE_ORDER)}")
    return STAGE_ORDER[first : last + 1]
