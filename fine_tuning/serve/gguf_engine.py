"""Answering with a GGUF file through llama-cpp-python (`slm ask/chat/serve --model model-f16.gguf`).

Everything the transformers path decides is decided the same way here, from the GGUF file itself:
- the prompt: the chat template stored in the GGUF (`tokenizer.chat_template`), rendered by the same Jinja renderer
  `apply_chat_template` uses, with the GGUF's bos/eos token texts; tokenized by llama.cpp with special tokens parsed
  and no extra BOS (the template writes it), as the transformers path tokenizes without adding special tokens;
- the system prompt: the one the model was trained with (`slm_forest.json` of the export beside the file), else the
  build default; `--system` overrides it as for a merged model;
- stopping: the GGUF's eos id, the end-of-turn tokens its template uses (Gemma 3: `<end_of_turn>` and `<eos>`), and
  any token llama.cpp counts as end of generation; never past `max_new_tokens`; finish_reason "stop" / "length";
- decoding: temperature 0 is greedy (llama.cpp's greedy sampler: the argmax, as transformers); otherwise
  temperature + top_p with top_k 50 (transformers' default); the answer text skips special tokens and is stripped.
On CPU llama.cpp uses every core; a build with Metal or CUDA offloads all layers (`n_gpu_layers=-1`).

llama-cpp-python is optional (`pip install ".[gguf]"`); without it `--model x.gguf` is a one-line error saying so.
A `Llama` object is not thread-safe: one generation at a time (a lock), whatever `--max-concurrent` says.
"""

from __future__ import annotations

import codecs
import json
import os
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

DEFAULT_CONTEXT = 4096  # tokens of KV cache allocated; a Gemma 3 GGUF declares 131072, which would take GiBs
SAMPLING_TOP_K = 50  # transformers' GenerationConfig default, so sampling settings mean the same on both paths


def is_gguf(model: str | None) -> bool:
    return bool(model) and str(model).lower().endswith(".gguf")


def llama_cpp_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("llama_cpp") is not None


def trained_system_prompt(gguf_path: Path) -> str | None:
    """The export's slm_forest.json (merged/ beside the GGUF, or next to it), else the build stage's default."""
    from fine_tuning.serve.generate import EXPORT_METADATA

    for candidate in (gguf_path.parent / "merged" / EXPORT_METADATA, gguf_path.parent / EXPORT_METADATA):
        if candidate.is_file():
            data = json.loads(candidate.read_text(encoding="utf-8"))
            if "system_prompt" in data:
                return data["system_prompt"] or None
    from slm_forest.config import BuildConfig

    return BuildConfig().system_prompt


@dataclass
class GgufEngine:
    """A loaded GGUF with the chat template, stop tokens and system prompt read from it (module docstring)."""

    llama: Any
    path: Path
    chat_template: str
    special_tokens: dict[str, str]  # bos_token / eos_token texts for the template
    stop_ids: list[int]
    system_prompt: str | None
    context: int
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def label(self) -> str:
        return self.path.stem

    # ------------------------------------------------------------------------------------------------ prompts
    def prompt_ids(self, messages: list[dict[str, str]]) -> list[int]:
        from transformers.utils.chat_template_utils import render_jinja_template

        try:
            rendered, _ = render_jinja_template(
                [messages], chat_template=self.chat_template, add_generation_prompt=True, **self.special_tokens
            )
        except Exception as exc:  # noqa: BLE001 - a template error is the caller's input (roles not alternating)
            raise SlmError(
                f"the chat template cannot render this conversation ({exc})",
                "roles must be system?, user, assistant, user, …",
            ) from None
        return self.llama.tokenize(rendered[0].encode("utf-8"), add_bos=False, special=True)

    def conversation(self, messages: list[dict[str, str]], max_new_tokens: int) -> list[dict[str, str]]:
        """With the system prompt, oldest exchanges dropped until the prompt leaves room for the answer."""
        from fine_tuning.serve.generate import with_system

        full = with_system(messages, self.system_prompt)
        system = full[:1] if full and full[0]["role"] == "system" else []
        turns = full[len(system) :]
        while len(turns) > 1 and len(self.prompt_ids(system + turns)) > self.context - max_new_tokens:
            turns = turns[2:] if len(turns) > 2 else turns[1:]
        return system + turns

    # --------------------------------------------------------------------------------------------- generation
    def _tokens(self, prompt: list[int], settings: Any, cancel: threading.Event) -> Iterator[int]:
        """Generated token ids, stopping after a stop token (yielded) or max_new_tokens."""
        import llama_cpp

        if len(prompt) + settings.max_new_tokens > self.context:
            raise SlmError(
                f"prompt ({len(prompt)} tokens) + max_tokens ({settings.max_new_tokens}) exceed the context "
                f"({self.context} tokens)",
                "ask for fewer tokens or shorten the conversation",
            )
        sampling = (
            {"temp": settings.temperature, "top_p": settings.top_p, "top_k": SAMPLING_TOP_K}
            if settings.temperature > 0
            else {"temp": 0.0, "top_p": 1.0, "top_k": 1}
        )
        vocab = self.llama._model.vocab
        count = 0
        for token in self.llama.generate(prompt, min_p=0.0, repeat_penalty=1.0, **sampling):
            count += 1
            yield token
            done = token in self.stop_ids or llama_cpp.llama_vocab_is_eog(vocab, token)
            if done or count >= settings.max_new_tokens or cancel.is_set():
                return

    def _text(self, ids: list[int]) -> bytes:
        kept = [t for t in ids if t not in self.stop_ids]
        return self.llama.detokenize(kept, special=False) if kept else b""

    def complete(self, messages: list[dict[str, str]], settings: Any) -> Any:
        from fine_tuning.serve.generate import Completion, cut_at_stop

        prompt = self.prompt_ids(self.conversation(messages, settings.max_new_tokens))
        with self.lock:
            ids = list(self._tokens(prompt, settings, threading.Event()))
        text, hit = cut_at_stop(self._text(ids).decode("utf-8", errors="replace"), settings.stop)
        stopped = bool(ids) and (ids[-1] in self.stop_ids or hit or len(ids) < settings.max_new_tokens)
        return Completion(text.strip(), len(prompt), len(ids), "stop" if stopped else "length")

    def complete_batch(self, conversations: list[list[dict[str, str]]], settings: Any) -> list[Any]:
        return [self.complete(messages, settings) for messages in conversations]

    def stream(self, messages: list[dict[str, str]], settings: Any) -> GgufStream:
        prompt = self.prompt_ids(self.conversation(messages, settings.max_new_tokens))
        return GgufStream(self, prompt, settings)


