"""What a new user sees first: `--help` pages, the hint when an upstream stage is missing, `slm data stats` with
nothing rejected, the model card's snippet, and no warning from the tiny model's pretraining (issue 20)."""

from __future__ import annotations

import json
import re
import warnings
from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from slm_datagen.dataset.stats_cli import data_stats
from slm_forest.cli import app

COMMANDS = [
    ["collect"], ["prepare"], ["distill"], ["build"], ["train"], ["evaluate"], ["export"], ["run"], ["plan"],
    ["ask"], ["chat"], ["serve"], ["review"], ["config", "validate"], ["config", "show"], ["data", "stats"],
]  # fmt: skip


def _help(*command: str) -> str:
    result = CliRunner().invoke(app, [*command, "--help"], env={"COLUMNS": "160", "NO_COLOR": "1"})
    assert result.exit_code == 0, result.output
    return result.output


@pytest.mark.parametrize("command", COMMANDS, ids=" ".join)
def test_help_shows_flags_as_flags_and_arguments_as_arguments(command):
    text = _help(*command)
    usage = next(line for line in text.splitlines() if "Usage:" in line)
    assert "{" not in usage and not re.search(r"\b[a-z_]+\b(?<!OPTIONS)\s*$", usage.split("[OPTIONS]")[-1]), usage
    assert "<bool>" not in text and "<str>" not in text and "<int" not in text and "list[" not in text, text
    assert "<path>" not in text and "<float" not in text


def test_help_examples_read_as_a_user_would_type_them():
    train = _help("train")
    assert re.search(r"Usage: .* train \[OPTIONS\] CONFIG\s*$", train, re.M), train
    assert re.search(r"--force\s+redo the stage", train) and re.search(r"--set\s+KEY=VALUE\s+override", train)
    assert re.search(r"--port\s+INTEGER", _help("serve"))
    assert re.search(r"Usage: .* ask \[OPTIONS\] \[QUESTION\]", _help("ask"))
    assert re.search(r"│ \*\s+CONFIG\s+PATH\s+the run's YAML config", _help("review"))


def test_command_descriptions_share_one_style():
    listed = [line for line in _help().splitlines() if re.match(r"^│ [a-z]+ {2,}\S", line)]
    assert len(listed) >= 15
    for line in listed:
        description = line.strip("│ ").split(None, 1)[1].rstrip(" │")
        assert description[0].isupper() and description.endswith("."), line


def _write_split(path: Path, rows: int) -> None:
    row = {
        "messages": [{"role": "user", "content": "부가가치세 신고 기한은?"}, {"role": "assistant", "content": "25일"}],
        "meta": {"kind": "statute", "law_name": "부가가치세법", "teacher": "offline", "model": "rules"},
    }
    path.write_text("".join(json.dumps(row, ensure_ascii=False) + "\n" for _ in range(rows)), encoding="utf-8")


def test_data_stats_says_in_words_when_no_check_rejected_anything(tmp_path):
    for name, rows in (("train.jsonl", 3), ("val.jsonl", 1), ("test.jsonl", 1)):
        _write_split(tmp_path / name, rows)
    app = typer.Typer()
    app.command()(data_stats)
    result = CliRunner().invoke(app, [str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "quality checks: no rule rejected or flagged any pair" in result.stdout
    assert not re.search(r"quality checks\s*\n\s*[┏╭┌]", result.stdout)  # no empty table under the title

    (tmp_path / "rejected.jsonl").write_text(json.dumps({"rule": "refusal", "pair": {}}) + "\n", encoding="utf-8")
    result = CliRunner().invoke(app, [str(tmp_path)], env={"COLUMNS": "120"})
    assert result.exit_code == 0, result.output
    assert "no rule rejected" not in result.stdout and "refusal" in result.stdout


def test_tiny_pretraining_prints_no_warning(tmp_path):
    from fine_tuning.train.tiny import build_tiny_model

    texts = ["부가가치세는 재화와 용역의 공급에 대하여 과세한다. " * 5] * 40
    with warnings.catch_warnings():
        warnings.simplefilter("error", UserWarning)  # `float()` on a tensor that requires grad warned in every run
        build_tiny_model("tiny-random-phi", tmp_path / "tiny", texts, 0, {"pretrain_steps": 2})
    assert (tmp_path / "tiny" / "config.json").is_file()


def _config(tmp_path: Path) -> Path:
    config = tmp_path / "run.yaml"
    config.write_text(f"run_name: fresh\nruns_dir: {tmp_path / 'runs'}\n", encoding="utf-8")
    return config


def test_train_without_a_dataset_suggests_the_command_that_works(tmp_path, capsys):
    from slm_forest.cli import app

    config = _config(tmp_path)
    result = CliRunner().invoke(app, ["train", str(config)])
    assert result.exit_code != 0 and result.exception is not None
    message, hint = str(result.exception), result.exception.hint
    assert "stage 'train' needs 'build', whose manifest is missing" in message
    # `slm build` would only fail again (distill missing): the hint is the run that starts at collect
    assert hint.startswith(f"run `slm run {config} --to train`: it starts at 'collect'")
    assert "slm build" not in hint


def test_only_one_missing_upstream_is_named_directly(tmp_path):
    from slm_forest.manifest import Manifest, write_manifest
    from slm_forest.pipeline import STAGES, _missing_upstream_hint

    runs = tmp_path / "runs" / "fresh"
    for stage in ("collect", "prepare", "distill"):
        (runs / stage).mkdir(parents=True)
        manifest = Manifest(
            stage=stage, run_name="fresh", fingerprint="x", config={}, started_at="", finished_at="", seconds=0.0
        )
        write_manifest(runs / stage, manifest)
    hint = _missing_upstream_hint("run.yaml", STAGES["train"], runs)
    assert hint == "run `slm build run.yaml` first"


def test_the_model_cards_snippet_prints_only_the_answer(tmp_path, capsys):
    from fine_tuning.export.card import render_card
    from fine_tuning.train.tiny import build_tiny_model

    model_dir = build_tiny_model("tiny-random-phi", tmp_path / "m", ["부가가치세 신고 기한은 25일 이내입니다."] * 20, 0)
    card = render_card("r", {"base_model": "tiny-random-phi"}, {}, {}, None, {"dtype": "float32"}, "gemma")
    snippet = card.split("```python\n", 1)[1].split("```", 1)[0]
    exec(snippet.replace("PATH_OR_REPO", str(model_dir)).replace("max_new_tokens=256", "max_new_tokens=8"), {})
    printed = capsys.readouterr().out
    assert printed.strip() and "부가가치세 신고는 언제 해야 하나요" not in printed and "user" not in printed
