"""The tiny Gemma 3's tokenizer: a SentencePiece BPE model trained on the run's text, shaped like the real Gemma one.

Why SentencePiece and not the byte-level BPE the tiny Phi uses: llama.cpp's converter (`convert_hf_to_gguf.py`)
identifies a BPE tokenizer's pre-tokenizer by hashing how it tokenizes a fixed string, and refuses any vocabulary it
has not seen ("BPE pre-tokenizer was not recognized"); a tokenizer trained on our corpus never matches. Gemma 3 ships
a SentencePiece `tokenizer.model`, and the converter reads that file directly (no hash), so a tiny Gemma 3 with the
same kind of tokenizer goes through the same conversion path as the real 1B/4B/12B checkpoints.

The trainer settings are those of Gemma's own model (read from its `trainer_spec`): BPE, byte fallback (nothing is
ever unknown: a rare Hangul syllable becomes its UTF-8 bytes), digits split one by one, no dummy prefix, whitespace
kept as is, identity normalisation. Ids follow Gemma: `<pad>` 0, `<eos>` 1, `<bos>` 2, `<unk>` 3, `<mask>` 4, then the
turn markers (and, for the multimodal variant, the image markers). The Hugging Face side is transformers'
`GemmaTokenizer` converted from that model, so `tokenizer.json` and `tokenizer.model` agree; both are saved.
Training takes about 0.2 s on a few hundred sentences and is deterministic (one thread).
"""

from __future__ import annotations

import io
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

SENTENCEPIECE_MODEL = "tokenizer.model"
PAD, EOS, BOS, UNK, MASK = "<pad>", "<eos>", "<bos>", "<unk>", "<mask>"


def train_sentencepiece_model(texts: Iterable[str], vocab_size: int, symbols: list[str]) -> bytes:
    """The serialized SentencePiece model (the bytes of a `tokenizer.model`); `symbols` get the ids after `<unk>`."""
    import sentencepiece as spm

    corpus = [t for t in texts if t and t.strip()]
    if not corpus:
        raise SlmError("the training split has no text to train the tiny tokenizer on", "run `slm build` first")
    out = io.BytesIO()
    spm.SentencePieceTrainer.train(
        sentence_iterator=iter(corpus),
        model_writer=out,
        model_type="bpe",
        vocab_size=vocab_size,
        hard_vocab_limit=False,  # a small corpus may not have enough merges: a smaller vocabulary, not an error
        byte_fallback=True,
        split_digits=True,
        add_dummy_prefix=False,
        remove_extra_whitespaces=False,
        allow_whitespace_only_pieces=True,
        normalization_rule_name="identity",
        character_coverage=1.0,
        pad_id=0,
        eos_id=1,
        bos_id=2,
        unk_id=3,
        pad_piece=PAD,
        eos_piece=EOS,
        bos_piece=BOS,
        unk_piece=UNK,
        user_defined_symbols=symbols,
        max_sentence_length=1 << 16,
        num_threads=1,  # deterministic
        minloglevel=2,
    )
    return out.getvalue()


def sentencepiece_tokenizer(texts: Iterable[str], vocab_size: int, extra: list[str], chat_template: str) -> Any:
    """transformers' GemmaTokenizer built from a SentencePiece model trained on `texts`.

    `extra` are the special tokens after `<mask>` (turn markers, image markers). The model's bytes stay on the
    tokenizer (`sentencepiece_model`) so `save_sentencepiece_model` can write them beside `tokenizer.json`.
    """
    from transformers import AutoTokenizer

    model = train_sentencepiece_model(texts, vocab_size, [MASK, *extra])
    with tempfile.TemporaryDirectory() as tmp:
        (Path(tmp) / SENTENCEPIECE_MODEL).write_bytes(model)
        (Path(tmp) / "tokenizer_config.json").write_text('{"tokenizer_class": "GemmaTokenizer"}', encoding="utf-8")
        tokenizer = AutoTokenizer.from_pretrained(
            tmp,
            bos_token=BOS,
            eos_token=EOS,
            pad_token=PAD,
            unk_token=UNK,
            mask_token=MASK,
            additional_special_tokens=extra,
            model_max_length=1 << 16,
        )
    tokenizer.chat_template = chat_template
    tokenizer.sentencepiece_model = model
    return tokenizer


def save_sentencepiece_model(tokenizer: Any, directory: Path) -> Path | None:
    """Write `tokenizer.model` beside the saved tokenizer when it was built here (transformers 5 saves only
    `tokenizer.json`; llama.cpp's converter reads the SentencePiece file)."""
    model = getattr(tokenizer, "sentencepiece_model", None)
    if not model:
        return None
    path = Path(directory) / SENTENCEPIECE_MODEL
    path.write_bytes(model)
    return path
