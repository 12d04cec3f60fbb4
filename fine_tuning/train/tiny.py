"""Tiny random-initialised models for CPU runs and tests: same code path as the real models, seconds instead of hours.

`train.base_model: tiny-random-phi | tiny-random-gemma3 | tiny-random-gemma3-mm` builds, in the train stage:
- a tokenizer trained on the run's own training text (Hangul round-trips exactly): byte-level BPE for Phi,
  SentencePiece BPE with byte fallback for Gemma 3 like the real one (`tiny_sentencepiece`), with the special
  tokens `<pad> <eos> <bos> <unk> <start_of_turn> <end_of_turn>` (pad ≠ eos) and the Gemma-format training chat
  template (`{% generation %}` around each answer, every turn closed by `<end_of_turn>`), so assistant-only loss works
  and the end-of-turn token is trained;
- a random model of the named architecture (PhiForCausalLM, Gemma3ForCausalLM, or the multimodal
  Gemma3ForConditionalGeneration with a 1-layer SigLIP vision tower: the key layout of the real Gemma 3 4B/12B);
and saves both into one directory that loads back through the normal `from_pretrained` path (AutoModelForCausalLM /
AutoTokenizer), with no network. The same seed, text and overrides give identical weights and tokenizer.

Sizes can be changed with `train.tiny_model` (e.g. `{hidden_size: 128, num_hidden_layers: 4, vocab_size: 2000}`).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

from slm_forest.errors import SlmError

TINY_KINDS = ("tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm")

PAD, EOS, BOS, UNK = "<pad>", "<eos>", "<bos>", "<unk>"
START_OF_TURN, END_OF_TURN = "<start_of_turn>", "<end_of_turn>"
# The multimodal variant also owns the image markers of the real Gemma 3 vocabulary, so its config points at real ids.
START_OF_IMAGE, END_OF_IMAGE, IMAGE_SOFT_TOKEN = "<start_of_image>", "<end_of_image>", "<image_soft_token>"

# Defaults measured in ML_STACK_NOTES (131k–180k parameters, build + save well under a second).
_DEFAULTS: dict[str, dict[str, int]] = {
    "tiny-random-phi": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 4096,
        "vocab_size": 1024,
        "pretrain_steps": 0,
        "pretrain_documents": 0,
        "pretrain_block": 128,
        "pretrain_batch": 8,
    },
    "tiny-random-gemma3": {
        "hidden_size": 64,
        "intermediate_size": 128,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 2,
        "head_dim": 16,
        "sliding_window": 32,
        "max_position_embeddings": 4096,
        "vocab_size": 1024,
        "pretrain_steps": 0,
        "pretrain_documents": 0,
        "pretrain_block": 128,
        "pretrain_batch": 8,
    },
}
_DEFAULTS["tiny-random-gemma3-mm"] = {
    **_DEFAULTS["tiny-random-gemma3"],
    "vision_hidden_size": 32,
    "vision_intermediate_size": 64,
    "vision_num_hidden_layers": 1,
    "vision_num_attention_heads": 2,
    "image_size": 32,
    "patch_size": 8,
    "mm_tokens_per_image": 4,
}


def is_tiny(name: str) -> bool:
    return name in TINY_KINDS


def tiny_settings(kind: str, overrides: dict[str, Any] | None = None) -> dict[str, int]:
    """The defaults for `kind` with `train.tiny_model` applied; an unknown key is an error naming it."""
    if kind not in _DEFAULTS:
        raise SlmError(f"train.base_model: '{kind}' is not a tiny model", f"tiny models are: {', '.join(TINY_KINDS)}")
    settings = dict(_DEFAULTS[kind])
    for key, value in (overrides or {}).items():
        if key not in settings:
            raise SlmError(
                f"train.tiny_model.{key}: unknown setting for {kind}",
                f"known settings: {', '.join(sorted(settings))}",
            )
        settings[key] = int(value)
    for key, least in (("pretrain_block", 16), ("pretrain_batch", 1)):
        if settings[key] < least:
            raise SlmError(f"train.tiny_model.{key}={settings[key]} is too small", f"use at least {least}")
    if settings["vocab_size"] < 300:
        raise SlmError(
            f"train.tiny_model.vocab_size={settings['vocab_size']} is too small",
            "a byte-level BPE needs at least 256 byte tokens plus the special tokens; use 1000–2000",
        )
    return settings


def gemma_chat_template() -> str:
    # Imported here so this module has no import-time dependency beyond slm_forest.
    from fine_tuning.train.chat_templates import GEMMA_TRAINING_TEMPLATE

    return GEMMA_TRAINING_TEMPLATE


def train_tokenizer(texts: Iterable[str], vocab_size: int, multimodal: bool = False) -> Any:
    """A byte-level BPE trained on `texts`, wrapped in PreTrainedTokenizerFast with the Gemma-format template."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    extra = [START_OF_TURN, END_OF_TURN] + ([START_OF_IMAGE, END_OF_IMAGE, IMAGE_SOFT_TOKEN] if multimodal else [])
    specials = [PAD, EOS, BOS, UNK, *extra]  # ids 0, 1, 2, 3, … as in Gemma (pad 0, eos 1, bos 2)
    backend = Tokenizer(models.BPE(unk_token=None))
    backend.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    backend.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=specials,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),  # every byte is a token: nothing is ever unknown
        show_progress=False,
    )
    corpus = [t for t in texts if t]
    if not corpus:
        raise SlmError("the training split has no text to train the tiny tokenizer on", "run `slm build` first")
    backend.train_from_iterator(corpus, trainer=trainer)
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=backend,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        additional_special_tokens=extra,
        model_max_length=1 << 16,
    )
    tokenizer.chat_template = gemma_chat_template()
    return tokenizer


