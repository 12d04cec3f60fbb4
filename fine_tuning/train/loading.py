"""Loading models for training (LoRA / QLoRA / full) and trained runs for inference, without silent failures.

- `load_pretrained(cls, path)` wraps `from_pretrained` and refuses a load that leaves weights randomly initialised.
  The case that bites: `Gemma3ForCausalLM.from_pretrained(<multimodal Gemma 3 4B/12B>)` does not raise; it reports
  every key missing and returns random weights. `load_language_model_only` is the correct text-only load
  (`key_mapping` from `language_model.model.*`), `load_base` picks it when a text class meets a multimodal checkpoint.
- `training_model_class(path)`: what `slm train` trains. The data is text, so a multimodal Gemma 3 checkpoint trains
  as `Gemma3ForCausalLM` (its language model; the vision tower never loads, and flash-attention is allowed, which
  `Gemma3ForConditionalGeneration` refuses); `slm export` with `export.keep_vision: true` puts the tower back.
- `load_model_for_training(spec, path_or_id, method, dtype, device)`: LoRA loads the base in the chosen dtype;
  QLoRA loads it in 4-bit nf4 with double quantization (compute bf16 on GPU, fp32 on CPU), skipping lm_head (and,
  for a multimodal class, the vision modules by full name), then `freeze_for_adapters`: frozen, checkpointing and
  input gradients — not PEFT's `prepare_model_for_kbit_training`, whose fp32 cast of every non-quantized weight
  cost Gemma 3 12B ~5.7 GiB. The attention kernel comes from `fine_tuning.train.attention`.
- `apply_lora(model, spec, lora)`: wraps the registry's per-architecture target modules (a regex restricted to the
  language model for multimodal Gemma 3) and checks that nothing outside the language model got an adapter.
- `prepare_tokenizer(tokenizer, model)`: a pad token distinct from eos, taken from the existing embedding rows (no
  resize, so the adapter alone restores the trained model).
- `load_trained(run_stage_dir)`: base + adapter + the saved tokenizer, or the fully fine-tuned model (train/model),
  ready for generation (evaluate/export/ask). A QLoRA adapter is applied to a full-precision base (bf16 on GPU,
  fp32 on CPU), as for merging.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

DTYPE_NAMES = ("bf16", "fp16", "fp32")
# Modules that must never carry a LoRA adapter in a multimodal checkpoint.
VISION_MODULE_MARKERS = ("vision_tower", "multi_modal_projector")
# Saved multimodal Gemma 3 keys → Gemma3ForCausalLM keys (older and transformers-5 layouts); lm_head is tied.
LANGUAGE_MODEL_KEY_MAPPING = {r"^language_model\.model\.": "model.", r"^model\.language_model\.": "model."}


def torch_dtype(name: str) -> Any:
    import torch

    try:
        return {"bf16": torch.bfloat16, "fp16": torch.float16, "fp32": torch.float32}[name]
    except KeyError:
        raise SlmError(f"train.dtype: unknown dtype '{name}'", f"use one of: auto, {', '.join(DTYPE_NAMES)}") from None


def model_class_for(path_or_id: str | Path) -> type:
    """The class AutoModelForCausalLM would instantiate for this checkpoint (gemma3 → Gemma3ForConditionalGeneration)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING

    config = AutoConfig.from_pretrained(str(path_or_id))
    try:
        return MODEL_FOR_CAUSAL_LM_MAPPING[type(config)]
    except KeyError:
        raise SlmError(
            f"train.base_model: {path_or_id} (model_type '{config.model_type}') is not a causal language model",
            "pick a registry key (see fine_tuning/plan/registry.py) or a causal LM checkpoint",
        ) from None


def _is_multimodal_config(config: Any) -> bool:
    return getattr(config, "vision_config", None) is not None


