"""Full fine-tuning (`train.method: full`): every weight trainable, no PEFT, for models small enough (Gemma 3 1B,
Phi-2 on an 80 GB card).

Master weights (`train.master_weights`):
- fp32: the weights and AdamW's two moment buffers are fp32; on a GPU the forward/backward runs under bf16 autocast
  (`train.dtype: bf16`; Gemma 3 never fp16) or fp16 autocast with a gradient scaler (models that allow fp16). On CPU
  there is no autocast: plain fp32. Memory per parameter: 4 (weight) + 4 (gradient) + 8 (AdamW) = 16 bytes.
- bf16: the weights are loaded in bf16 and trained in pure bf16, with no fp32 copy anywhere. torch's AdamW then keeps
  `exp_avg` and `exp_avg_sq` in the parameter's dtype (bf16, `torch.zeros_like(param)`), and the update is rounded
  to bf16 when it is added: an update smaller than half a bf16 ulp of the weight (about 0.4 % of its magnitude) is
  lost. 2 + 2 + 4 = 8 bytes per parameter — half the memory, at that precision cost. The same on CPU and GPU.

The trained model is written to `train/model/` (safetensors, tokenizer with the training chat template, config):
a self-contained checkpoint that evaluate, export (nothing to merge), ask and serve load through
`fine_tuning.train.tuned`. Checkpoints hold the whole model (model.safetensors) instead of an adapter.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

MODEL_DIR = "model"  # train/model: the fully fine-tuned model
FULL_CHECKPOINT_FILES = ("model.safetensors", "model.safetensors.index.json")


def full_weights_dtype(master_weights: str, dtype: str) -> str:
    """The dtype the weights are loaded and kept in: fp32 master weights (autocast to `dtype` on a GPU), or bf16."""
    if master_weights == "fp32":
        return "fp32"
    if master_weights == "bf16":
        if dtype == "fp16":
            raise SlmError(
                "train.master_weights=bf16 with train.dtype=fp16: bf16 weights cannot train under fp16 autocast",
                "set train.dtype: bf16 (or auto), or train.master_weights: fp32",
            )
        return "bf16"
    raise SlmError(f"train.master_weights: unknown value '{master_weights}'", "use fp32 or bf16")


def prepare_full_training(model: Any) -> Any:
    """Every parameter trainable (some checkpoints load with parts frozen); activation checkpointing is switched on
    by the Trainer (SFTConfig.activation_checkpointing), which needs no input gradients here since the embedding
    itself is trained."""
    for param in model.parameters():
        param.requires_grad_(True)
    return model


def parameter_counts(model: Any) -> tuple[int, int]:
    """(trainable, total) parameters: PEFT's count for an adapter model (it counts 4-bit packed weights right),
    else a plain count."""
    if hasattr(model, "get_nb_trainable_parameters"):
        trainable, total = model.get_nb_trainable_parameters()
        return int(trainable), int(total)
    params = list(model.parameters())
    return sum(p.numel() for p in params if p.requires_grad), sum(p.numel() for p in params)


def is_full_checkpoint(path: Path) -> bool:
    return any((path / name).exists() for name in FULL_CHECKPOINT_FILES)


def load_full_checkpoint_weights(model: Any, checkpoint: Path) -> None:
    """Load a full-model checkpoint's weights into `model` (a finished run restored without training again),
    refusing a partial match: only weights tied to another (lm_head to the embedding) may be absent from the file."""
    from transformers.modeling_utils import load_sharded_checkpoint

    if (checkpoint / "model.safetensors.index.json").exists():
        load_sharded_checkpoint(model, str(checkpoint), strict=True, prefer_safe=True)
        return
    from safetensors.torch import load_file

    state = load_file(str(checkpoint / "model.safetensors"))
    missing, unexpected = model.load_state_dict(state, strict=False)
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    missing = [key for key in missing if key not in tied]
    if missing or unexpected:
        raise SlmError(
            f"{checkpoint}: the checkpoint does not fit the model ({(missing or unexpected)[0]})",
            "delete the checkpoints directory and train again",
        )
    if tied:
        model.tie_weights()


def save_full_model(model: Any, tokenizer: Any, directory: Path) -> None:
    """The trained model and its tokenizer (with the training chat template) in one directory."""
    model.save_pretrained(str(directory), safe_serialization=True)
    tokenizer.save_pretrained(str(directory))
