"""Model backends for `slm ask/chat/serve`: transformers and llama.cpp for GGUF files (`gguf_engine`), both tested,
and vLLM (not tested here: it needs vLLM and a CUDA GPU)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Protocol


class Engine(Protocol):
    """What the HTTP layer needs from a model backend."""

    def complete(self, messages: list[dict[str, str]], settings: Any) -> Any: ...

    def complete_batch(self, conversations: list[list[dict[str, str]]], settings: Any) -> list[Any]: ...

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Any: ...


class TransformersEngine:
    """Generation with transformers (`fine_tuning.serve.generate`): CPU or one GPU, streaming via TextIteratorStreamer."""

    def __init__(self, loaded: Any) -> None:
        self.loaded = loaded

    @property
    def label(self) -> str:
        return self.loaded.source.label

    @property
    def system_prompt(self) -> str | None:
        return self.loaded.system_prompt

    @system_prompt.setter
    def system_prompt(self, value: str | None) -> None:
        self.loaded.system_prompt = value

    def _messages(self, messages: list[dict[str, str]], max_new_tokens: int) -> list[dict[str, str]]:
        from fine_tuning.serve.generate import fit_history, with_system

        full = with_system(messages, self.loaded.system_prompt)
        limit = self.loaded.max_positions
        return fit_history(self.loaded.tokenizer, full, limit - max_new_tokens if limit else None)

    def complete(self, messages: list[dict[str, str]], settings: Any) -> Any:
        from fine_tuning.serve.generate import generate_batch

        convo = self._messages(messages, settings.max_new_tokens)
        return generate_batch(self.loaded.model, self.loaded.tokenizer, [convo], settings, self.loaded.stop_ids)[0]

    def complete_batch(self, conversations: list[list[dict[str, str]]], settings: Any) -> list[Any]:
        """One left-padded generate call for several conversations."""
        from fine_tuning.serve.generate import generate_batch

        convos = [self._messages(m, settings.max_new_tokens) for m in conversations]
        return generate_batch(self.loaded.model, self.loaded.tokenizer, convos, settings, self.loaded.stop_ids)

    def stream(self, messages: list[dict[str, str]], settings: Any) -> Any:
        from fine_tuning.serve.generate import stream_generate

        convo = self._messages(messages, settings.max_new_tokens)
        return stream_generate(self.loaded.model, self.loaded.tokenizer, convo, settings, self.loaded.stop_ids)


def load_engine(source: Any) -> Any:
    """The backend for a ModelSource: llama-cpp-python for a .gguf file, transformers for everything else."""
    if source.kind == "gguf":
        from fine_tuning.serve.gguf_engine import load_gguf

        return load_gguf(source.model)
    from fine_tuning.serve.generate import load_model

    return TransformersEngine(load_model(source))


def vllm_available() -> bool:
    import importlib.util

    return importlib.util.find_spec("vllm") is not None


def vllm_engine(source: Any, system_prompt: str | None) -> Engine:  # pragma: no cover - needs vLLM and a CUDA GPU
    """A vLLM backend (offline `LLM` with a LoRA request). NOT TESTED in this project: no GPU and no vLLM in CI.

    Streaming is emulated (the whole answer arrives as one chunk); use `vllm serve` for token streaming at scale.
    """
    from vllm import LLM, SamplingParams
    from vllm.lora.request import LoRARequest

    from fine_tuning.serve.generate import Completion, with_system

    if source.kind == "train":
        from fine_tuning.train.tuned import tuned_weights

        tuned = tuned_weights(source.model)  # train.method full: the model itself, no LoRA request
        base = str(tuned.model_dir) if tuned.full else tuned.base
        adapter = None if tuned.full else str(tuned.adapter_dir)
        tokenizer = str(tuned.tokenizer_dir)
    else:
        base, adapter, tokenizer = source.model, source.adapter, source.tokenizer or source.model
    llm = LLM(model=base, tokenizer=tokenizer, enable_lora=adapter is not None, dtype="bfloat16")
    lora = LoRARequest("slm", 1, adapter) if adapter else None

    class _Vllm:
        def complete(self, messages: list[dict[str, str]], settings: Any) -> Completion:
            params = SamplingParams(
                max_tokens=settings.max_new_tokens,
                temperature=settings.temperature,
                top_p=settings.top_p,
                stop=list(settings.stop) or None,
            )
            out = llm.chat(with_system(messages, system_prompt), params, lora_request=lora, use_tqdm=False)[0]
            choice = out.outputs[0]
            return Completion(
                choice.text.strip(), len(out.prompt_token_ids), len(choice.token_ids), choice.finish_reason or "stop"
            )

        def stream(self, messages: list[dict[str, str]], settings: Any) -> Any:
            completion = self.complete(messages, settings)

            class _One:
                def __init__(self) -> None:
                    self.completion = completion

                def __iter__(self) -> Iterator[str]:
                    yield completion.text

                def cancel(self) -> None:
                    return None

            return _One()

    return _Vllm()