def load_pretrained(model_cls: type, path_or_id: str | Path, **kwargs: Any) -> Any:
    """`model_cls.from_pretrained(path, **kwargs)` that refuses to return randomly initialised weights."""
    from transformers import AutoConfig

    source = str(path_or_id)
    if "config" not in kwargs and "key_mapping" not in kwargs:
        config = AutoConfig.from_pretrained(source)
        mapping = getattr(model_cls, "_model_mapping", None)
        if mapping is not None:  # an Auto class: check the concrete class it picks
            model_cls = mapping[type(config)]
        text_only_class = not hasattr(model_cls, "get_image_features")
        if _is_multimodal_config(config) and text_only_class:
            raise SlmError(
                f"{source} is a multimodal {config.model_type} checkpoint; {model_cls.__name__}.from_pretrained would "
                "leave every weight random without an error",
                "load it with AutoModelForCausalLM (Gemma3ForConditionalGeneration), or with "
                "fine_tuning.train.loading.load_language_model_only for a text-only model",
            )
    model, info = model_cls.from_pretrained(source, output_loading_info=True, **kwargs)
    tied = set(getattr(model, "all_tied_weights_keys", {}) or {})
    missing = [key for key in info.get("missing_keys", []) if key not in tied]
    if missing:
        raise SlmError(
            f"{source}: {model_cls.__name__} found no weights for {len(missing)} parameter(s) (e.g. {missing[0]}), "
            "which would stay randomly initialised",
            "load the checkpoint with the class it was saved as (AutoModelForCausalLM picks it from config.json)",
        )
    return model


def load_language_model_only(path: str | Path, dtype: Any = "fp32", **kwargs: Any) -> Any:
    """The text model inside a multimodal Gemma 3 checkpoint, as Gemma3ForCausalLM with the trained weights.

    `dtype` is a name (fp32/bf16/fp16) or a torch dtype; other keyword arguments go to from_pretrained
    (quantization_config, device_map, attn_implementation)."""
    from transformers import AutoConfig, Gemma3ForCausalLM
    from transformers.utils import logging as hf_logging

    config = AutoConfig.from_pretrained(str(path))
    if not _is_multimodal_config(config):
        raise SlmError(f"{path} is not a multimodal checkpoint", "load it with AutoModelForCausalLM")
    # The vision tower's weights are unexpected here by design; transformers would print a table of them.
    level = hf_logging.get_verbosity()
    hf_logging.set_verbosity_error()
    try:
        model = load_pretrained(
            Gemma3ForCausalLM,
            path,
            config=config.text_config,
            key_mapping=LANGUAGE_MODEL_KEY_MAPPING,
            dtype=torch_dtype(dtype) if isinstance(dtype, str) else dtype,
            **kwargs,
        )
    finally:
        hf_logging.set_verbosity(level)
    # transformers 5 reverts a load's key_mapping on save_pretrained: a text model saved from here (the merged export)
    # would get `language_model.model.*` keys, which Gemma3ForCausalLM.from_pretrained then loads as random weights
    # without an error. It is a text model now: save it under its own names.
    model._weight_conversions = None
    return model


def quantization_config(spec: Any, device: str, *, text_only: bool = False, quantization: str = "nf4") -> Any:
    """bitsandbytes settings for the frozen base under QLoRA (`train.quantization`): nf4 4-bit with double
    quantization, or int8 (LLM.int8, outlier threshold 6.0). `text_only`: the language model of a multimodal
    checkpoint is loaded alone, so only lm_head is skipped (the vision module names do not exist there)."""
    import torch
    from transformers import BitsAndBytesConfig

    skip = ["lm_head"] if text_only else list(dict.fromkeys([*(spec.skip_quantization_modules or []), "lm_head"]))
    if quantization == "int8":
        # bitsandbytes 0.50.2 runs the int8 matmul on CPU too (Linear8bitLt); it casts the layer inputs to fp16 to
        # quantize them (MatMul8bitLt), whatever the compute dtype.
        return BitsAndBytesConfig(load_in_8bit=True, llm_int8_threshold=6.0, llm_int8_skip_modules=skip)
    if quantization != "nf4":
        raise SlmError(f"train.quantization: unknown quantization '{quantization}'", "use nf4 or int8")
    extra: dict[str, Any] = {}
    if device == "cuda":
        # Packed 4-bit weights stored as bf16 let FSDP flatten them with the bf16 parameters (PEFT's FSDP+QLoRA
        # recipe); without FSDP it changes nothing but the storage dtype.
        extra["bnb_4bit_quant_storage"] = torch.bfloat16
    return BitsAndBytesConfig(
        load_in_4bit=True,
        bnb_4bit_quant_type="nf4",
        bnb_4bit_use_double_quant=True,
        bnb_4bit_compute_dtype=torch.bfloat16 if device == "cuda" else torch.float32,
        llm_int8_skip_modules=skip,
        **extra,
    )


