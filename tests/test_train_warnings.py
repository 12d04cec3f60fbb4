"""The warning filter hides exactly the listed, understood messages of the ML libraries and lets the rest through."""

from __future__ import annotations

import warnings

import pytest

import fine_tuning

HIDDEN = [
    (
        FutureWarning,
        "`is_gradient_checkpointing` is deprecated and will be removed in v6.",
        "transformers.modeling_utils",
    ),
    (
        FutureWarning,
        "`gradient_checkpointing_enable` is deprecated and will be removed in v6.",
        "transformers.modeling_utils",
    ),
    (
        FutureWarning,
        "`gradient_checkpointing_disable` is deprecated and will be removed in v6.",
        "transformers.modeling_utils",
    ),
]
SHOWN = [
    # another FutureWarning of the same module: a real change ahead that users must hear about
    (FutureWarning, "Passing `tp_plan` directly to `from_pretrained` is deprecated", "transformers.modeling_utils"),
    (FutureWarning, "`use_liger_kernel=True` is deprecated and will be removed in v2.0.0.", "trl.trainer.sft_trainer"),
    (FutureWarning, "some new peft deprecation", "peft.peft_model"),
    # the hidden text from another module is not the understood case
    (FutureWarning, "`is_gradient_checkpointing` is deprecated and will be removed in v6.", "mylib.models"),
    (UserWarning, "`is_gradient_checkpointing` is deprecated", "transformers.modeling_utils"),
]


def emitted(category, message, module):
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        fine_tuning.install_warning_filters()
        warnings.warn_explicit(message, category, filename=f"{module.replace('.', '/')}.py", lineno=1, module=module)
    return [str(w.message) for w in caught]


@pytest.mark.parametrize(("category", "message", "module"), HIDDEN)
def test_listed_messages_are_hidden(monkeypatch, category, message, module):
    monkeypatch.delenv("SLM_DEBUG", raising=False)
    assert emitted(category, message, module) == []


@pytest.mark.parametrize(("category", "message", "module"), SHOWN)
def test_other_warnings_get_through(monkeypatch, category, message, module):
    monkeypatch.delenv("SLM_DEBUG", raising=False)
    assert emitted(category, message, module) == [message]


def test_slm_debug_shows_everything(monkeypatch):
    monkeypatch.setenv("SLM_DEBUG", "1")
    category, message, module = HIDDEN[0]
    assert emitted(category, message, module) == [message]


def test_every_hidden_message_says_why():
    assert all(len(why) > 40 for *_, why in fine_tuning.HIDDEN_WARNINGS)
    # No blanket filter: every entry names a message and a module.
    assert all(message and module for _, message, module, _ in fine_tuning.HIDDEN_WARNINGS)


def test_the_real_transformers_warning_is_the_one_hidden(monkeypatch):
    from transformers import PhiConfig, PhiForCausalLM

    monkeypatch.delenv("SLM_DEBUG", raising=False)
    model = PhiForCausalLM(PhiConfig(hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2))
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        _ = model.is_gradient_checkpointing  # transformers warns here unless the filter matches
    assert [w for w in caught if "is_gradient_checkpointing" in str(w.message)], "transformers no longer warns"
    with warnings.catch_warnings(record=True) as caught:
        warnings.resetwarnings()
        warnings.simplefilter("default")
        fine_tuning.install_warning_filters()
        _ = model.is_gradient_checkpointing
    assert not [w for w in caught if "is_gradient_checkpointing" in str(w.message)]
