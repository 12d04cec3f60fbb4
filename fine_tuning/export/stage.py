"""`slm export`: merge the LoRA adapter into its base and package the model where people run it.

Which adapter (`export.adapter`): `rl` the reinforce stage's (GRPO on calculation questions), `sft` the train
stage's, `auto` (default) the RL one when `slm reinforce` finished on the current SFT adapter, else SFT. The model card
and the manifest stats (`merge.adapter`) say which was merged; a new RL adapter reruns the export.

Writes into `runs/<run>/export/`:
  merged/            safetensors weights with the adapter merged in, the tokenizer with the chat template the model
                     was trained with, generation_config.json (stops at the end-of-turn token), README.md (the model
                     card with the lineage) and slm_forest.json (system prompt and stop tokens, read by `slm ask`)
  Modelfile          for Ollama: the chat template in Go template syntax and its stop tokens (`fine_tuning.export.modelfile`)
  model-<type>.gguf  with `export.gguf` (see below), for llama.cpp, Ollama, LM Studio

Merging (`export.merge`): the base is loaded in full precision — fp32 on CPU, the training dtype (bf16) on a GPU — and
the adapter is applied and merged there. A QLoRA adapter is never merged into 4-bit weights (the rounding would be
baked into the model): `fine_tuning.train.loading.load_trained` loads the base unquantised, and the merge refuses a model
that still holds 4-bit layers. Before saving, the merged model's logits on a probe prompt are compared with base +
adapter; the difference is recorded in the manifest stats.

Vision tower (`export.keep_vision`): a multimodal Gemma 3 base trains as its language model alone (text data), so
merged/ holds a text model (Gemma3ForCausalLM) by default; with keep_vision: true the base's vision tower and projector
are put back around the merged language model (`merge.restore_vision_tower`, text logits checked unchanged).

GGUF (`export.gguf: true | f16 | q8_0 | [f16, q8_0] | auto`): llama.cpp's `convert_hf_to_gguf.py` on merged/, from an
installed llama.cpp or the pinned llama-cpp-python sdist on PyPI (`fine_tuning.export.gguf`); the Modelfile then
points at the q8_0 file when there is one, else the 16-bit one. Tested for real on the tiny Gemma 3 and Phi: the
GGUF, loaded by llama-cpp-python, generates the same tokens as merged/ in transformers (tests/test_gguf.py).

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
from fine_tuning.export.gguf import (
    GGUF_INSTALL_HINT,
    check_convertible,
    convert_to_gguf,
    converter_command,
    copy_sentencepiece_model,
    find_installed_converter,
    gguf_mode,
    gguf_request,
    outtypes_for,
)
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


def choose_adapter(ctx: StageContext, notes: list[str]) -> dict[str, Any]:
    """export.adapter resolved: which adapter is merged ("rl" or "sft"), its directory, and the RL run's facts.

    auto takes the RL adapter when the reinforce stage finished on the current SFT adapter, else SFT (with a note
    saying why); rl without a usable RL adapter is an error, before anything is loaded."""
    from fine_tuning.reinforce.adapter import rl_adapter

    wanted = ctx.cfg.export.adapter
    if ctx.cfg.train.method == "full":  # the trained model is the export; validate refuses reinforce with full
        return {"which": "full", "path": "train/model", "reinforce": None}
    sft = {"which": "sft", "path": "train/adapter", "reinforce": None}
    if wanted == "sft":
        return sft
    rl = rl_adapter(ctx.run_dir)
    if rl.path is not None:
        return {"which": "rl", "path": str(rl.path.relative_to(ctx.run_dir)), "reinforce": rl.facts}
    if wanted == "rl":
        raise SlmError(
            f"export.adapter is rl but {rl.reason}",
            f"run `slm reinforce {ctx.cfg.source_path or 'CONFIG'}` first, or set export.adapter: sft (or auto)",
        )
    if rl.reason != "the reinforce stage has not finished for this run":
        notes.append(f"merged the SFT adapter: {rl.reason}")
    return sft


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
    adapter = choose_adapter(ctx, notes)
    merged, tokenizer, facts = merge_adapter(
        train_dir, lineage.get("system_prompt"), ctx.run_dir / adapter["path"] if adapter["which"] == "rl" else None
    )
    facts["adapter"] = adapter
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
    if note := copy_sentencepiece_model(train_dir, summary, merged_dir, tokenizer):  # what llama.cpp reads for Gemma
        notes.append(note)
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
) -> list[Path]:
    """model-<type>.gguf for each type export.gguf asks for (`fine_tuning.export.gguf`); otherwise a note or an error."""
    request = gguf_request(cfg.gguf)
    converter = converter_command(request.mode) if request.mode != "off" else find_installed_converter()
    if request.mode != "off" and converter is not None:
        check_convertible(merged_dir)
        files = [
            convert_to_gguf(converter, merged_dir, stage_dir / f"model-{outtype}.gguf", outtype)
            for outtype in outtypes_for(request, summary.get("dtype"))
        ]
        stats["gguf"] = [{"file": f.name, "bytes": f.stat().st_size} for f in files]
        return files
    if request.mode == "required":
        raise SlmError("export.gguf is set but llama.cpp's convert_hf_to_gguf.py could not be found", GGUF_INSTALL_HINT)
    if request.mode == "auto":
        notes.append("GGUF skipped: export.gguf is auto and no llama.cpp converter is here (true fetches it)")
    else:
        notes.append("GGUF skipped: export.gguf is false (true, f16 or q8_0 converts with llama.cpp's converter)")
    return []


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
    gguf_files = _write_gguf(cfg, summary, merged_dir, stage_dir, stats, notes)
    outputs += gguf_files
    # Ollama gets the 8-bit file when there is one (half the size, the speed a laptop wants), else the 16-bit one.
    gguf_file = next((f for f in gguf_files if "q8_0" in f.name), gguf_files[0] if gguf_files else None)
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
            (
                f"full model {summary.get('base_model')} → {merged_dir} "
                if facts["adapter"]["which"] == "full"
                else f"merged {summary.get('base_model')} + {facts['adapter']['which'].upper()} adapter → {merged_dir} "
            )
            + f"({facts['dtype']}, probe logit diff "
            f"{facts['probe_max_abs_logit_diff']:.1e})"
            + "".join(f", {f.name}" for f in gguf_files)
            + (", Modelfile" if "modelfile" in stats else "")
        ),
    )