def fsdp_enabled() -> bool:
    """True under `accelerate launch` with an FSDP config (it exports ACCELERATE_USE_FSDP)."""
    return os.environ.get("ACCELERATE_USE_FSDP", "").lower() in ("1", "true", "yes")


def _local_device_index() -> int:
    return int(os.environ.get("LOCAL_RANK", "0"))


def training_model_class(path_or_id: str | Path) -> type:
    """The class `slm train` trains: a multimodal Gemma 3 checkpoint trains as its language model alone
    (Gemma3ForCausalLM: the data is text, so the 0.4 B-parameter vision tower never enters GPU memory), everything
    else as the class AutoModelForCausalLM would pick."""
    from transformers import AutoConfig, Gemma3ForCausalLM

    config = AutoConfig.from_pretrained(str(path_or_id))
    if _is_multimodal_config(config) and config.model_type == "gemma3":
        return Gemma3ForCausalLM
    return model_class_for(path_or_id)


def is_text_model_of_multimodal(model_cls: type, path_or_id: str | Path) -> bool:
    """`model_cls` is a text-only class and the checkpoint is multimodal: load through the language-model mapping."""
    from transformers import AutoConfig

    return not hasattr(model_cls, "get_image_features") and _is_multimodal_config(
        AutoConfig.from_pretrained(str(path_or_id))
    )


def load_base(model_cls: type, path_or_id: str | Path, **kwargs: Any) -> Any:
    """`load_pretrained`, or the language model of a multimodal checkpoint when `model_cls` is its text class."""
    if is_text_model_of_multimodal(model_cls, path_or_id):
        return load_language_model_only(path_or_id, **kwargs)
    return load_pretrained(model_cls, path_or_id, **kwargs)


def freeze_for_adapters(model: Any, activation_checkpointing: bool) -> Any:
    """What `prepare_model_for_kbit_training` does that training needs, without its blanket fp32 cast.

    PEFT's helper casts every non-quantized parameter to fp32: for Gemma 3 12B that is 1.01 B embedding/norm
    parameters (and, multimodal, the 0.42 B vision tower) at 4 B each. They stay frozen in the load dtype here:
    the norms compute in fp32 anyway (Gemma's RMSNorm upcasts its input and weight, LayerNorm runs in fp32 under
    autocast), and the LoRA weights PEFT adds are fp32 (autocast_adapter_dtype). Input gradients are enabled so
    non-reentrant checkpointing has a graph to recompute through frozen embeddings.
    """
    for param in model.parameters():
        param.requires_grad_(False)
    if activation_checkpointing:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    model.enable_input_require_grads()
    return model


