"""`train.lora.modules_to_save`: whole modules trained beside the LoRA weights (typically the input embedding and
lm_head) and saved in the adapter — PEFT's `modules_to_save`.

Names are resolved per architecture: `embed_tokens` (aliases `embeddings`, `input_embeddings`) means the module
`get_input_embeddings()` returns, `lm_head` (alias `output_embeddings`) the one `get_output_embeddings()` returns,
by their full names (Phi-2 and Gemma 3: `model.embed_tokens` and `lm_head`); any other name must be the full name
or the last part(s) of one module of the model.

Tied embeddings (Gemma 3: `tie_word_embeddings`, lm_head *is* the embedding matrix). In peft 0.21.2, without
`ensure_weight_tying` PEFT makes two independent trainable copies: the pair is untied during training, and
`merge_and_unload` then sets `tie_word_embeddings=False` (a second vocabulary-sized matrix in the export; with only
`lm_head` listed the input embedding silently stays as it was). With `ensure_weight_tying=True` it trains one copy of
the embedding and ties lm_head to it, and the merged model stays tied. So for a tied model either name (or both)
trains the one shared matrix with `ensure_weight_tying=True`; tests/test_train_modules_to_save.py pins both facts.

Precision: the trainable copies are kept in fp32 (master weights, as for the LoRA weights PEFT adds) even when the
frozen base is bf16 — pure-bf16 AdamW updates of an embedding lose every step smaller than a bf16 ulp. Under bf16
autocast the fp32 embedding output makes the residual stream fp32 (more activation memory; `slm plan` counts it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slm_forest.errors import SlmError

INPUT_EMBEDDING_NAMES = ("embed_tokens", "embeddings", "input_embeddings")
OUTPUT_EMBEDDING_NAMES = ("lm_head", "output_embeddings")


@dataclass(frozen=True)
class ModulesToSave:
    """What PEFT is given: full module names, and whether the embedding pair is tied (ensure_weight_tying)."""

    names: list[str]
    tied: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"modules": self.names, "tied_embeddings": self.tied}


def _name_of(model: Any, module: Any) -> str | None:
    if module is None:
        return None
    return next((name for name, candidate in model.named_modules() if candidate is module), None)


def embeddings_are_tied(model: Any) -> bool:
    output = model.get_output_embeddings()
    return output is not None and output.weight is model.get_input_embeddings().weight


def _resolve_one(model: Any, requested: str, module_names: list[str]) -> str:
    if requested in INPUT_EMBEDDING_NAMES:
        found = _name_of(model, model.get_input_embeddings())
    elif requested in OUTPUT_EMBEDDING_NAMES:
        found = _name_of(model, model.get_output_embeddings())
    else:
        matches = [name for name in module_names if name == requested or name.endswith("." + requested)]
        found = matches[0] if len(matches) == 1 else None
        if len(matches) > 1:
            raise SlmError(
                f"train.lora.modules_to_save: '{requested}' matches {len(matches)} modules ({matches[0]}, …)",
                "give one module's full name, or embed_tokens / lm_head",
            )
    if found is None:
        raise SlmError(
            f"train.lora.modules_to_save: {type(model).__name__} has no module '{requested}'",
            "use embed_tokens and/or lm_head (resolved per architecture), or a module's full name",
        )
    return found


def resolve_modules_to_save(model: Any, requested: list[str]) -> ModulesToSave | None:
    """The full module names for PEFT (None when nothing was asked for); a tied pair becomes the input embedding."""
    if not requested:
        return None
    module_names = [name for name, _ in model.named_modules() if name]
    names = list(dict.fromkeys(_resolve_one(model, name, module_names) for name in requested))
    tied = embeddings_are_tied(model)
    if tied:
        embedding, head = _name_of(model, model.get_input_embeddings()), _name_of(model, model.get_output_embeddings())
        if head in names or embedding in names:
            # One shared matrix: PEFT trains the embedding's copy and ties lm_head to it (ensure_weight_tying).
            names = [embedding, *(n for n in names if n not in (embedding, head))]
    return ModulesToSave(names, tied and _name_of(model, model.get_input_embeddings()) in names)


def keep_trainable_copies_in_fp32(peft_model: Any) -> list[str]:
    """Cast PEFT's trainable copies of `modules_to_save` to fp32 (see the module docstring); returns their names.

    The tied lm_head shares the embedding copy's Parameter object, so casting the embedding casts it too."""
    import torch
    from peft.utils.other import ModulesToSaveWrapper

    cast: list[str] = []
    for name, module in peft_model.named_modules():
        if isinstance(module, ModulesToSaveWrapper):
            for copy in module.modules_to_save.values():
                if any(p.dtype in (torch.bfloat16, torch.float16) for p in copy.parameters()):
                    copy.to(torch.float32)
                    cast.append(name)
    return cast
