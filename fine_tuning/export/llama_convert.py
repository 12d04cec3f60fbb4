"""Run llama.cpp's `convert_hf_to_gguf.py` from a directory holding it, with two narrow adjustments.

    python -m fine_tuning.export.llama_convert LLAMA_CPP_DIR MODEL_DIR --outfile F --outtype f16

`LLAMA_CPP_DIR` holds `convert_hf_to_gguf.py`, `conversion/` and `gguf-py/` (a llama.cpp checkout, or what
`fine_tuning.export.gguf` unpacked from the llama-cpp-python sdist). The converter's own code is not copied or
changed; two of its functions are wrapped in this process only:

1. The chat template written to the GGUF has `{% generation %}` / `{% endgeneration %}` removed. They are a
   transformers extension marking the answer for assistant-only loss (our training templates have them); plain Jinja
   (llama-cpp-python, llama.cpp's server) does not know the tag and fails to render. Removing them changes no rendered
   text: transformers ignores them outside training.
2. A BPE tokenizer whose vocabulary hash the converter does not know is accepted as "gpt-2" when its tokenizer.json
   says the pre-tokenizer is exactly GPT-2's (ByteLevel with the GPT-2 split regex, no prefix space, no normalizer).
   The hash exists to tell pre-tokenizers apart; it cannot know a vocabulary trained on our corpus (the tiny Phi's),
   whose pre-tokenizer is nevertheless GPT-2's. Any other pre-tokenizer is refused as before. The tests check that
   llama.cpp then tokenizes and generates exactly as transformers does.
3. On the SentencePiece path (Gemma), the tokens tokenizer.json lists as special added tokens are typed CONTROL, as
   the converter does for those it finds in tokenizer_config.json's `added_tokens_decoder` — which transformers 5 no
   longer writes. Left USER_DEFINED, llama.cpp reads `<start_of_turn>` in a prompt as plain text.
4. Gemma 3: which layers use sliding-window attention is written per layer from config.json's `layer_types`
   (`gemma3.attention.sliding_window_pattern`, the key llama.cpp reads, which the converter writes for Cohere 2 and
   EXAONE). Without it llama.cpp assumes the released checkpoints' pattern (every 6th layer global); the tiny Gemma 3
   alternates 1:1, and its GGUF then computed other logits than transformers (up to 0.26 at position 65).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys
from pathlib import Path
from typing import Any

_GENERATION_TAG = re.compile(r"\{%-?\s*(?:end)?generation\s*-?%\}")


def strip_generation_markers(template: Any) -> Any:
    if isinstance(template, str):
        return _GENERATION_TAG.sub("", template)
    if isinstance(template, list):  # named templates: [{"name", "template"}]
        return [{**t, "template": strip_generation_markers(t.get("template"))} for t in template]
    return template


def has_gpt2_pretokenizer(model_dir: Path) -> bool:
    """tokenizer.json declares GPT-2's byte-level pre-tokenization and nothing else before it."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return False
    spec = json.loads(path.read_text(encoding="utf-8"))
    pre = spec.get("pre_tokenizer") or {}
    return (
        spec.get("normalizer") is None
        and (spec.get("model") or {}).get("type") == "BPE"
        and pre.get("type") == "ByteLevel"
        and pre.get("use_regex", True) is True
        and pre.get("add_prefix_space") is False
    )


def special_added_tokens(model_dir: Path) -> list[int]:
    """Ids of the added tokens tokenizer.json marks special (`<start_of_turn>`, `<eos>`, …)."""
    path = Path(model_dir) / "tokenizer.json"
    if not path.is_file():
        return []
    spec = json.loads(path.read_text(encoding="utf-8"))
    return [int(t["id"]) for t in spec.get("added_tokens") or [] if t.get("special")]


def _wrap(base: Any, gguf: Any, logger: Any) -> None:
    original_pre = base.TextModel.get_vocab_base_pre

    def get_vocab_base_pre(self: Any, tokenizer: Any) -> str:
        try:
            return original_pre(self, tokenizer)
        except NotImplementedError:
            if not has_gpt2_pretokenizer(self.dir_model):
                raise
            logger.warning("vocabulary hash unknown; tokenizer.json declares GPT-2's pre-tokenizer: using 'gpt-2'")
            return "gpt-2"

    base.TextModel.get_vocab_base_pre = get_vocab_base_pre
    original_spm = base.TextModel._create_vocab_sentencepiece

    def create_vocab_sentencepiece(self: Any) -> Any:
        tokens, scores, toktypes = original_spm(self)
        for token_id in special_added_tokens(self.dir_model):
            if token_id < len(toktypes):
                toktypes[token_id] = base.SentencePieceTokenTypes.CONTROL
        return tokens, scores, toktypes

    base.TextModel._create_vocab_sentencepiece = create_vocab_sentencepiece
    original_add = gguf.SpecialVocab.add_to_gguf

    def add_to_gguf(self: Any, gw: Any, quiet: bool = False) -> None:
        self.chat_template = strip_generation_markers(self.chat_template)
        original_add(self, gw, quiet)

    gguf.SpecialVocab.add_to_gguf = add_to_gguf
    _wrap_gemma3_layer_pattern()


def _wrap_gemma3_layer_pattern() -> None:
    from conversion import gemma

    original = gemma.Gemma3Model.set_gguf_parameters

    def set_gguf_parameters(self: Any) -> None:
        original(self)
        layer_types = self.hparams.get("layer_types")
        if layer_types and self.hparams.get("sliding_window"):
            self.gguf_writer.add_sliding_window_pattern([t == "sliding_attention" for t in layer_types])

    gemma.Gemma3Model.set_gguf_parameters = set_gguf_parameters


def main(argv: list[str]) -> None:
    root = Path(argv[0]).resolve()
    script = root / "convert_hf_to_gguf.py"
    if not script.is_file():
        sys.exit(f"error: {script} not found")
    sys.path[:0] = [str(root)]  # its `conversion` package; the script itself puts gguf-py first
    spec = importlib.util.spec_from_file_location("convert_hf_to_gguf", script)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines main(); runs nothing (guarded by __name__ == "__main__")
    from conversion import base

    _wrap(base, module.gguf, module.logger)
    sys.argv = [str(script), *argv[1:]]
    module.main()


if __name__ == "__main__":
    main(sys.argv[1:])