def load_model_for_training(
    spec: Any,
    path_or_id: str | Path,
    method: str,
    dtype: str,
    device: str,
    *,
    activation_checkpointing: bool = False,
    attention: Any = None,
    quantization: str = "nf4",
    master_weights: str = "fp32",
) -> Any:
    """The base model ready for training: LoRA in `dtype`; QLoRA with the frozen base in `quantization` (nf4 or
    int8, the rest kept in `dtype`); full fine-tuning with every weight trainable in `master_weights` (fp32 master
    weights under bf16/fp16 autocast, or pure bf16: `fine_tuning.train.full`).

    `attention` is a `fine_tuning.train.attention.AttentionChoice` (default: the automatic choice for the class).
    """
    from fine_tuning.train.attention import choose_attention
    from fine_tuning.train.full import full_weights_dtype, prepare_full_training

    if method not in ("lora", "qlora", "full"):
        raise SlmError(f"train.method: unknown method '{method}'", "use lora, qlora or full")
    if dtype == "fp16" and not getattr(spec, "allows_fp16", True):
        raise SlmError(
            f"train.dtype=fp16: {spec.name} overflows in fp16 (NaN loss, empty output)",
            "use train.dtype=bf16 (or auto); on a GPU without bf16 use fp32 with train.allow_fp32_fallback=true",
        )
    model_cls = training_model_class(path_or_id)
    attention = attention or choose_attention(model_cls, device)
    load_dtype = full_weights_dtype(master_weights, dtype) if method == "full" else dtype
    kwargs: dict[str, Any] = {"dtype": torch_dtype(load_dtype), "attn_implementation": attention.implementation}
    if device == "cuda" and not fsdp_enabled():
        # Straight onto this process's GPU (one whole model per process; DDP ranks use LOCAL_RANK): no CPU copy of
        # a 24 GB bf16 checkpoint first, and bitsandbytes quantizes while loading onto the target device.
        # Under FSDP accelerate places the shards itself, so no device_map.
        kwargs["device_map"] = {"": _local_device_index()}
    text_only = is_text_model_of_multimodal(model_cls, path_or_id)
    if method == "qlora":
        kwargs["quantization_config"] = quantization_config(
            spec, device, text_only=text_only, quantization=quantization
        )
    model = load_base(model_cls, path_or_id, **kwargs)
    if method == "qlora":
        # Also what FSDP needs: the frozen bf16 weights flatten with the bf16 4-bit storage (TRL skips PEFT's
        # fp32 cast for sharded QLoRA for the same reason).
        model = freeze_for_adapters(model, activation_checkpointing)
    if method == "full":
        model = prepare_full_training(model)
    return model


def lora_targets(spec: Any, lora: Any) -> list[str] | str:
    targets = lora.target_modules if lora.target_modules else spec.lora_target_modules
    if getattr(spec, "multimodal", False) and targets == "all-linear":
        raise SlmError(
            f"train.lora.target_modules=all-linear would also put adapters on the {spec.name} vision tower",
            "leave train.lora.target_modules unset (the registry restricts LoRA to the language model)",
        )
    return targets


def apply_lora(model: Any, spec: Any, lora: Any) -> Any:
    """Wrap `model` with LoRA adapters on the registry's (or `train.lora.target_modules`') modules, and train the
    modules of `train.lora.modules_to_save` in full beside them (`fine_tuning.train.trainable_modules`)."""
    from peft import LoraConfig, get_peft_model
    from peft.tuners.lora import LoraLayer

    from fine_tuning.train.trainable_modules import keep_trainable_copies_in_fp32, resolve_modules_to_save

    to_save = resolve_modules_to_save(model, list(getattr(lora, "modules_to_save", None) or []))
    config = LoraConfig(
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=lora_targets(spec, lora),
        modules_to_save=to_save.names if to_save else None,
        ensure_weight_tying=bool(to_save and to_save.tied),
        bias="none",
        task_type="CAUSAL_LM",
    )
    try:
        peft_model = get_peft_model(model, config)
    except ValueError as exc:
        raise SlmError(
            f"train.lora.target_modules: no module of {spec.name} matches ({exc})",
            "leave train.lora.target_modules unset to use the registry's list for this architecture",
        ) from None
    wrapped = [name for name, module in peft_model.named_modules() if isinstance(module, LoraLayer)]
    wrapped += to_save.names if to_save else []
    stray = [name for name in wrapped if any(marker in name for marker in VISION_MODULE_MARKERS)]
    if stray:
        raise SlmError(
            f"train.lora.target_modules / modules_to_save also match the vision tower ({stray[0]})",
            "restrict them to the language model, e.g. leave train.lora.target_modules unset",
        )
    keep_trainable_copies_in_fp32(peft_model)
    return peft_model