def _model_config(kind: str, s: dict[str, int], tokenizer: Any) -> Any:
    ids = {
        "vocab_size": len(tokenizer),
        "pad_token_id": tokenizer.pad_token_id,
        "bos_token_id": tokenizer.bos_token_id,
        "eos_token_id": tokenizer.eos_token_id,
    }
    common = {
        "hidden_size": s["hidden_size"],
        "intermediate_size": s["intermediate_size"],
        "num_hidden_layers": s["num_hidden_layers"],
        "num_attention_heads": s["num_attention_heads"],
        "num_key_value_heads": s["num_key_value_heads"],
        "max_position_embeddings": s["max_position_embeddings"],
    }
    if kind == "tiny-random-phi":
        from transformers import PhiConfig

        return PhiConfig(**common, **ids)

    from transformers import Gemma3Config, Gemma3TextConfig

    # Alternate sliding and full attention layers, like the real Gemma 3 (5:1 there, 1:1 here so both kinds exist).
    layer_types = ["sliding_attention" if i % 2 == 0 else "full_attention" for i in range(s["num_hidden_layers"])]
    text = Gemma3TextConfig(
        **common,
        **ids,
        head_dim=s["head_dim"],
        sliding_window=s["sliding_window"],
        layer_types=layer_types,
        query_pre_attn_scalar=s["head_dim"],
    )
    if kind == "tiny-random-gemma3":
        return text
    vision = {
        "hidden_size": s["vision_hidden_size"],
        "intermediate_size": s["vision_intermediate_size"],
        "num_hidden_layers": s["vision_num_hidden_layers"],
        "num_attention_heads": s["vision_num_attention_heads"],
        "image_size": s["image_size"],
        "patch_size": s["patch_size"],
        "vision_use_head": False,  # Gemma 3's SigLIP tower has no pooling head
    }
    return Gemma3Config(
        text_config=text.to_dict(),
        vision_config=vision,
        mm_tokens_per_image=s["mm_tokens_per_image"],
        boi_token_index=tokenizer.convert_tokens_to_ids(START_OF_IMAGE),
        eoi_token_index=tokenizer.convert_tokens_to_ids(END_OF_IMAGE),
        image_token_index=tokenizer.convert_tokens_to_ids(IMAGE_SOFT_TOKEN),
        **{k: v for k, v in ids.items() if k != "vocab_size"},
    )


# Plain-text pretraining of the tiny base: its learning rate (block and batch sizes: train.tiny_model.pretrain_*).
_PRETRAIN_LR = 3e-3