@dataclass
class GgufStream:
    """Iterate for text pieces as they are generated (in the iterating thread); then `completion` is set."""

    engine: GgufEngine
    prompt: list[int]
    settings: Any
    completion: Any = None
    _cancel: threading.Event = field(default_factory=threading.Event)

    def _pieces(self, ids: list[int]) -> Iterator[str]:
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")  # a Hangul syllable may span tokens
        with self.engine.lock:
            for token in self.engine._tokens(self.prompt, self.settings, self._cancel):
                ids.append(token)
                if token not in self.engine.stop_ids:
                    piece = decoder.decode(self.engine.llama.detokenize([token], special=False))
                    if piece:
                        yield piece
        if tail := decoder.decode(b"", final=True):
            yield tail

    def __iter__(self) -> Iterator[str]:
        from fine_tuning.serve.generate import Completion, _hold_back_stops

        ids: list[int] = []
        holder = type("Cancel", (), {"event": self._cancel})()
        text = ""
        for piece in _hold_back_stops(self._pieces(ids), self.settings.stop, holder):
            text += piece
            yield piece
        hit = self._cancel.is_set() and bool(self.settings.stop)
        stopped = bool(ids) and (ids[-1] in self.engine.stop_ids or hit or len(ids) < self.settings.max_new_tokens)
        self.completion = Completion(text.strip(), len(self.prompt), len(ids), "stop" if stopped else "length")

    def cancel(self) -> None:
        self._cancel.set()


def _metadata_int(metadata: dict[str, str], key: str) -> int | None:
    value = metadata.get(key)
    return int(value) if value not in (None, "") and str(value).lstrip("-").isdigit() else None


def load_gguf(path: str | Path, context: int | None = None, system_prompt: str | None = None) -> GgufEngine:
    """Load a GGUF with llama-cpp-python; the chat template and stop tokens come from its metadata."""
    from fine_tuning.serve.generate import END_OF_TURN_TOKENS

    path = Path(path)
    if not path.is_file():
        raise SlmError(f"--model {path}: no such GGUF file", "pass the .gguf that `slm export` wrote (export.gguf)")
    if not llama_cpp_available():
        raise SlmError(
            f"--model {path.name}: running a GGUF needs llama-cpp-python, which is not installed",
            'pip install ".[gguf]" (builds llama.cpp, ~4 min on 2 cores), or use the merged/ directory instead',
        )
    from llama_cpp import Llama

    probe = Llama(str(path), vocab_only=True, verbose=False)
    declared = _metadata_int(probe.metadata, f"{probe.metadata.get('general.architecture')}.context_length")
    context = context or min(declared or DEFAULT_CONTEXT, DEFAULT_CONTEXT)
    threads = os.cpu_count() or 1  # llama-cpp-python's default is half the cores
    llama = Llama(str(path), n_ctx=context, n_gpu_layers=-1, n_threads=threads, n_threads_batch=threads, verbose=False)
    template = llama.metadata.get("tokenizer.chat_template")
    if not template:
        raise SlmError(f"{path}: the GGUF has no tokenizer.chat_template", "convert it again with `slm export`")
    model = llama._model
    bos, eos = _metadata_int(llama.metadata, "tokenizer.ggml.bos_token_id"), model.token_eos()
    special = {"eos_token": model.token_get_text(eos)} | ({"bos_token": model.token_get_text(bos)} if bos else {})
    stop_ids = [eos]
    for marker in END_OF_TURN_TOKENS:
        ids = llama.tokenize(marker.encode(), add_bos=False, special=True)
        if marker in template and len(ids) == 1 and ids[0] not in stop_ids:
            stop_ids.append(ids[0])
    return GgufEngine(
        llama=llama,
        path=path,
        chat_template=template,
        special_tokens=special,
        stop_ids=stop_ids,
        system_prompt=trained_system_prompt(path) if system_prompt is None else (system_prompt or None),
        context=context,
    )
