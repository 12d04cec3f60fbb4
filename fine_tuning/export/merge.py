"""Merging the LoRA adapter into its base in full precision, checked against base + adapter on a probe prompt
(a full fine-tune is passed through as it is: there is no adapter).

Adapters with `train.lora.modules_to_save` (trained embedding / lm_head copies) merge by replacing the base module
with the trained copy; a tied pair trained once (`ensure_weight_tying`) stays tied in the merged model.

A QLoRA adapter is never merged into 4-bit weights (the rounding would be baked into the model):
`fine_tuning.train.loading.load_trained` loads the base unquantised, and `merge_adapter` refuses a model that still
holds 4-bit layers.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError
from slm_forest.files import write_json

PROBE_TOLERANCE_FP32 = 1e-3


def _four_bit_layers(model: Any) -> list[str]:
    return [name for name, module in model.named_modules() if "4bit" in type(module).__name__]


def probe_ids(tokenizer: Any, system_prompt: str | None) -> Any:
    import torch

    messages = ([{"role": "system", "content": system_prompt}] if system_prompt else []) + [
        {"role": "user", "content": "부가가치세 확정신고 기한은 언제인가요?"},
        {"role": "assistant", "content": "과세기간 종료 후 25일 이내입니다."},
    ]
    text = tokenizer.apply_chat_template(messages, tokenize=False)
    return torch.tensor([tokenizer(text, add_special_tokens=False)["input_ids"]])


def logits_of(model: Any, ids: Any) -> Any:
    import torch

    device = next(model.parameters()).device
    with torch.no_grad():
        return model(input_ids=ids.to(device), use_cache=False).logits.float().cpu()


def merge_adapter(
    train_dir: Path, system_prompt: str | None, adapter_dir: Path | None = None
) -> tuple[Any, Any, dict[str, Any]]:
    """(merged model, tokenizer, facts): base + adapter (train/adapter, or `adapter_dir`) in full precision, merged,
    checked against the unmerged.

    A full fine-tune (train.method: full) has nothing to merge: the trained model is the export."""
    from fine_tuning.train.loading import load_trained
    from fine_tuning.train.tuned import tuned_weights

    model, tokenizer = load_trained(train_dir, adapter_dir=adapter_dir)
    if tuned_weights(train_dir).full:
        dtype = str(next(model.parameters()).dtype).replace("torch.", "")
        return model, tokenizer, {"merge": "none: train.method full", "probe_max_abs_logit_diff": 0.0, "dtype": dtype}
    quantised = _four_bit_layers(model)
    if quantised:
        raise SlmError(
            f"{train_dir}: the base was loaded with 4-bit layers ({quantised[0]}); merging would bake the quantisation in",
            "load the base in bf16/fp32 for the merge (fine_tuning.train.loading.load_trained does; check train_summary.json)",
        )
    ids = probe_ids(tokenizer, system_prompt)
    before = logits_of(model, ids)
    merged = model.merge_and_unload()
    after = logits_of(merged, ids)
    diff = float((before - after).abs().max())
    dtype = str(next(merged.parameters()).dtype).replace("torch.", "")
    if dtype == "float32" and diff > PROBE_TOLERANCE_FP32:
        raise SlmError(
            f"merged logits differ from base + adapter by {diff:.2e} (tolerance {PROBE_TOLERANCE_FP32:g} in fp32)",
            "the adapter does not merge cleanly into this base; report it with train/adapter/adapter_config.json",
        )
    return merged, tokenizer, {"probe_max_abs_logit_diff": diff, "dtype": dtype, "probe_tokens": int(ids.shape[1])}


def save_merged(model: Any, tokenizer: Any, directory: Path, metadata: dict[str, Any]) -> Path:
    """save_pretrained into a temporary directory renamed into place, so a killed export leaves no half model."""
    tmp = directory.with_name(f".{directory.name}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    write_json(tmp / "slm_forest.json", metadata)
    shutil.rmtree(directory, ignore_errors=True)
    os.replace(tmp, directory)
    return directory


PROCESSOR_FILES = ("preprocessor_config.json", "processor_config.json")


def copy_image_processor(base: str, merged_dir: Path) -> list[str]:
    """Multimodal bases (Gemma 3 4B/12B) need their image processor files beside the weights to load as a pipeline."""
    copied: list[str] = []
    for name in PROCESSOR_FILES:
        local = Path(base) / name
        source: str | None = str(local) if local.is_file() else None
        if source is None and not Path(base).exists():
            try:
                from huggingface_hub import hf_hub_download

                source = hf_hub_download(base, name)
            except Exception:  # noqa: BLE001 - optional file: absent in the repo or no network/cache
                source = None
        if source is not None:
            shutil.copyfile(source, merged_dir / name)
            copied.append(name)
    return copied


def restore_vision_tower(merged_text_model: Any, base: str, dtype: Any) -> tuple[Any, dict[str, Any]]:
    """`export.keep_vision`: the multimodal checkpoint of `base` (vision tower and projector as they were) with the
    merged language model in it, checked to give the text model's logits on text.

    Training loaded only the language model of a multimodal Gemma 3 checkpoint (Gemma3ForCausalLM); this puts the
    trained weights back into `Gemma3ForConditionalGeneration`, so image input still works."""
    import torch
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_pretrained

    full = load_pretrained(AutoModelForCausalLM, base, dtype=dtype)
    language = full.model.language_model
    state = {k.removeprefix("model."): v for k, v in merged_text_model.state_dict().items() if k.startswith("model.")}
    missing, unexpected = language.load_state_dict(state, strict=False)
    if missing or unexpected:
        raise SlmError(
            f"export.keep_vision: the trained language model does not fit {base}'s "
            f"({(missing or unexpected)[0]} {'missing' if missing else 'unexpected'})",
            "set export.keep_vision: false to export the text model alone",
        )
    with torch.no_grad():
        full.lm_head.weight.copy_(merged_text_model.lm_head.weight)  # tied to the embedding in Gemma 3; kept in step
    full.eval()
    ids = torch.arange(10, 42)[None]
    diff = float((logits_of(full, ids) - logits_of(merged_text_model, ids)).abs().max())
    if diff > PROBE_TOLERANCE_FP32 and next(full.parameters()).dtype == torch.float32:
        raise SlmError(
            f"export.keep_vision: the restored multimodal model's text logits differ by {diff:.2e}",
            "set export.keep_vision: false and report it with train/train_summary.json",
        )
    return full, {"vision_tower": "restored from the base", "text_logit_diff": diff}
