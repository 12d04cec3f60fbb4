"""Where a finished train stage's tuned weights are, for every stage that loads them (evaluate, export, reinforce,
ask/serve): `tuned_weights(train_dir)`.

- lora / qlora: `train/adapter/` (PEFT adapter) on the base the run trained on (the tiny base under train/, or the
  hub id / path), with `train/tokenizer/`;
- full: `train/model/`, a self-contained checkpoint (weights, config, tokenizer with the training chat template).

`load_for_comparison` gives evaluate its "base vs tuned" switch for a full run too: the same `disable_adapter()`
context PEFT models have, here swapping the base weights in and the tuned ones back (one copy on the device, both
kept in CPU memory).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

ADAPTER_DIR, TOKENIZER_DIR = "adapter", "tokenizer"


@dataclass(frozen=True)
class TunedWeights:
    """A finished train stage's weights: a full model directory, or an adapter and the base it applies to."""

    train_dir: Path
    method: str  # lora | qlora | full
    base: str  # what the run trained from (a directory or a hub id)
    model_class: str  # the transformers class trained
    dtype: str  # the training (compute) dtype
    model_dir: Path | None = None  # full: the trained model
    adapter_dir: Path | None = None  # lora/qlora: the adapter

    @property
    def full(self) -> bool:
        return self.model_dir is not None

    @property
    def tokenizer_dir(self) -> Path:
        return self.model_dir if self.model_dir is not None else self.train_dir / TOKENIZER_DIR


def _summary(train_dir: Path) -> dict[str, Any]:
    from fine_tuning.train.loading import read_train_summary

    return read_train_summary(train_dir)


def tuned_weights(train_dir: str | Path) -> TunedWeights:
    """The tuned weights of a finished train stage, or an SlmError saying what is missing."""
    from fine_tuning.train.full import MODEL_DIR

    train_dir = Path(train_dir)
    summary = _summary(train_dir)
    base = str(train_dir / summary["base_model_dir"]) if summary.get("base_model_dir") else summary["base_model_path"]
    method = summary.get("method", "lora")
    common = {"base": base, "model_class": summary["model_class"], "dtype": summary.get("dtype", "fp32")}
    if method == "full":
        model_dir = train_dir / MODEL_DIR
        if not (model_dir / "config.json").exists():
            raise SlmError(f"{model_dir}: no trained model (train.method full)", "rerun `slm train CONFIG --force`")
        return TunedWeights(train_dir, method, model_dir=model_dir, **common)
    adapter_dir = train_dir / ADAPTER_DIR
    if not (adapter_dir / "adapter_config.json").exists():
        raise SlmError(f"{adapter_dir}: no adapter", "rerun `slm train CONFIG --force`")
    return TunedWeights(train_dir, method, adapter_dir=adapter_dir, **common)


def has_tuned_weights(train_dir: str | Path) -> bool:
    """A finished train stage with its weights in place (adapter or full model)."""
    try:
        tuned_weights(train_dir)
    except SlmError:
        return False
    return True


def load_full_model(tuned: TunedWeights, device: str) -> tuple[Any, Any]:
    """(model, tokenizer) of a full fine-tune, in the inference dtype, eval mode, on `device`."""
    import transformers
    from transformers import AutoTokenizer

    from fine_tuning.train.loading import inference_dtype, load_pretrained, torch_dtype

    kwargs: dict[str, Any] = {"dtype": torch_dtype(inference_dtype(tuned.dtype, device))}
    if device.startswith("cuda"):
        kwargs["device_map"] = {"": device}
    model = load_pretrained(getattr(transformers, tuned.model_class), tuned.model_dir, **kwargs)
    model.to(device)
    model.eval()
    return model, AutoTokenizer.from_pretrained(str(tuned.model_dir))


def _base_weights_switch(model: Any, base_state: dict[str, Any]) -> Any:
    tuned_state = {key: value.detach().to("cpu", copy=True) for key, value in model.state_dict().items()}

    @contextlib.contextmanager
    def disable_adapter() -> Iterator[None]:
        import torch

        with torch.no_grad():
            model.load_state_dict(base_state, strict=True)
        try:
            yield
        finally:
            with torch.no_grad():
                model.load_state_dict(tuned_state, strict=True)

    return disable_adapter


def load_for_comparison(train_dir: str | Path, device: str | None = None) -> tuple[Any, Any]:
    """(model, tokenizer) whose `disable_adapter()` context gives the base model's answers: PEFT's own for an
    adapter, a weight swap for a full fine-tune."""
    import torch
    import transformers

    from fine_tuning.train.loading import inference_dtype, load_base, load_trained, torch_dtype

    tuned = tuned_weights(train_dir)
    if not tuned.full:
        return load_trained(train_dir, device=device)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    model, tokenizer = load_full_model(tuned, device)
    dtype = torch_dtype(inference_dtype(tuned.dtype, device))
    base = load_base(getattr(transformers, tuned.model_class), tuned.base, dtype=dtype)
    base_state = {key: value.detach().cpu() for key, value in base.state_dict().items()}
    del base
    model.disable_adapter = _base_weights_switch(model, base_state)
    return model, tokenizer


def refuse_full_for_reinforce(train_dir: str | Path) -> TunedWeights:
    """The SFT adapter reinforce continues; a full fine-tune is refused (GRPO here trains that adapter further, and
    a second full copy of the model as the policy's reference would double the memory the run was planned for)."""
    tuned = tuned_weights(train_dir)
    if tuned.full:
        raise SlmError(
            f"reinforce: {train_dir} was trained with train.method: full, and GRPO here continues a LoRA adapter",
            "train with train.method: lora or qlora for a run with reinforce, or set reinforce.enabled: false",
        )
    return tuned