def pretrain_on_text(
    model: Any, tokenizer: Any, texts: list[str], steps: int, seed: int, block: int = 128, batch_size: int = 8
) -> float:
    """A few hundred steps of ordinary next-token training on the corpus text (no chat template), `batch_size`
    blocks of `block` tokens a step.

    Why: a random base knows nothing, so "base vs tuned" would compare noise with noise. A base that has read Korean
    tax text but never seen the chat format is what a real run starts from, in miniature; the LoRA stage then has to
    teach the format and the answers, and evaluation measures that. `block`/`batch_size` trade context length for
    sequences per step at the same tokens per step. Tried once in the smoke run: 2 blocks of 512 (then 250 SFT steps)
    gave test citation F1 0.029 against 0.067 for 8 of 128 (then 300 steps) — no sign that long blocks help, so the
    default stays 8 × 128. Returns the last loss. Deterministic for a seed.
    """
    import torch

    ids: list[int] = []
    for text in texts:
        ids += tokenizer(text, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
    if len(ids) < block + 1:
        return float("nan")
    blocks = torch.tensor(ids[: len(ids) // block * block]).view(-1, block)
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(model.parameters(), lr=_PRETRAIN_LR)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matmuls: one thread is fastest (see train.cpu_threads)
    model.train()
    loss = torch.tensor(float("nan"))
    try:
        for _ in range(steps):
            batch = blocks[torch.randint(len(blocks), (batch_size,), generator=generator)]
            loss = model(input_ids=batch, labels=batch).loss
            loss.backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
    finally:
        torch.set_num_threads(threads)
    model.eval()
    return float(loss.detach())  # the last step's graph is not needed: converting it to a float warned


def documents_beside(out_dir: Path) -> list[str]:
    """The run's collected documents (`<run>/collect/documents.jsonl`; `out_dir` is under `<run>/train/`).

    Why (`train.tiny_model.pretrain_documents: 1`): a base that read the training *answers* already knows what SFT is
    meant to teach, so base and tuned differ little. A base that read the law itself (statute articles and the
    NTS interpretations, as plain text) but never a question-and-answer turn is what a real run starts from: SFT then
    teaches the answer format, the citations and which article a question is about, and held-out loss shows it.
    """
    from slm_forest.files import read_jsonl

    path = Path(out_dir).resolve().parent.parent / "collect" / "documents.jsonl"
    if not path.is_file():
        raise SlmError(
            f"train.tiny_model.pretrain_documents: {path} not found",
            "run `slm collect CONFIG` first, or set train.tiny_model.pretrain_documents: 0 to pretrain on the training text",
        )
    texts = [str(row.get("text") or "") for row in read_jsonl(path)]
    return [t for t in texts if t.strip()]


def build_tiny_model(
    kind: str,
    out_dir: Path,
    texts: Iterable[str],
    seed: int,
    overrides: dict[str, Any] | None = None,
) -> Path:
    """Build a tiny random model + tokenizer of `kind` and save both into `out_dir` (from_pretrained-loadable)."""
    import torch
    from transformers import AutoModelForCausalLM, GenerationConfig

    settings = tiny_settings(kind, overrides)
    texts = list(texts)  # read twice: tokenizer training, then pretraining
    if kind == "tiny-random-phi":
        tokenizer = train_tokenizer(texts, settings["vocab_size"])
    else:  # Gemma 3: a SentencePiece model like the real one, which llama.cpp's converter reads (tiny_sentencepiece)
        from fine_tuning.train.tiny_sentencepiece import sentencepiece_tokenizer

        extra = [START_OF_TURN, END_OF_TURN] + (
            [START_OF_IMAGE, END_OF_IMAGE, IMAGE_SOFT_TOKEN] if kind.endswith("-mm") else []
        )
        tokenizer = sentencepiece_tokenizer(texts, settings["vocab_size"], extra, gemma_chat_template())
    config = _model_config(kind, settings, tokenizer)
    torch.manual_seed(seed)  # the only randomness in the build: same seed, same weights
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    if settings["pretrain_steps"]:
        pretrain_texts = documents_beside(Path(out_dir)) if settings["pretrain_documents"] else texts
        pretrain_on_text(
            model,
            tokenizer,
            pretrain_texts,
            settings["pretrain_steps"],
            seed,
            settings["pretrain_block"],
            settings["pretrain_batch"],
        )
    end_of_turn_id = tokenizer.convert_tokens_to_ids(END_OF_TURN)
    # Generation stops at the end of the answer (<end_of_turn>) as well as at <eos>, as with the real Gemma 3.
    model.generation_config = GenerationConfig(
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=[tokenizer.eos_token_id, end_of_turn_id],
        pad_token_id=tokenizer.pad_token_id,
    )
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(out_dir)
    tokenizer.save_pretrained(out_dir)
    from fine_tuning.train.tiny_sentencepiece import save_sentencepiece_model

    save_sentencepiece_model(tokenizer, out_dir)  # Gemma 3: tokenizer.model beside tokenizer.json
    return out_dir
