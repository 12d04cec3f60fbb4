"""The `slm` CLI: every stage has --help, errors are one line without a traceback, --help never imports torch."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from slm_forest.cli import app
from slm_forest.pipeline import STAGE_ORDER

runner = CliRunner()
SMOKE = Path(__file__).resolve().parent.parent / "configs" / "smoke.yaml"


def test_top_level_help_lists_every_stage():
    result = runner.invoke(app, ["--help"])
    assert result.exit_code == 0
    for name in [*STAGE_ORDER, "run", "config"]:
        assert name in result.output


@pytest.mark.parametrize("command", [[s] for s in STAGE_ORDER] + [["run"], ["config", "validate"], ["config", "show"]])
def test_every_command_has_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "config" in result.output.lower()


def test_help_does_not_import_torch():
    code = "import sys; from slm_forest.cli import app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False False"


def _slm(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    # PYTHONPATH: this checkout's code, not whatever checkout the shared venv's editable install points at.
    env = {**(os.environ if env is None else env), "PYTHONPATH": str(SMOKE.parent.parent)}
    return subprocess.run([sys.executable, "-m", "slm_forest.cli", *args], capture_output=True, text=True, env=env)


def test_bad_config_is_one_line_without_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("run_name: x\ntrian: {}\n", encoding="utf-8")
    result = _slm("config", "validate", str(bad))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "trian" in lines[0] and "did you mean 'train'" in lines[0]
    assert "Traceback" not in result.stderr


def test_missing_upstream_names_the_command_to_run():
    result = _slm("prepare", str(SMOKE))
    assert result.returncode == 1
    assert "slm collect" in result.stderr and "Traceback" not in result.stderr


def test_unknown_stage_is_a_usage_error():
    result = _slm("run", str(SMOKE), "--from", "trian")
    assert result.returncode == 1 and "unknown stage" in result.stderr


def test_debug_switch_shows_the_traceback(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("trian: {}\n", encoding="utf-8")
    result = _slm("config", "validate", str(bad), env={**os.environ, "SLM_DEBUG": "1"})
    assert result.returncode != 0 and "Traceback" in result.stderr


def test_config_show_prints_defaults():
    result = runner.invoke(app, ["config", "show", str(SMOKE), "--set", "train.lora.r=4"])
    assert result.exit_code == 0
    assert "r: 4" in result.output and "run_name: smoke" in result.output