def prepare_tokenizer(tokenizer: Any, model: Any) -> dict[str, Any]:
    """Make sure pad exists and differs from eos, without growing the embedding matrix. Returns what was changed."""
    changes: dict[str, Any] = {}
    if tokenizer.pad_token_id is not None and tokenizer.pad_token_id != tokenizer.eos_token_id:
        return changes
    rows = model.get_input_embeddings().weight.shape[0]
    vocab = tokenizer.get_vocab()
    if "<pad>" in vocab and vocab["<pad>"] != tokenizer.eos_token_id:
        tokenizer.pad_token = "<pad>"
    elif len(tokenizer) < rows:  # e.g. Phi-2: 50295 tokens, 51200 embedding rows
        tokenizer.add_special_tokens({"pad_token": "<pad>"})
    elif tokenizer.unk_token_id is not None and tokenizer.unk_token_id != tokenizer.eos_token_id:
        tokenizer.pad_token = tokenizer.unk_token
    else:
        raise SlmError(
            "the tokenizer has no pad token distinct from eos and no free embedding row for one",
            "use a tokenizer with a pad token; pad = eos would stop the model from learning to end its answers",
        )
    changes["pad_token"] = tokenizer.pad_token
    changes["pad_token_id"] = tokenizer.pad_token_id
    return changes


def inference_dtype(trained_dtype: str, device: str) -> str:
    """Full precision for inference: the training dtype on a GPU (bf16/fp16/fp32), fp32 on a CPU."""
    if not device.startswith("cuda"):
        return "fp32"
    return trained_dtype if trained_dtype in DTYPE_NAMES else "bf16"


def read_train_summary(run_stage_dir: str | Path) -> dict[str, Any]:
    path = Path(run_stage_dir) / "train_summary.json"
    if not path.exists():
        raise SlmError(f"{path}: not found", "run `slm train CONFIG` first")
    return json.loads(path.read_text(encoding="utf-8"))


def load_trained(
    run_stage_dir: str | Path, device: str | None = None, adapter_dir: str | Path | None = None
) -> tuple[Any, Any]:
    """(model, tokenizer) of a finished train stage, eval mode, on `device`: base + LoRA adapter, or the fully
    fine-tuned model (`fine_tuning.train.tuned` says which and where). `adapter_dir`: another adapter of the same
    base instead of train/adapter (the reinforce stage's, for `export.adapter: rl`)."""
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoTokenizer

    from fine_tuning.train.tuned import load_full_model, tuned_weights

    tuned = tuned_weights(run_stage_dir)
    if adapter_dir is not None:
        if tuned.full:
            raise SlmError(f"{adapter_dir}: an adapter for a full fine-tune", "export.adapter: sft (train.method full)")
        if not (Path(adapter_dir) / "adapter_config.json").exists():
            raise SlmError(f"{adapter_dir}: no adapter", "rerun `slm reinforce CONFIG --force`")
    adapter_path = Path(adapter_dir) if adapter_dir is not None else tuned.adapter_dir
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    if tuned.full:
        return load_full_model(tuned, device)
    model_cls = getattr(transformers, tuned.model_class)
    kwargs: dict[str, Any] = {"dtype": torch_dtype(inference_dtype(tuned.dtype, device))}
    if device.startswith("cuda"):
        kwargs["device_map"] = {"": device}
    model = load_base(model_cls, tuned.base, **kwargs)
    model = PeftModel.from_pretrained(model, str(adapter_path))
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(tuned.tokenizer_dir))
    return model, tokenizer
