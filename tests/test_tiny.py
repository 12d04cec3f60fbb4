"""The tiny random models: seeded, offline, loadable through the normal from_pretrained path, the right layout."""

from __future__ import annotations

import json

import pytest

from slm_forest.errors import SlmError

TEXTS = [
    "소득세법 제12조에 따른 비과세소득은 무엇인가요?",
    "증여세 과세가액은 증여일 현재의 재산가액에서 채무를 뺀 금액입니다.",
    "부가가치세 확정신고는 과세기간이 끝난 후 25일 이내에 합니다.",
    "법인세법 제55조는 과세표준 구간별 세율을 정합니다.",
    "상속세 및 증여세법 제53조의 증여재산공제는 배우자 6억원입니다.",
] * 20


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """Each tiny kind built twice with the same seed and once with another seed."""
    from fine_tuning.train.tiny import build_tiny_model

    root = tmp_path_factory.mktemp("tiny")
    out = {}
    for kind in ("tiny-random-phi", "tiny-random-gemma3", "tiny-random-gemma3-mm"):
        out[kind] = {
            "a": build_tiny_model(kind, root / kind / "a", TEXTS, seed=7, overrides={}),
            "b": build_tiny_model(kind, root / kind / "b", TEXTS, seed=7, overrides={}),
            "other_seed": build_tiny_model(kind, root / kind / "c", TEXTS, seed=8, overrides={}),
        }
    return out


EXPECTED_CLASS = {
    "tiny-random-phi": "PhiForCausalLM",
    "tiny-random-gemma3": "Gemma3ForCausalLM",
    "tiny-random-gemma3-mm": "Gemma3ForConditionalGeneration",
}


@pytest.mark.parametrize("kind", list(EXPECTED_CLASS))
def test_round_trip_through_from_pretrained_gives_identical_logits(built, kind):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    first = AutoModelForCausalLM.from_pretrained(built[kind]["a"]).eval()
    again = AutoModelForCausalLM.from_pretrained(built[kind]["b"]).eval()
    other = AutoModelForCausalLM.from_pretrained(built[kind]["other_seed"]).eval()
    tokenizer = AutoTokenizer.from_pretrained(built[kind]["a"])
    assert type(first).__name__ == EXPECTED_CLASS[kind]
    assert 100_000 < sum(p.numel() for p in first.parameters()) < 250_000

    ids = tokenizer("증여세 과세가액은 얼마인가요?", return_tensors="pt").input_ids
    with torch.no_grad():
        logits_first, logits_again, logits_other = (m(input_ids=ids).logits for m in (first, again, other))
    assert torch.equal(logits_first, logits_again)  # same seed, same text: identical weights
    assert not torch.allclose(logits_first, logits_other)  # the seed matters
    assert first.config.get_text_config().vocab_size == len(tokenizer)


def test_tokenizer_round_trips_hangul_and_has_distinct_special_tokens(built):
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["tiny-random-gemma3"]["a"])
    text = "상속세 및 증여세법 제53조의2 ① 거주자가 …를 증여받은 경우 (2024. 12. 31.)"
    assert tokenizer.decode(tokenizer(text).input_ids) == text
    assert tokenizer.pad_token == "<pad>" and tokenizer.eos_token == "<eos>" and tokenizer.bos_token == "<bos>"
    assert tokenizer.pad_token_id != tokenizer.eos_token_id
    for special in ("<start_of_turn>", "<end_of_turn>"):
        assert tokenizer(special).input_ids == [tokenizer.convert_tokens_to_ids(special)]
    assert "{% generation %}" in tokenizer.chat_template or "{%- generation -%}" in tokenizer.chat_template
    # the trained vocabulary merged Korean syllables (far fewer tokens than UTF-8 bytes)
    assert len(tokenizer(TEXTS[1]).input_ids) < len(TEXTS[1].encode("utf-8")) / 2


def test_tiny_tokenizer_is_identical_for_identical_text(built):
    a = json.loads((built["tiny-random-phi"]["a"] / "tokenizer.json").read_text(encoding="utf-8"))
    b = json.loads((built["tiny-random-phi"]["b"] / "tokenizer.json").read_text(encoding="utf-8"))
    assert a == b


def test_generation_stops_at_end_of_turn(built):
    from transformers import AutoTokenizer, GenerationConfig

    path = built["tiny-random-gemma3"]["a"]
    tokenizer = AutoTokenizer.from_pretrained(path)
    generation = GenerationConfig.from_pretrained(path)
    assert set(generation.eos_token_id) == {tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids("<end_of_turn>")}
    assert generation.pad_token_id == tokenizer.pad_token_id


def test_multimodal_variant_has_the_real_gemma3_checkpoint_layout(built):
    from safetensors import safe_open

    path = built["tiny-random-gemma3-mm"]["a"]
    with safe_open(str(path / "model.safetensors"), "pt") as handle:
        prefixes = {key.split(".")[0] for key in handle.keys()}
    assert prefixes == {"language_model", "vision_tower", "multi_modal_projector"}
    config = json.loads((path / "config.json").read_text(encoding="utf-8"))
    assert config["model_type"] == "gemma3" and config["vision_config"]["num_hidden_layers"] == 1
    assert config["text_config"]["layer_types"] == ["sliding_attention", "full_attention"]


def test_overrides_change_the_architecture(tmp_path):
    from transformers import AutoConfig

    from fine_tuning.train.tiny import build_tiny_model

    path = build_tiny_model(
        "tiny-random-gemma3", tmp_path / "m", TEXTS, seed=1, overrides={"hidden_size": 32, "num_hidden_layers": 4}
    )
    config = AutoConfig.from_pretrained(path)
    assert config.hidden_size == 32 and config.num_hidden_layers == 4 and len(config.layer_types) == 4


def test_unknown_override_names_the_config_key(tmp_path):
    from fine_tuning.train.tiny import build_tiny_model

    with pytest.raises(SlmError, match=r"train\.tiny_model\.hidden"):
        build_tiny_model("tiny-random-phi", tmp_path / "m", TEXTS, seed=1, overrides={"hidden": 32})
    with pytest.raises(SlmError, match="vocab_size"):
        build_tiny_model("tiny-random-phi", tmp_path / "m", TEXTS, seed=1, overrides={"vocab_size": 100})


def test_pretraining_teaches_the_tiny_base_the_corpus(tmp_path):
    """`train.tiny_model.pretrain_steps`: the base reads the corpus first, so base-vs-tuned compares a weak Korean
    LM with its fine-tune, not noise with noise. Loss on the corpus must drop well below a random model's."""
    import math

    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from fine_tuning.train.tiny import build_tiny_model

    texts = [
        "부가가치세는 과세기간 종료 후 25일 이내에 신고·납부합니다.",
        "소득세법 제12조는 비과세소득을 정합니다.",
    ] * 40
    losses = {}
    for steps in (0, 150):
        out = build_tiny_model("tiny-random-phi", tmp_path / str(steps), texts, 7, {"pretrain_steps": steps})
        model, tokenizer = AutoModelForCausalLM.from_pretrained(out), AutoTokenizer.from_pretrained(out)
        batch = tokenizer(texts[:2], return_tensors="pt", padding=True)
        labels = batch["input_ids"].masked_fill(batch["attention_mask"] == 0, -100)
        with torch.no_grad():
            losses[steps] = model(**batch, labels=labels).loss.item()
    vocab = len(AutoTokenizer.from_pretrained(tmp_path / "0"))
    assert losses[0] > 0.8 * math.log(vocab)  # random weights: about ln(vocab)
    assert losses[150] < losses[0] / 2
