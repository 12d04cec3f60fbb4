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
    assert str(info.value).startswith("--set train.max_length=lots: invalid value")


def _write(tmp_path, text: str) -> Path:
    path = tmp_path / "run.yaml"
    path.write_text(text, encoding="utf-8")
    return path


def test_a_duplicate_key_is_an_error_naming_both_lines(tmp_path):
    path = _write(tmp_path, "run_name: x\ntrain:\n  lora:\n    r: 8\n  max_steps: 3\n  lora:\n    r: 16\n")
    with pytest.raises(SlmError) as info:
        load_config(path)
    assert info.value.message == f"{path}:6: duplicate key 'train.lora' (also at line 3)"
    assert "last" in info.value.hint


def test_a_duplicate_key_in_a_list_entry_is_found_too(tmp_path):
    path = _write(tmp_path, "collect:\n  sources:\n    - kind: dump\n      path: a\n      path: b\n")
    with pytest.raises(SlmError, match=r"run\.yaml:5: duplicate key 'collect\.sources\.0\.path' \(also at line 4\)"):
        load_config(path)


def test_an_unknown_section_created_by_set_names_the_set(tmp_path):
    path = _write(tmp_path, "run_name: x\ntrain:\n  max_steps: 3\n")
    with pytest.raises(SlmError) as info:
        load_config(path, ["trian.x=1"])
    assert info.value.message == "--set trian.x=1: unknown key 'trian'" and "did you mean 'train'" in info.value.hint
    with pytest.raises(SlmError, match=r"^--set train\.lora\.rank=4: unknown key 'train\.lora\.rank'"):
        load_config(path, ["train.lora.rank=4"])


def test_a_typo_in_the_yaml_is_still_blamed_on_the_yaml_when_a_set_is_given(tmp_path):
    path = _write(tmp_path, "run_name: x\ntrian:\n  max_steps: 3\n")
    with pytest.raises(SlmError, match=r"run\.yaml:2: unknown key 'trian'"):
        load_config(path, ["trian.max_steps=4"])  # the key was already wrong in the file


def test_set_on_a_list_position_that_does_not_exist_says_which_exist(tmp_path):
    path = _write(tmp_path, "collect:\n  sources:\n    - kind: bundled\n    - kind: dump\n      path: d\n")
    with pytest.raises(SlmError) as info:
        load_config(path, ["collect.sources.5.path=x"])
    assert info.value.message == (
        "--set collect.sources.5.path=x: 'collect.sources' has 2 entries, so there is no entry 5"
    )
    assert "from 0 to 1" in info.value.hint and "YAML" in info.value.hint
    with pytest.raises(SlmError, match="from 0 to 1"):
        load_config(path, ["collect.sources.2={kind: bundled}"])  # the last part is a position too
    with pytest.raises(SlmError, match=r"'collect\.sources' is a list, so 'first' must be a position"):
        load_config(path, ["collect.sources.first.path=x"])
    assert load_config(path, ["collect.sources.1.path=e"]).collect.sources[1].path == "e"


def test_set_into_a_list_the_yaml_does_not_write_says_so(tmp_path):
    path = _write(tmp_path, "run_name: x\n")
    with pytest.raises(SlmError) as info:
        load_config(path, ["collect.sources.0.path=x"])
    assert "'collect.sources' is not written in the config" in info.value.message
    assert "write the list collect.sources" in info.value.hint


def test_set_below_a_value_says_it_is_not_a_section(tmp_path):
    path = _write(tmp_path, "train:\n  base_model: phi-2\n")
    with pytest.raises(SlmError, match=r"'train\.base_model' is a value \('phi-2'\), not a section"):
        load_config(path, ["train.base_model.x=1"])


def test_a_directory_given_as_the_config_says_so(tmp_path):
    (tmp_path / "configs").mkdir()
    (tmp_path / "configs" / "a.yaml").write_text("run_name: a\n", encoding="utf-8")
    with pytest.raises(SlmError) as info:
        load_config(tmp_path / "configs")
    assert "is a directory, not a config file" in info.value.message and "a.yaml" in info.value.hint


def test_an_empty_config_file_is_a_clear_error(tmp_path):
    for text in ("", "\n\n", "# only a comment\n"):
        with pytest.raises(SlmError) as info:
            load_config(_write(tmp_path, text))
        assert info.value.message.endswith("run.yaml: the config is empty") and "run_name" in info.value.hint


@pytest.mark.parametrize(
    ("text", "line"),
    [
        ("run_name: x\ntrain\nseed: 1\n", 2),  # a key without ':' (PyYAML notices on line 3)
        ("run_name: x\ntrain:\n  max_length: [1, 2\nseed: 3\n", 3),  # an unclosed bracket
        ('run_name: "x\ntrain:\n  r: 1\n', 1),  # an unclosed quote
        ("train:\n  lora\n  r: 1\n", 2),  # a nested key without ':'
        ("run_name: x\ntrain:\n  r: 1\n   a: 2\n", 4),  # indented too far
        ("train:\n    r: 1\n  a: 2\n", 3),  # dedented into nowhere
        ("run_name: x\ntrain:\n\tr: 1\n", 3),  # a tab
    ],
)
def test_yaml_syntax_errors_point_at_the_line_of_the_mistake(tmp_path, text, line):
    with pytest.raises(SlmError) as info:
        load_config(_write(tmp_path, text))
    assert f"run.yaml:{line}: YAML syntax error" in info.value.message, info.value.message
    assert info.value.hint


def test_set_type_errors_say_fix_the_set_and_yaml_ones_the_file_line(tmp_path):
    path = _write(tmp_path, "train:\n  max_length: lots\n")
    with pytest.raises(SlmError) as info:
        load_config(path)
    assert info.value.hint == f"fix the value at {path}:2"
    with pytest.raises(SlmError) as info:
        load_config(_write(tmp_path, "run_name: x\n"), ["train.lora.r=abc"])
    assert info.value.message.startswith("--set train.lora.r=abc: invalid value for 'train.lora.r'")
    assert info.value.hint == "fix the --set train.lora.r=abc" and "config" not in info.value.hint
