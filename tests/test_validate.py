"""`slm config validate` finds what can be known without a GPU or the network."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from slm_forest.config import load_config
from slm_forest.validate import check_config, where

REPO = Path(__file__).resolve().parent.parent
CONFIGS = sorted((REPO / "configs").glob("*.yaml"))


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def _findings(tmp_path, text: str, overrides: list[str] | None = None):
    return check_config(load_config(_write(tmp_path, text), overrides))


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_have_no_errors(path):
    assert [f for f in check_config(load_config(path)) if f.level == "error"] == []


def test_fp16_for_gemma_3_is_an_error_naming_the_dtype_line(tmp_path):
    findings = _findings(tmp_path, "run_name: g\ntrain:\n  base_model: gemma-3-1b-it\n  dtype: fp16\n")
    assert [(f.level, f.key) for f in findings] == [("error", "train.dtype")]
    assert "fp16 cannot train gemma-3-1b-it" in findings[0].message and "bf16" in findings[0].hint
    cfg = load_config(tmp_path / "run.yaml")
    assert where("train.dtype", cfg, []) == f"{tmp_path / 'run.yaml'}:4: train.dtype"
    # by hub id too, and for the multimodal ones; phi-2 may use fp16
    assert _findings(tmp_path, "train:\n  base_model: google/gemma-3-12b-it\n  dtype: fp16\n")[0].key == "train.dtype"
    assert _findings(tmp_path, "train:\n  base_model: tiny-random-gemma3\n  dtype: fp16\n")[0].key == "train.dtype"
    assert _findings(tmp_path, "train:\n  base_model: phi-2\n  dtype: fp16\n") == []


def test_an_unknown_base_model_is_an_error_with_did_you_mean(tmp_path):
    findings = _findings(tmp_path, "train:\n  base_model: gemma-3-4b\n")
    assert [(f.level, f.key) for f in findings] == [("error", "train.base_model")]
    assert "unknown model 'gemma-3-4b'" in findings[0].message
    assert findings[0].hint.startswith("did you mean 'gemma-3-4b-it'?")


def test_hub_ids_and_local_model_directories_are_accepted_without_the_network(tmp_path, monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)  # nothing may be fetched even when online is allowed
    assert _findings(tmp_path, "train:\n  base_model: Qwen/Qwen2.5-0.5B-Instruct\n") == []
    model = tmp_path / "my-model"
    model.mkdir()
    (model / "config.json").write_text(
        '{"model_type": "gemma3_text", "hidden_size": 64, "num_hidden_layers": 2, "num_attention_heads": 2, '
        '"num_key_value_heads": 1, "head_dim": 32, "intermediate_size": 128, "vocab_size": 1000}'
    )
    assert _findings(tmp_path, f"train:\n  base_model: {model}\n") == []
    assert _findings(tmp_path, f"train:\n  base_model: {model}\n  dtype: fp16\n")[0].key == "train.dtype"
    empty = tmp_path / "not-a-model"
    empty.mkdir()
    assert _findings(tmp_path, f"train:\n  base_model: {empty}\n")[0].message.endswith(
        "has no config.json; is it a saved model?"
    )


def test_a_teacher_without_its_key_variable_is_a_warning(tmp_path, monkeypatch):
    text = (
        "distill:\n  teachers:\n    - provider: anthropic\n      model: claude\n"
        "    - provider: openai\n      model: gpt\n      api_key_env: TEAM_OPENAI_KEY\n"
        "    - provider: openai_compatible\n      model: local\n      base_url: http://localhost:8000/v1\n"
        "build:\n  judge: {provider: openai, model: judge}\n"
    )
    findings = _findings(tmp_path, text)
    assert [(f.level, f.key) for f in findings] == [
        ("warning", "distill.teachers.0"),
        ("warning", "distill.teachers.1"),
        ("warning", "build.judge"),
    ]
    assert "ANTHROPIC_API_KEY" in findings[0].message and "TEAM_OPENAI_KEY" in findings[1].message
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-xxxxxxxx")
    monkeypatch.setenv("TEAM_OPENAI_KEY", "sk-xxxxxxxx")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-yyyyyyyy")
    assert _findings(tmp_path, text) == []


def test_other_secrets_the_run_needs_are_warnings(tmp_path):
    text = (
        "collect:\n  sources:\n    - {kind: lawgo, laws: [부가가치세법]}\n"
        "build:\n  push_to_hub: me/data\ntrain:\n  report_to: [wandb]\n"
    )
    keys = [(f.key, f.message.split(" reads its key from ")[1].split(",")[0]) for f in _findings(tmp_path, text)]
    assert keys == [
        ("collect.sources.0.oc_env", "LAWGO_OC"),
        ("build.push_to_hub", "HF_TOKEN"),
        ("train.report_to", "WANDB_API_KEY"),
    ]


def test_a_spending_cap_with_nothing_under_it_is_a_warning(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-yyyyyyyy")
    findings = _findings(tmp_path, "build:\n  max_cost_usd: 5\nevaluate:\n  max_cost_usd: 2\n")
    assert [(f.level, f.key) for f in findings] == [
        ("warning", "build.max_cost_usd"),
        ("warning", "evaluate.max_cost_usd"),
    ]
    assert "build.judge or build.second_teacher" in findings[0].message
    assert _findings(tmp_path, "build:\n  max_cost_usd: 5\n  second_teacher: {provider: openai, model: gpt-4o}\n") == []


def test_a_capped_teacher_without_a_price_is_an_error_before_anything_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("OPENAI_API_KEY", "sk-yyyyyyyy")
    capped = "build:\n  max_cost_usd: 5\n  judge: {provider: openai, model: house-judge-v2}\n"
    (finding,) = _findings(tmp_path, capped)
    assert (finding.level, finding.key) == ("error", "build.judge")
    assert "'house-judge-v2'" in finding.message and "build.max_cost_usd" in finding.message
    assert "distill.prices.house-judge-v2" in finding.hint
    priced = capped + "distill:\n  prices:\n    house-judge-v2: {input_per_mtok: 1, output_per_mtok: 2}\n"
    assert _findings(tmp_path, priced) == []
    uncapped = "build:\n  judge: {provider: openai, model: house-judge-v2}\n"
    assert _findings(tmp_path, uncapped) == []  # without a cap an unknown price is only counted as $0
    offline = "distill:\n  max_cost_usd: 1\n  teachers: [{provider: offline, model: offline-v1}]\n"
    assert _findings(tmp_path, offline) == []


def test_the_cli_prints_errors_then_warnings_and_fails_only_on_errors(tmp_path):
    env = {**os.environ, "PYTHONPATH": str(REPO), "COLUMNS": "400"}
    env.pop("OPENAI_API_KEY", None)
    path = _write(tmp_path, "distill:\n  teachers:\n    - {provider: openai, model: gpt}\ntrain:\n  dtype: fp16\n")

    def validate(*extra: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "slm_forest.cli", "config", "validate", str(path), *extra]
        return subprocess.run(cmd, capture_output=True, text=True, env=env)

    result = validate("--set", "train.base_model=gemma-3-4b-it")
    lines = result.stderr.strip().splitlines()
    assert result.returncode == 1 and len(lines) == 2, result.stderr
    assert lines[0].startswith(f"error: {path}:5: train.dtype: fp16 cannot train gemma-3-4b-it")
    assert lines[1].startswith(
        f"warning: {path}:3: distill.teachers.0: teacher openai:gpt reads its key from OPENAI_API_KEY"
    )
    result = validate()  # tiny-random-phi may use fp16: only the warning is left
    assert result.returncode == 0 and "valid, 1 warning(s)" in result.stderr
    result = validate("--set", "train.base_model=phi2")
    assert result.returncode == 1 and "--set train.base_model=phi2: unknown model 'phi2'" in result.stderr
    assert "did you mean 'phi-2'?" in result.stderr


def test_flash_attention_for_a_class_that_declares_none_is_an_error(tmp_path):
    """Read from the installed transformers: BloomForCausalLM declares no flash-attention; Phi and Gemma 3 (the
    multimodal 12B trains as Gemma3ForCausalLM) do."""
    model = tmp_path / "bloom"
    model.mkdir()
    (model / "config.json").write_text(
        '{"model_type": "bloom", "hidden_size": 64, "n_layer": 2, "n_head": 4, "vocab_size": 1000}'
    )
    findings = _findings(tmp_path, f"train:\n  base_model: {model}\n  attn_implementation: flash_attention_2\n")
    assert [(f.level, f.key) for f in findings] == [("error", "train.attn_implementation")]
    assert "BloomForCausalLM" in findings[0].message and "attn_implementation: auto" in findings[0].hint
    for base in ("phi-2", "google/gemma-3-12b-it", "tiny-random-gemma3-mm"):
        assert _findings(tmp_path, f"train:\n  base_model: {base}\n  attn_implementation: flash_attention_2\n") == []
    assert _findings(tmp_path, f"train:\n  base_model: {model}\n  attn_implementation: sdpa\n") == []
