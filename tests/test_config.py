"""Config loading: every shipped config validates, typos name the key and line, overrides work, no secrets."""

from __future__ import annotations

from pathlib import Path

import pytest

from slm_forest.config import RunConfig, load_config, parse_override
from slm_forest.errors import SlmError

CONFIG_DIR = Path(__file__).resolve().parent.parent / "configs"
SHIPPED = sorted(CONFIG_DIR.glob("*.yaml"))


def test_there_are_shipped_configs():
    assert any(p.name == "smoke.yaml" for p in SHIPPED)


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_opens_with_a_comment(path: Path):
    cfg = load_config(path)
    assert isinstance(cfg, RunConfig)
    head = path.read_text(encoding="utf-8").splitlines()[:4]
    assert head and head[0].startswith("#"), f"{path.name} must open with a comment saying what it is for"
    assert any("slm " in line for line in head), f"{path.name}'s header must show the launch command"


def test_typo_names_the_dotted_key_line_and_suggestion(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: x\ntrain:\n  lora:\n    rr: 8\n", encoding="utf-8")
    with pytest.raises(SlmError) as info:
        load_config(bad)
    text = str(info.value)
    assert f"{bad}:4" in text and "train.lora.rr" in text and "train.lora.r" in text


def test_unknown_key_inside_a_source_list(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("collect:\n  sources:\n    - kind: dump\n      pth: data\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"collect\.sources\.0\.pth.*did you mean 'collect\.sources\.0\.path'"):
        load_config(bad)


def test_wrong_type_names_the_key(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_length: lots\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"bad\.yaml:2: invalid value for 'train\.max_length'"):
        load_config(bad)


def test_yaml_syntax_error_names_the_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("train:\n  max_length: [1, 2\n", encoding="utf-8")
    with pytest.raises(SlmError, match="YAML syntax error"):
        load_config(bad)


def test_missing_file_is_a_clear_error():
    with pytest.raises(SlmError, match="config file not found"):
        load_config("nope.yaml")


def test_overrides_are_typed_and_validated():
    cfg = load_config(CONFIG_DIR / "smoke.yaml", ["train.lora.r=4", "train.learning_rate=1e-4", "build.formats=[chat]"])
    assert cfg.train.lora.r == 4 and cfg.train.learning_rate == pytest.approx(1e-4) and cfg.build.formats == ["chat"]
    with pytest.raises(SlmError, match="train.lora.rank"):
        load_config(CONFIG_DIR / "smoke.yaml", ["train.lora.rank=4"])
    with pytest.raises(SlmError, match="KEY=VALUE"):
        parse_override("train.lora.r")


def test_fingerprint_changes_only_for_the_section_that_changed():
    base = load_config(CONFIG_DIR / "smoke.yaml")
    changed = load_config(CONFIG_DIR / "smoke.yaml", ["train.lora.r=4"])
    assert base.section_fingerprint("distill") == changed.section_fingerprint("distill")
    assert base.section_fingerprint("train") != changed.section_fingerprint("train")


def test_configs_hold_no_secret_values():
    for path in SHIPPED:
        text = path.read_text(encoding="utf-8")
        assert "sk-" not in text and "api_key:" not in text, path.name


def test_errors_from_overrides_name_the_override_not_a_file_line():
    with pytest.raises(SlmError) as info:
        load_config(CONFIG_DIR / "smoke.yaml", ["train.max_length=lots"])
    assert str(info.value).startswith("--set train.max_length: invalid value")
