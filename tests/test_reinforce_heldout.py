"""`slm evaluate`'s held-out calculation questions: base, SFT and RL side by side, exact to the 원, with Wilson
intervals and paired-bootstrap deltas (`fine_tuning.evaluate.calc_heldout`)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fine_tuning.evaluate.calc_heldout import SECTION, report_lines, summarize_variants
from fine_tuning.reinforce.prompts import generated_rows, write_rows
from slm_forest.config import RunConfig
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from tests.test_evaluate_tiny import copy_run, tiny_run

KINDS = ("income_tax", "corporate_tax")


def _scored(rows, exact: list[bool]) -> list[dict]:
    return [
        {
            "row_id": r.id,
            "kind": r.facts.kind,
            "answer": "",
            "truncated": False,
            "scores": {"final_amount": float(e), "partial_amount": float(e)},
            "exact": e,
        }
        for r, e in zip(rows, exact)
    ]


def test_accuracy_has_wilson_intervals_and_paired_deltas():
    rows = generated_rows(40, 3, KINDS, 0.0, 0.0)[:20]
    base = [i < 4 for i in range(20)]  # 4/20
    sft = [i < 16 for i in range(20)]  # 16/20, and right wherever base is
    metrics = summarize_variants(rows, {"base": _scored(rows, base), "sft": _scored(rows, sft)}, 500, 0)
    models = metrics["models"]
    assert models["base"]["exact"] == 4 and models["sft"]["accuracy"] == 0.8
    assert models["sft"]["wilson95"] == [0.584, 0.9193]  # Wilson score interval of 16/20 at 95 %
    delta = metrics["deltas"]["sft-base"]
    assert delta["delta"] == pytest.approx(0.6) and delta["significant"] and delta["low"] > 0.3
    assert set(metrics["deltas"]) == {"sft-base"}  # no RL model, no RL deltas
    same = summarize_variants(rows, {"base": _scored(rows, base), "sft": _scored(rows, base)}, 500, 0)
    assert same["deltas"]["sft-base"]["delta"] == 0 and not same["deltas"]["sft-base"]["significant"]
    lines = "\n".join(report_lines({"calc_heldout": metrics | {"source": "test"}}))
    assert SECTION in lines and "16/20" in lines and "0.584–0.919" in lines and "No RL column" in lines


def fake_rl_stage(run: Path, cfg: RunConfig, scale: float = 0.0) -> Path:
    """reinforce/ as the stage leaves it (prompts, adapter, summary, a manifest whose inputs are train's outputs), with
    the SFT adapter's lora_B scaled as the "RL" adapter: at 0 it is exactly the base model, so the RL column must
    answer as base does (and not as SFT)."""
    from safetensors.torch import load_file, save_file

    from slm_forest.manifest import Manifest, describe_files, read_manifest, write_manifest

    stage = run / "reinforce"
    rl = cfg.reinforce
    write_rows(stage / "prompts.jsonl", generated_rows(rl.questions, cfg.seed, tuple(rl.kinds) or KINDS, 0.1, 0.3))
    shutil.copytree(run / "train" / "adapter", stage / "adapter")
    weights = stage / "adapter" / "adapter_model.safetensors"
    tensors = load_file(str(weights))
    save_file({k: v * scale if "lora_B" in k else v for k, v in tensors.items()}, str(weights))
    summary = {"global_step": 4, "reward_first": 0.31, "reward_last": 0.52, "zero_variance_groups": 1, "groups": 4}
    (stage / "reinforce_summary.json").write_text(json.dumps(summary), encoding="utf-8")
    outputs = [stage / "prompts.jsonl", stage / "adapter", stage / "reinforce_summary.json"]
    manifest = Manifest(
        stage="reinforce",
        run_name=run.name,
        fingerprint="test-reinforce",
        config={},
        inputs=read_manifest(run / "train").outputs,
        outputs=describe_files(outputs, run),
        started_at="2026-01-01T00:00:00",
        finished_at="2026-01-01T00:00:01",
        seconds=1.0,
    )
    write_manifest(stage, manifest)
    return stage / "adapter"


@pytest.mark.slow
def test_evaluate_scores_base_sft_and_rl_on_the_held_out_calculations(tmp_path, tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    cfg = RunConfig.model_validate(
        {
            "run_name": run.name,
            "runs_dir": str(run.parent),
            "evaluate": {"max_examples": 2, "max_new_tokens": 8, "calc_questions": 4, "harness": False},
            "reinforce": {"questions": 40, "kinds": list(KINDS), "test_share": 0.3, "max_completion_length": 32},
        }
    )
    run_stage(cfg, "evaluate")
    calc = json.loads((run / "evaluate" / "metrics.json").read_text(encoding="utf-8"))["calc_heldout"]
    assert calc["n"] == 4 and set(calc["models"]) == {"base", "sft"} and calc["source"].startswith("generated")
    first = list(read_jsonl(run / "evaluate" / "calc_predictions.jsonl"))
    assert [r["id"] for r in first] == [
        r.id for r in generated_rows(40, cfg.seed, KINDS, 0.1, 0.3) if r.split == "test"
    ][:4]

    fake_rl_stage(run, cfg)
    report = run_stage(cfg, "evaluate")
    assert not report.skipped  # a finished reinforce stage changes evaluate's fingerprint
    calc = json.loads((run / "evaluate" / "metrics.json").read_text(encoding="utf-8"))["calc_heldout"]
    assert set(calc["models"]) == {"base", "sft", "rl"} and calc["source"].startswith("reinforce/prompts.jsonl")
    assert set(calc["deltas"]) == {"sft-base", "rl-base", "rl-sft"}
    assert calc["deltas"]["rl-base"]["delta"] == 0
    predictions = list(read_jsonl(run / "evaluate" / "calc_predictions.jsonl"))
    assert len(predictions) == 4 and all(p["expected_payable"] for p in predictions)
    assert all(p["rl"]["answer"] == p["base"]["answer"] for p in predictions)  # the zeroed adapter is the base
    assert any(p["sft"]["answer"] != p["base"]["answer"] for p in predictions)  # and the SFT adapter is not
    report_md = (run / "evaluate" / "report.md").read_text(encoding="utf-8")
    assert SECTION in report_md and "| RL |" in report_md and "RL − SFT" in report_md
    assert run_stage(cfg, "evaluate").skipped  # nothing changed: not rerun


def test_question_count_defaults_to_the_runs_that_use_reinforce(tmp_path):
    from fine_tuning.evaluate.calc_heldout import AUTO_QUESTIONS, question_limit

    plain = RunConfig.model_validate({"runs_dir": str(tmp_path)})
    assert question_limit(plain.run_dir(), plain) == 0  # the test split's calculation items are scored anyway
    enabled = RunConfig.model_validate({"runs_dir": str(tmp_path), "reinforce": {"enabled": True}})
    assert question_limit(enabled.run_dir(), enabled) == AUTO_QUESTIONS
    (plain.run_dir() / "reinforce").mkdir(parents=True)
    (plain.run_dir() / "reinforce" / "manifest.json").write_text("{}", encoding="utf-8")
    assert question_limit(plain.run_dir(), plain) == AUTO_QUESTIONS  # `slm reinforce` ran without enabled: true
    explicit = RunConfig.model_validate({"runs_dir": str(tmp_path), "evaluate": {"calc_questions": 3}})
    assert question_limit(explicit.run_dir(), explicit) == 3
