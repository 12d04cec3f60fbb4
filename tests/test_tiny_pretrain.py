"""`train.tiny_model.pretrain_block` / `pretrain_batch`: the shape of the tiny base's plain-text pretraining."""

from __future__ import annotations

import pytest

from slm_forest.errors import SlmError

TEXTS = ["소득세법 제12조는 비과세소득을 정합니다. 부가가치세는 과세기간 종료 후 25일 이내에 신고합니다."] * 60


def _weights(path):
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(path)
    return model.get_input_embeddings().weight.detach().clone()


def test_the_block_and_batch_sizes_reach_the_pretraining_loop(tmp_path):
    from fine_tuning.train.tiny import build_tiny_model

    def build(name: str, **settings: int):
        return _weights(
            build_tiny_model("tiny-random-phi", tmp_path / name, TEXTS, 3, {"pretrain_steps": 5, **settings})
        )

    default = build("default")
    assert default.equal(build("same", pretrain_block=128, pretrain_batch=8))  # the defaults are the old constants
    assert not default.equal(build("long", pretrain_block=512, pretrain_batch=2))


@pytest.mark.parametrize("key", ["pretrain_block", "pretrain_batch"])
def test_a_too_small_pretraining_shape_names_the_key(tmp_path, key):
    from fine_tuning.train.tiny import build_tiny_model

    with pytest.raises(SlmError, match=rf"train\.tiny_model\.{key}=0"):
        build_tiny_model("tiny-random-phi", tmp_path / "m", TEXTS, 3, {key: 0})
