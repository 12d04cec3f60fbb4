"""`slm export`: merge the LoRA adapter into its base and package the model where people run it.

Writes into `runs/<run>/export/`:
  merged/            safetensors weights with the adapter merged in, the tokenizer with the chat template the model
                     was trained with, generation_config.json (stops at the end-of-turn token), README.md (the model
                     card with the lineage) and slm_forest.json (system prompt and stop tokens, read by `slm ask`)
  Modelfile          for Ollama: the chat template in Go template syntax and its stop tokens (`fine_tuning.export.modelfile`)
  model-<type>.gguf  only with `export.gguf` and llama.cpp's converter installed (see below)

Merging (`export.merge`): the base is loaded in full precision — fp32 on CPU, the training dtype (bf16) on a GPU — and
the adapter is applied and merged there. A QLoRA adapter is never merged into 4-bit weights (the rounding would be
baked into the model): `fine_tuning.train.loading.load_trained` loads the base unquantised, and the merge refuses a model
that still holds 4-bit layers. Before saving, the merged model's logits on a probe prompt are compared with base +
adapter; the difference is recorded in the manifest stats.

Vision tower (`export.keep_vision`): a multimodal Gemma 3 base trains as its language model alone (text data), so
merged/ holds a text model (Gemma3ForCausalLM) by default; with keep_vision: true the base's vision tower and projector
are put back around the merged language model (`merge.restore_vision_tower`, text logits checked unchanged).

GGUF (`export.gguf: true`): runs llama.cpp's `convert_hf_to_gguf.py` on merged/. It is found through the environment
variable LLAMA_CPP_CONVERT (the script), LLAMA_CPP_DIR (a llama.cpp checkout) or PATH. When it is missing the stage
fails with the install hint; with `export.gguf: false` it only says whether the converter is there. Not run in this
project's CI (llama.cpp is not installed there); the call is tested against a stand-in script.

Hub (`export.push_to_hub: user/repo`): uploads merged/ (private repository when it is created) with the token from
HF_TOKEN. Never run in tests.

Modules: merge (merge and save), card (model card and lineage), gguf (llama.cpp), modelfile (Ollama); this one
runs them in order.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from fine_tuning.export.card import CARD, dataset_lineage, read_json, render_card
from fine_tuning.export.gguf import GGUF_INSTALL_HINT, convert_to_gguf, find_gguf_converter, gguf_mode
from fine_tuning.export.merge import (
    PROCESSOR_FILES,
    copy_image_processor,
    merge_adapter,
    restore_vision_tower,
    save_merged,
)
from slm_forest.errors import SlmError
from slm_forest.files import atomic_writer
from slm_forest.pipeline import StageContext, StageResult
from slm_forest.progress import console

MERGED = "merged"


# --------------------------------------------------------------------------------------------------------- hub
def push_to_hub(folder: Path, repo_id: str) -> str:
    token = os.environ.get("HF_TOKEN", "").strip()
    if not token:
        raise SlmError(
            f"export.push_to_hub={repo_id} needs a Hugging Face token in HF_TOKEN, which is not set",
            "export HF_TOKEN=hf_… (a write token), or set export.push_to_hub to null",
        )
    from huggingface_hub import HfApi

    api = HfApi(token=token)
    api.create_repo(repo_id, private=True, exist_ok=True)
    api.upload_folder(folder_path=str(folder), repo_id=repo_id, commit_message="slm export")
    return f"https://huggingface.co/{repo_id}"


# -------------------------------------------------------------------------------------------------------- stage
def _nothing_to_merge(cfg: Any) -> StageResult:
    mode = gguf_mode(cfg.gguf)
    if mode == "required" or cfg.push_to_hub or cfg.ollama_modelfile:
        raise SlmError(
            "export.merge is false but export.gguf / push_to_hub / ollama_modelfile need the merged model",
            "set export.merge: true, or turn those off (the adapter itself is in train/adapter/)",
        )
    return StageResult(outputs=[], summary="nothing to do (export.merge is false)")


def _base_source(train_dir: Path, summary: dict[str, Any]) -> str:
    """The base checkpoint the run trained on: the tiny base under train/, or the hub id / path."""
    if summary.get("base_model_dir"):
        return str(train_dir / summary["base_model_dir"])
    return str(summary.get("base_model_path"))


def _write_merged(
    ctx: StageContext, summary: dict[str, Any], lineage: dict[str, Any], stats: dict[str, Any], notes: list[str]
) -> Any:
    """merged/ with the weights, tokenizer, slm_forest.json and (multimodal bases) the image processor files.

    Returns the chat template's family (`fine_tuning.export.modelfile`), None when it is not a known one.
    """
    from transformers.utils import logging as hf_logging

    from fine_tuning.export.modelfile import template_family
    from fine_tuning.serve.generate import END_OF_TURN_TOKENS, chat_template_of

    train_dir, merged_dir = ctx.upstream_dir("train"), ctx.stage_dir / MERGED
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    merged, tokenizer, facts = merge_adapter(train_dir, lineage.get("system_prompt"))
    if summary.get("vision_tower") and ctx.cfg.export.keep_vision:  # trained as the language model alone
        merged, facts["keep_vision"] = restore_vision_tower(merged, _base_source(train_dir, summary), merged.dtype)
    stats["merge"] = facts
    template = chat_template_of(tokenizer)
    family = template_family(template)
    vocab = tokenizer.get_vocab()
    stop_tokens = [t for t in END_OF_TURN_TOKENS if t in vocab and template and t in template]
    metadata = {
        "run_name": ctx.cfg.run_name,
        "base_model": summary.get("base_model"),
        "system_prompt": lineage.get("system_prompt"),
        "end_of_turn_token": summary.get("end_of_turn_token"),
        "stop_tokens": stop_tokens,
        "template_family": family.name if family else None,
        "dataset_fingerprint": lineage.get("fingerprint"),
    }
    save_merged(merged, tokenizer, merged_dir, metadata)
    if getattr(merged.config, "vision_config", None) is not None:
        copied = copy_image_processor(_base_source(train_dir, summary), merged_dir)
        stats["image_processor_files"] = copied
        if not copied:
            notes.append(
                f"multimodal model without image processor files ({', '.join(PROCESSOR_FILES)}): text use only"
            )
    return family


def _write_gguf(
    cfg: Any, summary: dict[str, Any], merged_dir: Path, stage_dir: Path, stats: dict[str, Any], notes: list[str]
) -> Path | None:
    """model-<type>.gguf when export.gguf asks for it and the converter is installed; otherwise a note or an error."""
    mode = gguf_mode(cfg.gguf)
    converter = find_gguf_converter()
    if mode != "off" and converter is not None:
        outtype = "bf16" if summary.get("dtype") == "bf16" else "f16"
        gguf_file = convert_to_gguf(converter, merged_dir, stage_dir / f"model-{outtype}.gguf", outtype)
        stats["gguf"] = {"file": gguf_file.name, "bytes": gguf_file.stat().st_size, "outtype": outtype}
        return gguf_file
    if mode == "required":
        raise SlmError("export.gguf is true but llama.cpp's convert_hf_to_gguf.py was not found", GGUF_INSTALL_HINT)
    if converter is None:
        notes.append(
            "GGUF skipped: export.gguf is false and llama.cpp's convert_hf_to_gguf.py is not installed "
            "(to convert: a llama.cpp checkout in LLAMA_CPP_DIR and export.gguf: true)"
        )
    else:
        notes.append("GGUF not written: llama.cpp's converter is installed; set export.gguf: true to convert")
    return None


def _write_ollama_modelfile(
    stage_dir: Path,
    family: Any,
    gguf_file: Path | None,
    system_prompt: str | None,
    stats: dict[str, Any],
    notes: list[str],
) -> Path | None:
    from fine_tuning.export.modelfile import write_modelfile

    if family is None:
        notes.append(
            "no Modelfile: the chat template is none of gemma / phi2 / chatml, so no Ollama template is known for it"
        )
        return None
    source = f"./{gguf_file.name}" if gguf_file else f"./{MERGED}"
    note = (
        ""
        if gguf_file
        else (
            "FROM a safetensors directory: `ollama create` converts Gemma/Llama/Mistral/Phi-3 and similar; for other\n"
            "architectures (e.g. Phi-2) convert to GGUF first (export.gguf: true) and point FROM at the .gguf file."
        )
    )
    stats["modelfile"] = {"family": family.name, "stop": list(family.stop), "from": source}
    return write_modelfile(stage_dir / "Modelfile", source, family, system_prompt, note=note)


def run_export(ctx: StageContext) -> StageResult:
    from fine_tuning.train.loading import read_train_summary

    cfg = ctx.cfg.export
    train_dir, stage_dir, run_dir = ctx.upstream_dir("train"), ctx.stage_dir, ctx.run_dir
    summary = read_train_summary(train_dir)
    train_manifest = read_json(train_dir / "manifest.json") or {}
    lineage = dataset_lineage(run_dir)
    metrics = read_json(run_dir / "evaluate" / "metrics.json")
    if not cfg.merge:
        return _nothing_to_merge(cfg)
    outputs: list[Path] = []
    stats: dict[str, Any] = {}
    notes: list[str] = []
    merged_dir = stage_dir / MERGED

    family = _write_merged(ctx, summary, lineage, stats, notes)
    card = render_card(
        ctx.cfg.run_name,
        summary,
        train_manifest.get("config", {}),
        lineage,
        metrics,
        stats["merge"],
        family.name if family else None,
    )
    with atomic_writer(merged_dir / CARD) as out:
        out.write(card)
    outputs.append(merged_dir)
    gguf_file = _write_gguf(cfg, summary, merged_dir, stage_dir, stats, notes)
    if gguf_file is not None:
        outputs.append(gguf_file)
    if cfg.ollama_modelfile:
        modelfile = _write_ollama_modelfile(stage_dir, family, gguf_file, lineage.get("system_prompt"), stats, notes)
        if modelfile is not None:
            outputs.append(modelfile)
    if cfg.push_to_hub:
        stats["hub_url"] = push_to_hub(merged_dir, cfg.push_to_hub)

    for note in notes:
        console.print(f"[yellow]export: {note}[/yellow]")
    stats["notes"] = notes
    size = sum(p.stat().st_size for p in merged_dir.rglob("*") if p.is_file())
    facts = stats["merge"]
    return StageResult(
        outputs=outputs,
        counts={"files": sum(1 for p in merged_dir.rglob("*") if p.is_file()), "merged_mb": round(size / 1e6)},
        stats=stats,
        summary=(
            f"merged {summary.get('base_model')} + adapter → {merged_dir} ({facts['dtype']}, probe logit diff "
            f"{facts['probe_max_abs_logit_diff']:.1e})"
            + (f", {gguf_file.name}" if gguf_file else "")
            + (", Modelfile" if "modelfile" in stats else "")
        ),
    )
