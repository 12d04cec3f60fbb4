"""Where a model to answer with comes from: the `--run` / `--model` / `--adapter` options of `slm ask/chat/serve`
turned into a `ModelSource`, and the system prompt it was trained with.

- `--run NAME` (with `--runs-dir`, default `runs`): that run's `export/merged/` when the export stage wrote it, else
  the train stage's base model + LoRA adapter (`fine_tuning.train.loading.load_trained`);
- `--model BASE --adapter DIR`: a base (hub id or directory) with a PEFT adapter directory; the tokenizer (and its
  chat template) is taken from the adapter directory, or from a `tokenizer/` beside it (the train stage's layout),
  else from the base;
- `--adapter DIR` alone: the base named in the adapter's `adapter_config.json` (or, for a train stage directory, the
  base it recorded);
- `--model DIR`: a merged directory (or any causal LM);
- `--model FILE.gguf`: a GGUF file, run by llama-cpp-python (`fine_tuning.serve.gguf_engine`) with the same prompts,
  stops and decoding.

Plain files only: no torch here.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from slm_forest.errors import SlmError

EXPORT_METADATA = "slm_forest.json"  # written by `slm export` into merged/: system prompt, run, stop tokens


@dataclass(frozen=True)
class ModelSource:
    """Where a model to answer with comes from (see the module docstring)."""

    kind: str  # "merged" | "adapter" | "train" | "gguf" (llama-cpp-python, `fine_tuning.serve.gguf_engine`)
    model: str  # merged dir / base path or hub id / train stage dir
    adapter: str | None = None
    tokenizer: str | None = None
    label: str = "model"  # a short name for logs and /v1/models
    run_dir: Path | None = None

    def describe(self) -> str:
        if self.kind == "train":
            return f"run train stage {self.model} (base + adapter)"
        if self.kind == "adapter":
            return f"{self.model} + adapter {self.adapter}"
        return f"{self.model}"


def _has_tokenizer(path: Path) -> bool:
    return (path / "tokenizer_config.json").is_file()


def _is_model_dir(path: Path) -> bool:
    return (path / "config.json").is_file()


def resolve_source(
    model: str | None = None,
    adapter: str | None = None,
    run: str | None = None,
    runs_dir: str | Path = "runs",
) -> ModelSource:
    """Turn the --model/--adapter/--run options into a ModelSource, or an SlmError saying what to pass."""
    if run and (model or adapter):
        raise SlmError(
            "--run cannot be combined with --model/--adapter", "pass either --run NAME or --model [--adapter]"
        )
    if run:
        run_dir = Path(runs_dir) / run
        merged = run_dir / "export" / "merged"
        train = run_dir / "train"
        if _is_model_dir(merged):
            return ModelSource("merged", str(merged), tokenizer=str(merged), label=run, run_dir=run_dir)
        from fine_tuning.train.tuned import has_tuned_weights  # torch-free

        if has_tuned_weights(train):  # an adapter, or train/model for train.method: full
            return ModelSource("train", str(train), label=run, run_dir=run_dir)
        if not run_dir.is_dir():
            raise SlmError(
                f"--run {run}: {run_dir} does not exist", f"check --runs-dir (now {runs_dir}) and the run name"
            )
        raise SlmError(
            f"--run {run}: neither {merged} nor a finished train stage in {train}",
            "run `slm train CONFIG` (and `slm export CONFIG` for a merged model) first",
        )
    if model and model.lower().endswith(".gguf"):
        if adapter:
            raise SlmError(
                f"--model {model} --adapter {adapter}: a GGUF file has the adapter merged in already",
                "drop --adapter (or pass the base model directory with --adapter)",
            )
        if not Path(model).is_file():
            raise SlmError(f"--model {model}: no such GGUF file", "pass the .gguf that `slm export` wrote")
        return ModelSource("gguf", model, label=Path(model).stem)
    if adapter:
        adapter_dir = Path(adapter)
        if not (adapter_dir / "adapter_config.json").is_file():
            raise SlmError(
                f"--adapter {adapter}: no adapter_config.json there", "point --adapter at a PEFT adapter directory"
            )
        train_dir = adapter_dir.parent
        if model is None and (train_dir / "train_summary.json").is_file() and adapter_dir.name == "adapter":
            return ModelSource("train", str(train_dir), label=train_dir.parent.name, run_dir=train_dir.parent)
        base = model or json.loads((adapter_dir / "adapter_config.json").read_text(encoding="utf-8")).get(
            "base_model_name_or_path"
        )
        if not base:
            raise SlmError(
                f"--adapter {adapter}: the adapter does not name its base model", "pass --model BASE as well"
            )
        tokenizer = next(
            (str(p) for p in (adapter_dir, adapter_dir.parent / "tokenizer") if _has_tokenizer(p)),
            str(base),
        )
        run_dir = train_dir.parent if (train_dir / "train_summary.json").is_file() else None
        return ModelSource(
            "adapter", str(base), adapter=str(adapter_dir), tokenizer=tokenizer, label=adapter_dir.name, run_dir=run_dir
        )
    if model:
        path = Path(model)
        if path.exists() and not _is_model_dir(path):
            raise SlmError(
                f"--model {model}: no config.json in that directory", "point --model at a model directory or hub id"
            )
        label = path.name if path.exists() else model
        return ModelSource("merged", model, tokenizer=model, label=label)
    raise SlmError("no model given", "pass --run RUN_NAME, --model MERGED_DIR, or --model BASE --adapter ADAPTER_DIR")


def default_system_prompt(source: ModelSource) -> str | None:
    """The system prompt the model was trained with: export metadata, else the run's build config, else the default."""
    candidates: list[Path] = []
    if source.kind == "merged":
        candidates.append(Path(source.model) / EXPORT_METADATA)
    for path in candidates:
        if path.is_file():
            data = json.loads(path.read_text(encoding="utf-8"))
            if "system_prompt" in data:
                return data["system_prompt"] or None
    if source.run_dir is not None:
        manifest = source.run_dir / "build" / "manifest.json"
        if manifest.is_file():
            config = json.loads(manifest.read_text(encoding="utf-8")).get("config", {})
            if "system_prompt" in config:
                return config["system_prompt"] or None
    from slm_forest.config import BuildConfig

    return BuildConfig().system_prompt
