"""Answering with a tuned model: where the model comes from, how prompts are built, batched and streamed generation.

Where the model comes from (`--run`, `--model`, `--adapter`, a .gguf) is `fine_tuning.serve.source`; its names are
imported here too, for the callers that always found them here.

Prompts always go through the tokenizer's chat template with `add_generation_prompt=True`, tokenized without adding
special tokens again (the template already renders `<bos>`). Generation stops at eos and at the end-of-turn token of
the template (`<end_of_turn>` for Gemma-style templates), never runs past `max_new_tokens`, and reports why it
stopped ("stop" / "length") in OpenAI's terms. Batches are left-padded. On CPU the model runs in fp32; on a GPU in
bf16 when supported (fp32 otherwise: Gemma 3 must not run in fp16).

torch/transformers are imported inside the functions, so importing this module is cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from fine_tuning.serve.source import EXPORT_METADATA, ModelSource, default_system_prompt, resolve_source
from slm_forest.errors import SlmError

__all__ = [
    "END_OF_TURN_TOKENS",
    "EXPORT_METADATA",
    "Completion",
    "GenerationSettings",
    "LoadedModel",
    "ModelSource",
    "Stream",
    "chat_template_of",
    "default_system_prompt",
    "fit_history",
    "generate_batch",
    "load_model",
    "max_positions",
    "prompt_text",
    "resolve_source",
    "stop_token_ids",
    "stream_generate",
    "with_system",
]

# End-of-turn markers of common chat formats; each one counts when the tokenizer knows it and its template uses it.
END_OF_TURN_TOKENS = ("<end_of_turn>", "<|im_end|>", "<|end|>", "<|eot_id|>", "<|endoftext|>")


@dataclass(frozen=True)
class GenerationSettings:
    max_new_tokens: int = 256
    temperature: float = 0.0  # 0 = greedy
    top_p: float = 1.0
    stop: tuple[str, ...] = ()  # extra stop strings (cut from the answer)


@dataclass
class Completion:
    text: str
    prompt_tokens: int
    completion_tokens: int
    finish_reason: str  # "stop" | "length"


@dataclass
class LoadedModel:
    model: Any
    tokenizer: Any
    source: ModelSource
    stop_ids: list[int]
    system_prompt: str | None
    device: str
    max_positions: int | None = None


# ----------------------------------------------------------------------------------------------------- loading
def pick_device() -> str:
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


def _dtype_for(device: str) -> Any:
    import torch

    if device == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float32
    return torch.float32


def stop_token_ids(tokenizer: Any, model: Any) -> list[int]:
    """eos, the generation config's eos ids and the template's end-of-turn token, without duplicates."""
    ids: list[int] = []

    def add(value: Any) -> None:
        for item in value if isinstance(value, (list, tuple)) else [value]:
            if isinstance(item, int) and item >= 0 and item not in ids:
                ids.append(item)

    add(tokenizer.eos_token_id)
    generation_config = getattr(model, "generation_config", None)
    if generation_config is not None:
        add(generation_config.eos_token_id)
    template = chat_template_of(tokenizer) or ""
    vocab = tokenizer.get_vocab()
    for token in END_OF_TURN_TOKENS:
        if token in vocab and token in template:
            add(vocab[token])
    return ids


def chat_template_of(tokenizer: Any) -> str | None:
    template = getattr(tokenizer, "chat_template", None)
    if isinstance(template, dict):
        template = template.get("default")
    return template or None


def max_positions(model: Any) -> int | None:
    config = getattr(model, "config", None)
    for cfg in (config, getattr(config, "text_config", None)):
        value = getattr(cfg, "max_position_embeddings", None)
        if isinstance(value, int) and value > 0:
            return value
    return None


def load_model(source: ModelSource, device: str | None = None) -> LoadedModel:
    """Load the model and tokenizer a ModelSource names, in eval mode, ready for `generate_batch`/`stream_generate`."""
    from transformers import AutoTokenizer
    from transformers.utils import logging as hf_logging

    from fine_tuning.train.loading import load_pretrained, load_trained, model_class_for

    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    device = device or pick_device()
    try:
        if source.kind == "train":
            model, tokenizer = load_trained(source.model, device=device)
        else:
            model = load_pretrained(model_class_for(source.model), source.model, dtype=_dtype_for(device))
            if source.adapter:
                from peft import PeftModel

                model = PeftModel.from_pretrained(model, source.adapter)
            model.to(device)
            model.eval()
            tokenizer = AutoTokenizer.from_pretrained(source.tokenizer or source.model)
    except OSError as exc:
        raise SlmError(
            f"cannot load {source.describe()}: {str(exc).splitlines()[0]}",
            "check the path; hub ids need network access (HF_HUB_OFFLINE=1 forbids it) or a local copy",
        ) from None
    if chat_template_of(tokenizer) is None:
        raise SlmError(
            f"the tokenizer of {source.describe()} has no chat template",
            "use the tokenizer saved by `slm train` (train/tokenizer) or `slm export` (export/merged)",
        )
    if tokenizer.pad_token_id is None:
        tokenizer.pad_token = tokenizer.eos_token
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        source=source,
        stop_ids=stop_token_ids(tokenizer, model),
        system_prompt=default_system_prompt(source),
        device=device,
        max_positions=max_positions(model),
    )


# ------------------------------------------------------------------------------------------------------ prompts
def with_system(messages: list[dict[str, str]], system_prompt: str | None) -> list[dict[str, str]]:
    """Prepend the system prompt unless the conversation already has one."""
    if system_prompt and not (messages and messages[0]["role"] == "system"):
        return [{"role": "system", "content": system_prompt}, *messages]
    return list(messages)


def prompt_text(tokenizer: Any, messages: list[dict[str, str]]) -> str:
    """The chat template rendered for the next assistant turn."""
    try:
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    except Exception as exc:  # noqa: BLE001 - template errors (e.g. roles not alternating) are the caller's input
        raise SlmError(
            f"the chat template cannot render this conversation ({exc})",
            "roles must be system?, user, assistant, user, …",
        ) from None


def fit_history(tokenizer: Any, messages: list[dict[str, str]], budget: int | None) -> list[dict[str, str]]:
    """Drop the oldest user/assistant exchanges until the prompt fits in `budget` tokens (the last turn always stays)."""
    if budget is None:
        return messages
    system = [m for m in messages[:1] if m["role"] == "system"]
    turns = messages[len(system) :]
    while len(turns) > 1:
        ids = tokenizer(prompt_text(tokenizer, system + turns), add_special_tokens=False)["input_ids"]
        if len(ids) <= budget:
            break
        turns = turns[2:] if len(turns) > 2 else turns[1:]
    return system + turns


# --------------------------------------------------------------------------------------------------- generation
def _generation_kwargs(tokenizer: Any, settings: GenerationSettings, stop_ids: list[int]) -> dict[str, Any]:
    kwargs: dict[str, Any] = {
        "max_new_tokens": settings.max_new_tokens,
        "eos_token_id": stop_ids or None,
        "pad_token_id": tokenizer.pad_token_id,
    }
    if settings.temperature > 0:
        kwargs.update(do_sample=True, temperature=settings.temperature, top_p=settings.top_p)
    else:
        kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
    if settings.stop:
        kwargs.update(stop_strings=list(settings.stop), tokenizer=tokenizer)
    return kwargs


def cut_at_stop(text: str, stop: tuple[str, ...]) -> tuple[str, bool]:
    """Text before the first stop string, and whether one was found."""
    cuts = [text.find(s) for s in stop if s and s in text]
    if not cuts:
        return text, False
    return text[: min(cuts)], True


def _finish(
    tokenizer: Any, new_ids: list[int], stop_ids: list[int], settings: GenerationSettings, prompt_tokens: int
) -> Completion:
    pad = tokenizer.pad_token_id
    kept: list[int] = []
    stopped = False
    for token in new_ids:
        if token in stop_ids:
            stopped = True
            kept.append(token)
            break
        kept.append(token)
    # Left padding puts no pads inside a row's new tokens; trailing pads after eos were cut above.
    text = tokenizer.decode([t for t in kept if t not in stop_ids and t != pad], skip_special_tokens=True)
    text, hit = cut_at_stop(text, settings.stop)
    finish = "stop" if stopped or hit or len(kept) < settings.max_new_tokens else "length"
    return Completion(text.strip(), prompt_tokens, len(kept), finish)


def left_pad(rows: list[list[int]], pad_id: int) -> tuple[Any, Any]:
    """(input_ids, attention_mask) with every row right-aligned; built by hand, so the shared tokenizer's
    padding side is never changed (the server calls this from several threads)."""
    import torch

    width = max(len(r) for r in rows)
    ids = torch.full((len(rows), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if row:
            ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
            mask[i, width - len(row) :] = 1
    return ids, mask


def generate_batch(
    model: Any,
    tokenizer: Any,
    conversations: list[list[dict[str, str]]],
    settings: GenerationSettings,
    stop_ids: list[int] | None = None,
) -> list[Completion]:
    """One left-padded `generate` call for several conversations (each ends with a user turn)."""
    import torch

    if not conversations:
        return []
    stop_ids = stop_ids if stop_ids is not None else stop_token_ids(tokenizer, model)
    rows = [list(tokenizer(prompt_text(tokenizer, m), add_special_tokens=False)["input_ids"]) for m in conversations]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    ids, mask = left_pad(rows, pad)
    device = next(model.parameters()).device
    with torch.no_grad():
        output = model.generate(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            **_generation_kwargs(tokenizer, settings, stop_ids),
        )
    width = ids.shape[1]
    return [_finish(tokenizer, output[i, width:].tolist(), stop_ids, settings, len(rows[i])) for i in range(len(rows))]


class _Cancel:
    """A stopping criterion that ends generation when the consumer went away (client disconnect, Ctrl-C)."""

    def __init__(self) -> None:
        self.event = threading.Event()

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        return torch.full((input_ids.shape[0],), self.event.is_set(), dtype=torch.bool, device=input_ids.device)


@dataclass
class Stream:
    """Iterate for text pieces as they are generated; `completion` is set once the iteration has ended."""

    _pieces: Iterator[str]
    _thread: threading.Thread
    _cancel: _Cancel
    _result: dict[str, Any] = field(default_factory=dict)
    completion: Completion | None = None

    def __iter__(self) -> Iterator[str]:
        try:
            yield from self._pieces
        finally:
            self._cancel.event.set()
            self._thread.join()
            if "error" in self._result:
                raise self._result["error"]
            self.completion = self._result.get("completion")

    def cancel(self) -> None:
        self._cancel.event.set()


def stream_generate(
    model: Any,
    tokenizer: Any,
    messages: list[dict[str, str]],
    settings: GenerationSettings,
    stop_ids: list[int] | None = None,
) -> Stream:
    """Start generating in a background thread; iterate over the returned Stream for text pieces."""
    import torch
    from transformers import StoppingCriteriaList, TextIteratorStreamer

    stop_ids = stop_ids if stop_ids is not None else stop_token_ids(tokenizer, model)
    prompt = prompt_text(tokenizer, messages)
    enc = tokenizer([prompt], return_tensors="pt", add_special_tokens=False)
    device = next(model.parameters()).device
    inputs = {k: v.to(device) for k, v in enc.items() if k in ("input_ids", "attention_mask")}
    streamer = TextIteratorStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True)
    cancel = _Cancel()
    result: dict[str, Any] = {}
    kwargs = _generation_kwargs(tokenizer, settings, stop_ids)
    kwargs["stopping_criteria"] = StoppingCriteriaList([cancel])

    def work() -> None:
        try:
            with torch.no_grad():
                output = model.generate(**inputs, streamer=streamer, **kwargs)
            width = inputs["input_ids"].shape[1]
            result["completion"] = _finish(tokenizer, output[0, width:].tolist(), stop_ids, settings, width)
        except BaseException as exc:  # noqa: BLE001 - handed to the consumer thread
            result["error"] = exc
            streamer.end()

    thread = threading.Thread(target=work, name="slm-generate", daemon=True)
    thread.start()
    return Stream(_hold_back_stops(streamer, settings.stop, cancel), thread, cancel, result)


def _hold_back_stops(pieces: Any, stop: tuple[str, ...], cancel: _Cancel) -> Iterator[str]:
    """Pass pieces through, holding back enough text to cut a stop string that arrives split over several pieces."""
    if not stop:
        for piece in pieces:
            if piece:
                yield piece
        return
    hold = max(len(s) for s in stop) - 1
    buffer = ""
    for piece in pieces:
        buffer += piece
        text, hit = cut_at_stop(buffer, stop)
        if hit:
            if text:
                yield text
            cancel.event.set()
            for _ in pieces:  # drain what the generator thread still puts into the queue
                pass
            return
        if len(buffer) > hold:
            out, buffer = buffer[: len(buffer) - hold], buffer[len(buffer) - hold :]
            yield out
    if buffer:
        yield buffer
