"""`slm evaluate` end to end on a tiny trained run, through the stage runner: files, numbers, report sections."""

from __future__ import annotations

import json

import pytest

from fine_tuning.evaluate.report import SECTIONS
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from tests.test_evaluate_tiny import copy_run, refresh_manifest, tiny_run


def _config(run_dir, **evaluate) -> RunConfig:
    return RunConfig.model_validate({"run_name": run_dir.name, "runs_dir": str(run_dir.parent), "evaluate": evaluate})


@pytest.mark.slow
def test_evaluate_stage_end_to_end(tmp_path, tmp_path_factory, shared_dir):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    dev = shared_dir / "benchmarks" / "kmmlu" / "Taxation-dev.csv"
    cfg = _config(
        run, max_examples=6, max_new_tokens=24, batch_size=4, benchmarks=[str(dev)], few_shot=1, harness=False
    )

    report = run_stage(cfg, "evaluate")

    stage = run / "evaluate"
    for name in (
        "predictions.jsonl",
        "metrics.json",
        "report.md",
        "metrics.png",
        "groups.png",
        "loss.png",
        "benchmark_predictions.jsonl",
        "manifest.json",
    ):
        assert (stage / name).is_file(), name
    assert report.counts == {"test_examples": 12, "generated": 6, "benchmark_questions": 5}
    manifest = json.loads((stage / "manifest.json").read_text(encoding="utf-8"))
    assert any(entry["path"].endswith("Taxation-dev.csv") for entry in manifest["inputs"])  # benchmarks fingerprinted

    rows = list(read_jsonl(stage / "predictions.jsonl"))
    assert len(rows) == 6
    for row in rows:
        for which in ("base", "tuned"):
            answer = row[which]
            assert answer["finish_reason"] in ("stop", "length") and answer["tokens"] <= 24
            assert 0 <= answer["scores"]["chrf"] <= 100 and 0 <= answer["scores"]["rouge_l"] <= 1
    calculations = [r for r in rows if r["style"] == "calculation"]
    assert calculations and all(r["tuned"]["scores"]["numeric"]["expected"] for r in calculations)
    assert all(r["tuned"]["scores"]["numeric"]["correct"] in (True, False) for r in calculations)

    metrics = json.loads((stage / "metrics.json").read_text(encoding="utf-8"))
    loss = metrics["loss"]["test"]
    # the adapter was trained on these answers: the tuned model must be measurably better than its base
    assert loss["tuned"]["all"]["loss"] < loss["base"]["all"]["loss"] - 0.3
    assert loss["tuned"]["all"]["perplexity"] < loss["base"]["all"]["perplexity"]
    assert set(loss["base"]) >= {"all", "law:소득세법", "kind:statute_article", "kind:interpretation"}
    assert metrics["loss"]["val"]["base"]["all"]["examples"] == 3
    gen = metrics["generation"]
    assert gen["tuned"]["all"]["n"] == 6 and gen["tuned"]["all"]["chrf"] > gen["base"]["all"]["chrf"]
    assert "law:부가가치세법" in gen["tuned"]
    headline = {row["metric"]: row for row in metrics["headline"]}
    test_loss = headline["test loss (answer tokens)"]
    assert test_loss["delta"] < 0 and test_loss["higher_is_better"] is False
    # every delta carries its paired-bootstrap interval; the loss gain of a trained adapter is significant
    low, high = test_loss["ci95"]
    assert low <= test_loss["delta"] <= high < 0 and test_loss["significant"] and test_loss["verdict"] == "better"
    assert metrics["loss"]["test"]["delta"]["loss"]["resamples"] == 1000
    assert "citation F1 (law + 조 + 항)" in headline and "hallucinated citations (share of cited)" in headline
    assert metrics["verdict"].startswith("Tuned is better than base")
    (bench,) = metrics["benchmarks"]
    assert [p["key"] for p in bench["protocols"]] == ["cloze-0", "cloze-0-norm", "cloze-1", "cloze-1-norm"]
    for p in bench["protocols"]:
        assert p["n"] == 4 and p["base"]["micro_ci95"] and p["delta_macro"]["level"] == 0.95
        name = f"Taxation-dev accuracy, macro ({p['protocol']})"
        assert headline[name]["tuned"] == p["tuned"]["macro"] and headline[name]["headline_average"]
    assert {row["protocol"] for row in read_jsonl(stage / "benchmark_predictions.jsonl")} == {"cloze-0", "cloze-1"}

    text = (stage / "report.md").read_text(encoding="utf-8")
    for section in SECTIONS:
        assert section in text, section
    assert "![training loss](loss.png)" in text and "![base vs tuned](metrics.png)" in text
    assert "| test loss (answer tokens) | 6 |" not in text and "| test loss (answer tokens) | 12 |" in text
    assert "▲ better" in text and f"**{metrics['verdict']}**" in text
    assert "| Taxation-dev | cloze 0-shot (option log-likelihood" in text and "| 4 | first 1 rows" in text
    assert text.count("### ") == 5  # worst answers
    assert "Off (`evaluate.judge` is not set)" in text

    # unchanged config and inputs: the runner skips the stage
    assert run_stage(cfg, "evaluate").skipped


def test_evaluate_needs_a_test_split(tmp_path, tmp_path_factory):
    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    (run / "build" / "test.jsonl").write_text("", encoding="utf-8")
    refresh_manifest(run, "build")  # a build that really left the split empty, not an edited one
    with pytest.raises(SlmError, match="test.jsonl: no examples"):
        run_stage(_config(run), "evaluate")


@pytest.mark.slow
def test_real_train_stage_feeds_evaluate_and_export(tmp_path, tmp_path_factory):
    """The files `slm train` itself writes (TRL, not the fixture's loop) are what evaluate and export read."""
    import shutil

    from fine_tuning.serve.generate import load_model, resolve_source

    run = copy_run(tiny_run(tmp_path_factory), tmp_path)
    shutil.rmtree(run / "train")
    cfg = RunConfig.model_validate(
        {
            "run_name": run.name,
            "runs_dir": str(run.parent),
            "train": {
                "base_model": "tiny-random-phi",
                "max_steps": 4,
                "micro_batch_size": 4,
                "eval_steps": 2,
                "save_steps": 2,
                "logging_steps": 1,
                "report_to": [],
                "max_length": 256,
                "learning_rate": 0.005,
            },
            "evaluate": {"max_examples": 2, "max_new_tokens": 8},
        }
    )
    run_stage(cfg, "train")
    evaluated = run_stage(cfg, "evaluate")
    assert evaluated.counts["generated"] == 2
    metrics = json.loads((run / "evaluate" / "metrics.json").read_text(encoding="utf-8"))
    assert metrics["loss"]["test"]["tuned"]["all"]["tokens"] > 0
    assert "![training loss](loss.png)" in (run / "evaluate" / "report.md").read_text(encoding="utf-8")
    run_stage(cfg, "export")
    assert (run / "export" / "merged" / "model.safetensors").is_file() and (run / "export" / "Modelfile").is_file()
    loaded = load_model(resolve_source(run=run.name, runs_dir=run.parent), device="cpu")
    assert loaded.source.kind == "merged" and loaded.stop_ids
