"""The train stage through the pipeline runner: artifacts, summary, logs, reload for inference, resume after a kill."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import write_jsonl
from slm_forest.manifest import Manifest, describe_files, read_manifest, write_manifest
from slm_forest.pipeline import run_stage

REPO_ROOT = Path(__file__).resolve().parent.parent
SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
LAWS = ["소득세법", "법인세법", "부가가치세법", "상속세 및 증여세법", "국세기본법", "조세특례제한법"]
TOPICS = [
    ("납세의무자", "거주자와 비거주자 모두 국내원천소득에 대하여 납세의무를 집니다."),
    ("과세표준", "총수입금액에서 필요경비를 뺀 금액을 과세표준으로 합니다."),
    ("신고기한", "과세기간이 끝난 날이 속하는 달의 말일부터 3개월 이내에 신고합니다."),
    ("가산세", "신고를 하지 아니한 경우 납부할 세액의 100분의 20을 가산세로 냅니다."),
]


def example(i: int) -> dict:
    law, (topic, answer) = LAWS[i % len(LAWS)], TOPICS[i % len(TOPICS)]
    article = 10 + i
    return {
        "id": f"sft-{i:04d}",
        "messages": [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": f"{law} 제{article}조의 {topic}에 대해 알려주세요."},
            {"role": "assistant", "content": f"{law} 제{article}조에 따르면 {answer}"},
        ],
        "meta": {"law_name": law},
    }


def write_build(runs_dir: Path, run_name: str, n_train: int = 48, n_val: int = 8) -> None:
    """A build stage as slm_datagen leaves it: train/val JSONL of SFTExample rows and a complete manifest."""
    run_dir = runs_dir / run_name
    build = run_dir / "build"
    files = [build / "train.jsonl", build / "val.jsonl"]
    write_jsonl(files[0], [example(i) for i in range(n_train)])
    write_jsonl(files[1], [example(i) for i in range(1000, 1000 + n_val)])
    write_manifest(
        build,
        Manifest(
            stage="build",
            run_name=run_name,
            fingerprint="test-build",
            config={},
            outputs=describe_files(files, run_dir),
            counts={"train": n_train, "val": n_val},
            started_at="2026-01-01T00:00:00",
            finished_at="2026-01-01T00:00:01",
            seconds=1.0,
        ),
    )


def config(runs_dir: Path, run_name: str, *overrides: str):
    return load_config(
        None,
        [
            f"runs_dir={runs_dir}",
            f"run_name={run_name}",
            "train.max_length=128",
            "train.learning_rate=0.005",
            "train.logging_steps=1",
            "train.micro_batch_size=4",
            *overrides,
        ],
    )


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="module")
def trained(runs_dir):
    """One tiny Phi LoRA run through `run_stage`, shared by the assertions below."""
    write_build(runs_dir, "phi")
    cfg = config(
        runs_dir,
        "phi",
        "train.max_steps=10",
        "train.eval_steps=5",
        "train.save_steps=5",
        "train.report_to=[tensorboard]",
    )
    report = run_stage(cfg, "train")
    return cfg, report, runs_dir / "phi" / "train"


@pytest.mark.slow
def test_stage_writes_the_adapter_and_nothing_else_in_it(trained):
    cfg, report, stage = trained
    assert report.complete and not report.skipped and report.counts["steps"] == 10
    assert sorted(p.name for p in (stage / "adapter").iterdir()) == [
        "README.md",
        "adapter_config.json",
        "adapter_model.safetensors",
    ]
    assert {
        "adapter",
        "tokenizer",
        "base_model",
        "checkpoints",
        "tb",
        "trainer_log.jsonl",
        "loss.png",
        "train_summary.json",
        "manifest.json",
    } <= {p.name for p in stage.iterdir()}
    manifest = read_manifest(stage)
    listed = {entry.path for entry in manifest.outputs}
    assert "train/adapter/adapter_model.safetensors" in listed and "train/train_summary.json" in listed
    from fine_tuning.train.chat_templates import has_generation_markers

    assert has_generation_markers((stage / "tokenizer" / "chat_template.jinja").read_text(encoding="utf-8"))


@pytest.mark.slow
def test_summary_logs_and_plot(trained):
    _, _, stage = trained
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["method"] == "lora" and summary["dtype"] == "fp32" and summary["device"] == "cpu"
    assert summary["global_step"] == 10 and summary["model_class"] == "PhiForCausalLM"
    assert set(summary["preflight"]["checks"]) == {
        "generation_markers",
        "assistant_mask",
        "end_of_turn",
        "max_length",
        "pad_token",
    }
    assert summary["tokens"]["real_token_share"] == 1.0  # bfd packing, padding-free
    assert 0.2 < summary["tokens"]["trained_token_share"] < 0.9
    assert summary["timing"]["median_step_seconds"] > 0 and summary["best_checkpoint"] in (
        "checkpoint-5",
        "checkpoint-10",
    )
    log = [json.loads(line) for line in (stage / "trainer_log.jsonl").read_text(encoding="utf-8").splitlines()]
    train_steps = [row["step"] for row in log if "loss" in row]
    assert train_steps == list(range(1, 11))
    assert [row["step"] for row in log if "eval_loss" in row] == [5, 10]
    first, last = log[0]["loss"], [row["loss"] for row in log if "loss" in row][-1]
    assert last < first  # it learned something
    assert (stage / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert any(p.name.startswith("events.out.tfevents") for p in (stage / "tb").rglob("*"))


@pytest.mark.slow
def test_trained_run_reloads_for_inference_and_differs_from_the_base(trained):
    import torch
    from safetensors.torch import load_file
    from transformers import AutoModelForCausalLM

    from fine_tuning.train.loading import load_trained

    _, _, stage = trained
    adapter = load_file(str(stage / "adapter" / "adapter_model.safetensors"))
    lora_b = [t for name, t in adapter.items() if "lora_B" in name]
    assert lora_b and all(t.abs().sum() > 0 for t in lora_b)  # PEFT starts every B at zero

    model, tokenizer = load_trained(stage)
    assert type(model.get_base_model()).__name__ == "PhiForCausalLM" and not model.training
    base = AutoModelForCausalLM.from_pretrained(stage / "base_model").eval()
    prompt = tokenizer.apply_chat_template(
        example(3)["messages"][:2], add_generation_prompt=True, return_tensors="pt", return_dict=True
    )
    with torch.no_grad():
        assert not torch.allclose(model(**prompt).logits, base(**prompt).logits)
        out = model.generate(**prompt, max_new_tokens=8, do_sample=False)
    assert out.shape[1] > prompt["input_ids"].shape[1]


@pytest.mark.slow
def test_unchanged_rerun_is_skipped(trained):
    cfg, _, _ = trained
    assert run_stage(cfg, "train").skipped


@pytest.mark.slow
def test_multimodal_gemma_without_val_split_trains_and_reloads_on_its_class(runs_dir):
    from fine_tuning.train.loading import load_trained

    write_build(runs_dir, "mm", n_train=16, n_val=0)
    cfg = config(runs_dir, "mm", "train.base_model=tiny-random-gemma3-mm", "train.max_steps=3", "train.report_to=[]")
    report = run_stage(cfg, "train")
    stage = runs_dir / "mm" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert report.counts == {"train_examples": 16, "val_examples": 0, "steps": 3}
    # text data: the language model alone (no vision tower in memory; export.keep_vision puts it back)
    assert summary["model_class"] == "Gemma3ForCausalLM" and summary["eval_loss"] is None
    assert summary["vision_tower"].startswith("not loaded") and summary["attn_implementation"]["loaded"] == "sdpa"
    targets = json.loads((stage / "adapter" / "adapter_config.json").read_text())["target_modules"]
    assert "language_model" in str(targets)  # the registry's regex, which also matches the text model's names
    model, _ = load_trained(stage)  # the language model of the multimodal base, with the trained weights
    assert type(model.get_base_model()).__name__ == "Gemma3ForCausalLM"


@pytest.mark.slow
def test_rising_eval_loss_stops_early_and_keeps_the_best_adapter(runs_dir):
    from safetensors.torch import load_file

    write_build(runs_dir, "diverge", n_train=32, n_val=8)
    # a learning rate this high makes the eval loss rise after the first evaluation
    cfg = config(
        runs_dir,
        "diverge",
        "train.learning_rate=0.5",
        "train.max_steps=30",
        "train.eval_steps=2",
        "train.save_steps=2",
        "train.early_stopping_patience=1",
        "train.save_total_limit=1",
        "train.report_to=[]",
    )
    run_stage(cfg, "train")
    stage = runs_dir / "diverge" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["stopped_early"] and summary["global_step"] < 30
    assert summary["best_eval_loss"] < summary["eval_loss"]
    best = stage / "checkpoints" / summary["best_checkpoint"]
    final = load_file(str(stage / "adapter" / "adapter_model.safetensors"))
    kept = load_file(str(best / "adapter_model.safetensors"))
    assert all(final[k].equal(kept[k]) for k in final)  # the saved adapter is the best one, not the last


@pytest.mark.slow
def test_base_without_chat_template_trains_in_phi2_instruct_output_format(runs_dir, tmp_path_factory):
    """Phi-2 ships no chat template: a local Phi checkpoint without one gets the Instruct/Output format, eos as the
    trained end of turn, and inference loads it from its own path (no base_model/ copy)."""
    from fine_tuning.train.loading import load_trained
    from fine_tuning.train.tiny import build_tiny_model

    base = build_tiny_model(
        "tiny-random-phi",
        tmp_path_factory.mktemp("phi_like") / "base",
        [m["content"] for i in range(8) for m in example(i)["messages"]],
        seed=5,
    )
    (base / "chat_template.jinja").unlink()
    write_build(runs_dir, "phi2", n_train=16, n_val=4)
    run_stage(config(runs_dir, "phi2", f"train.base_model={base}", "train.max_steps=3", "train.report_to=[]"), "train")
    stage = runs_dir / "phi2" / "train"
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["chat_template"] == "slm:phi2" and summary["end_of_turn_token"] == "<eos>"
    assert summary["base_model_dir"] is None and not (stage / "base_model").exists()
    assert "Instruct: " in (stage / "tokenizer" / "chat_template.jinja").read_text(encoding="utf-8")
    model, tokenizer = load_trained(stage)
    prompt = tokenizer.apply_chat_template(example(1)["messages"][:2], add_generation_prompt=True, tokenize=False)
    assert prompt.startswith("Instruct: ") and prompt.endswith("\nOutput:")


@pytest.mark.slow
def test_preflight_failure_stops_the_stage_before_training(runs_dir):
    write_build(runs_dir, "short", n_train=8, n_val=0)
    cfg = config(runs_dir, "short", "train.max_length=24", "train.max_steps=3", "train.report_to=[]")
    with pytest.raises(SlmError, match=r"sft-0000: its prompt is \d+ tokens, so train\.max_length=24") as failure:
        run_stage(cfg, "train")
    assert "\n" not in str(failure.value) and "raise train.max_length" in str(failure.value)
    stage = runs_dir / "short" / "train"
    assert read_manifest(stage) is None and not (stage / "adapter").exists()
    assert not list((stage / "checkpoints").glob("checkpoint-*"))


def _checkpoints_of_another_config(stage: Path) -> list[Path]:
    """Two complete checkpoints and the resume key of some earlier configuration, as a previous run leaves them."""
    from fine_tuning.train.checkpoints import RESUME_KEY_FILE

    out = stage / "checkpoints"
    folders = []
    for step in (2, 4):
        folder = out / f"checkpoint-{step}"
        folder.mkdir(parents=True)
        for name in ("adapter_config.json", "adapter_model.safetensors", "trainer_state.json"):
            (folder / name).write_text("{}")
        folders.append(folder)
    (out / RESUME_KEY_FILE).write_text(json.dumps({"key": "an-earlier-config"}))
    return folders


@pytest.mark.slow
def test_checkpoints_of_another_config_survive_a_rerun_that_fails_its_checks(runs_dir, tmp_path):
    """Stale checkpoints are removed only after the template choice, the rendering check and the preflight passed."""
    from fine_tuning.train.checkpoints import RESUME_KEY_FILE

    write_build(runs_dir, "keep", n_train=8, n_val=0)
    stage = runs_dir / "keep" / "train"
    old = _checkpoints_of_another_config(stage)
    # 1. preflight fails (answers cut by max_length)
    with pytest.raises(SlmError, match="train.max_length=24"):
        run_stage(config(runs_dir, "keep", "train.max_length=24", "train.max_steps=2", "train.report_to=[]"), "train")
    assert all(folder.is_dir() for folder in old)
    assert json.loads((stage / "checkpoints" / RESUME_KEY_FILE).read_text())["key"] == "an-earlier-config"
    # 2. the chat template choice fails (a template without generation markers)
    plain = tmp_path / "plain.jinja"
    plain.write_text("{% for m in messages %}{{ m['content'] }}{% endfor %}", encoding="utf-8")
    with pytest.raises(SlmError, match="generation"):
        run_stage(
            config(runs_dir, "keep", f"train.chat_template={plain}", "train.max_steps=2", "train.report_to=[]"), "train"
        )
    assert all(folder.is_dir() for folder in old)
    # 3. a run that passes its checks replaces them
    run_stage(config(runs_dir, "keep", "train.max_steps=2", "train.save_steps=2", "train.report_to=[]"), "train")
    assert not any(folder.exists() and (folder / "trainer_state.json").read_text() == "{}" for folder in old)
    assert (stage / "checkpoints" / "checkpoint-2" / "adapter_model.safetensors").stat().st_size > 100
    assert json.loads((stage / "checkpoints" / RESUME_KEY_FILE).read_text())["key"] != "an-earlier-config"


@pytest.mark.slow
def test_resumed_run_keeps_the_early_stopping_counter(runs_dir, monkeypatch):
    """A resumed run restores the EarlyStopping callback's patience counter from the checkpoint (Trainer's
    restore_callback_states_from_checkpoint); the patience itself follows the config, which may change."""
    from transformers import TrainerCallback

    import fine_tuning.train.stage as train

    seen: list[tuple[int, int]] = []  # per run: (counter, patience) as its first step starts
    build_trainer = train.make_trainer

    def probing_trainer(*args, **kwargs):
        trainer = build_trainer(*args, **kwargs)
        # The counter climbs only at evaluations that do not improve on the best eval_loss. A real loss curve
        # cannot promise that: on the tiny model even lr 0.5 lowers the eval loss at 6 of 7 evaluations, and
        # each new best resets the counter to 0. So the reported eval loss is the step number: every evaluation
        # after the first is worse than the best, and the counter at step s is exactly s - 1.
        evaluation_loop = trainer.evaluation_loop

        def rising_eval_loss(*loop_args, **loop_kwargs):
            output = evaluation_loop(*loop_args, **loop_kwargs)
            output.metrics["eval_loss"] = float(trainer.state.global_step)
            return output

        trainer.evaluation_loop = rising_eval_loss

        class Probe(TrainerCallback):  # the callbacks as the run's first step starts, before any evaluation
            looked = False

            def on_step_begin(self, args, state, control, **kwargs):
                if not self.looked:
                    self.looked = True
                    seen.extend(
                        (cb.early_stopping_patience_counter, cb.early_stopping_patience)
                        for cb in trainer.callback_handler.callbacks
                        if hasattr(cb, "early_stopping_patience_counter")
                    )

        trainer.add_callback(Probe())
        return trainer

    monkeypatch.setattr(train, "make_trainer", probing_trainer)
    write_build(runs_dir, "patience", n_train=32, n_val=8)
    common = ["train.learning_rate=0.5", "train.eval_steps=1", "train.save_steps=2", "train.report_to=[]"]
    run_stage(config(runs_dir, "patience", "train.max_steps=8", "train.early_stopping_patience=20", *common), "train")
    assert seen == [(0, 20)]  # a fresh run starts counting from 0
    stage = runs_dir / "patience" / "train"
    state = json.loads((stage / "checkpoints" / "checkpoint-8" / "trainer_state.json").read_text(encoding="utf-8"))
    saved = state["stateful_callbacks"]["EarlyStopping"]
    assert saved["args"]["early_stopping_patience"] == 20
    assert saved["attributes"]["early_stopping_patience_counter"] == 7  # evaluations 2..8 were all worse

    # max_steps and the patience may change between a stop and the resumption (they are not part of the resume key)
    run_stage(config(runs_dir, "patience", "train.max_steps=10", "train.early_stopping_patience=25", *common), "train")
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["resumed_from"] == "checkpoint-8" and summary["global_step"] == 10
    assert seen[1:] == [(7, 25)]  # the counter came back from the checkpoint, the patience from the config
    # and it kept counting from there: evaluations 9 and 10 were worse too
    state = json.loads((stage / "checkpoints" / "checkpoint-10" / "trainer_state.json").read_text(encoding="utf-8"))
    assert state["stateful_callbacks"]["EarlyStopping"]["attributes"]["early_stopping_patience_counter"] == 9


# ------------------------------------------------------------------------------------------------------ resume
KILL_SCRIPT = """
import sys, time
from transformers import TrainerCallback
import fine_tuning.train.stage as train
from slm_forest.config import load_config
from slm_forest.pipeline import run_stage

class SlowSteps(TrainerCallback):  # leaves time to kill the run between two checkpoints
    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(0.4)

build_trainer = train.make_trainer
def slow_trainer(*args, **kwargs):
    trainer = build_trainer(*args, **kwargs)
    trainer.add_callback(SlowSteps())
    return trainer

train.make_trainer = slow_trainer
run_stage(load_config(None, sys.argv[1:]), "train")
"""


@pytest.mark.slow
def test_killed_run_resumes_with_optimizer_state_to_the_same_final_step(runs_dir, tmp_path):
    import torch

    write_build(runs_dir, "resume", n_train=32, n_val=8)
    args = [
        f"runs_dir={runs_dir}",
        "run_name=resume",
        "train.max_length=128",
        "train.learning_rate=0.005",
        "train.logging_steps=1",
        "train.max_steps=12",
        "train.save_steps=4",
        "train.eval_steps=4",
        "train.report_to=[]",
        "train.early_stopping_patience=null",
    ]
    script = tmp_path / "kill_me.py"
    script.write_text(KILL_SCRIPT, encoding="utf-8")
    env = {
        **os.environ,
        "OMP_NUM_THREADS": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO_ROOT), os.environ.get("PYTHONPATH")])),
    }
    checkpoints = runs_dir / "resume" / "train" / "checkpoints"
    proc = subprocess.Popen(
        [sys.executable, str(script), *args], env=env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.time() + 120
        while not (checkpoints / "checkpoint-4" / "trainer_state.json").exists():
            if proc.poll() is not None:
                pytest.fail(f"training subprocess exited early: {proc.stderr.read().decode()[-2000:]}")
            if time.time() > deadline:
                pytest.fail("no checkpoint-4 within 120 s")
            time.sleep(0.05)
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == -signal.SIGKILL
    assert not (checkpoints / "checkpoint-12").exists()
    assert read_manifest(runs_dir / "resume" / "train") is None  # a killed stage never claims to be done

    from typer.testing import CliRunner

    from slm_forest.cli import app

    result = CliRunner().invoke(app, ["train", str(write_config(tmp_path, args)), "--resume"])
    assert result.exit_code == 0, result.output
    summary = json.loads((runs_dir / "resume" / "train" / "train_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 12
    assert summary["resumed_from"] in ("checkpoint-4", "checkpoint-8")
    # AdamW's per-parameter step counter: 12 only if the optimizer state came back from the checkpoint
    optimizer = torch.load(checkpoints / "checkpoint-12" / "optimizer.pt", weights_only=False)
    assert {int(state["step"]) for state in optimizer["state"].values()} == {12}
    log = [json.loads(line) for line in (runs_dir / "resume" / "train" / "trainer_log.jsonl").read_text().splitlines()]
    assert [row["step"] for row in log if "loss" in row] == list(range(1, 13))  # whole history, no duplicates

    # and it ends where an uninterrupted run with the same config ends
    from safetensors.torch import load_file

    write_build(runs_dir, "straight", n_train=32, n_val=8)
    straight = [a.replace("run_name=resume", "run_name=straight") for a in args]
    run_stage(load_config(None, straight), "train")
    resumed = load_file(str(runs_dir / "resume" / "train" / "adapter" / "adapter_model.safetensors"))
    uninterrupted = load_file(str(runs_dir / "straight" / "train" / "adapter" / "adapter_model.safetensors"))
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.allclose(resumed[k], uninterrupted[k], atol=1e-5) for k in resumed)


def write_config(directory: Path, overrides: list[str]) -> Path:
    """The overrides as a YAML config file, for the CLI."""
    import yaml

    data: dict = {}
    for item in overrides:
        key, value = item.split("=", 1)
        target = data
        *parents, last = key.split(".")
        for part in parents:
            target = target.setdefault(part, {})
        target[last] = yaml.safe_load(value)
    path = directory / "run.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    return path


def test_resume_rules_without_training(tmp_path):
    from fine_tuning.train.checkpoints import RESUME_KEY_FILE, last_complete_checkpoint, resolve_resume

    out = tmp_path / "checkpoints"
    with pytest.raises(SlmError, match="--resume: no complete checkpoint"):
        resolve_resume(out, "key-a", requested=True)
    assert resolve_resume(out, "key-a", requested=False) is None  # fresh start records the key
    assert json.loads((out / RESUME_KEY_FILE).read_text())["key"] == "key-a"

    for step, complete in ((2, True), (4, True), (6, False)):  # checkpoint-6 was being written when the pod died
        folder = out / f"checkpoint-{step}"
        folder.mkdir()
        for name in ("adapter_config.json", "adapter_model.safetensors"):
            (folder / name).write_text("{}")
        if complete:
            (folder / "trainer_state.json").write_text("{}")
    assert last_complete_checkpoint(out) == out / "checkpoint-4"
    assert resolve_resume(out, "key-a", requested=False) == out / "checkpoint-4"  # automatic
    assert resolve_resume(out, "key-a", requested=True) == out / "checkpoint-4"
    with pytest.raises(SlmError, match="another train config"):
        resolve_resume(out, "key-b", requested=True)
    assert resolve_resume(out, "key-b", requested=False) is None  # other config: start over, old checkpoints go
    assert not list(out.glob("checkpoint-*"))


def test_deciding_about_stale_checkpoints_deletes_nothing(tmp_path):
    from fine_tuning.train.checkpoints import RESUME_KEY_FILE, commit_fresh_start, decide_resume

    out = tmp_path / "checkpoints"
    old = _checkpoints_of_another_config(tmp_path)
    decision = decide_resume(out, "key-new", requested=False)
    assert decision.checkpoint is None and decision.stale == old
    assert all(folder.is_dir() for folder in old)  # deciding removes nothing
    other_rank = decide_resume(out, "key-new", requested=False, main_process=False)
    assert other_rank.checkpoint is None and other_rank.stale == []  # only the main process ever removes
    commit_fresh_start(other_rank)
    assert all(folder.is_dir() for folder in old)
    commit_fresh_start(decision)
    assert not any(folder.exists() for folder in old)
    assert json.loads((out / RESUME_KEY_FILE).read_text())["key"] == "key-new"


def test_resume_key_ignores_schedule_knobs_but_not_the_model():
    from fine_tuning.train.checkpoints import resume_key

    base = load_config(None).train
    same = load_config(None, ["train.max_steps=500", "train.save_steps=100", "train.eval_steps=50"]).train
    other = load_config(None, ["train.learning_rate=1e-5"]).train
    assert resume_key(base, 42, ["h"]) == resume_key(same, 42, ["h"])
    assert resume_key(base, 42, ["h"]) != resume_key(other, 42, ["h"])
    assert resume_key(base, 42, ["h"]) != resume_key(base, 42, ["other data"])
    # the optimizer is part of the key; its default (what earlier checkpoints used) keeps their keys unchanged
    paged = load_config(None, ["train.optim=paged_adamw_8bit"]).train
    assert resume_key(base, 42, ["h"]) != resume_key(paged, 42, ["h"])
    # keys added later (optim; truncated, attn_implementation, max_truncated_share in issue 14) at their defaults
    # and (issues 14/15) quantization, master_weights and lora.modules_to_save
    added = ("optim", "truncated", "attn_implementation", "max_truncated_share", "quantization", "master_weights")
    legacy = {k: v for k, v in base.model_dump(mode="json").items() if k not in added}
    legacy["lora"] = {k: v for k, v in legacy["lora"].items() if k != "modules_to_save"}
    import hashlib

    from fine_tuning.train.checkpoints import _RESUME_FREE_KEYS

    section = {k: v for k, v in legacy.items() if k not in _RESUME_FREE_KEYS}
    payload = json.dumps({"train": section, "seed": 42, "data": ["h"]}, sort_keys=True, ensure_ascii=False)
    assert resume_key(base, 42, ["h"]) == hashlib.sha256(payload.encode()).hexdigest()


def test_config_errors_name_the_key(monkeypatch):
    from fine_tuning.train.checks import check_schedule, report_targets

    with pytest.raises(SlmError, match=r"train\.save_steps=30 is not a multiple of train\.eval_steps=20"):
        check_schedule(load_config(None, ["train.save_steps=30", "train.eval_steps=20"]).train, has_eval=True)
    check_schedule(load_config(None, ["train.save_steps=30", "train.eval_steps=20"]).train, has_eval=False)
    import importlib.util

    wandb_cfg = load_config(None, ["train.report_to=[wandb]"]).train
    real_find_spec = importlib.util.find_spec
    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: None if name == "wandb" else real_find_spec(name, *a)
    )
    monkeypatch.setenv("WANDB_API_KEY", "test-key")
    with pytest.raises(SlmError) as missing:  # checked before any model is loaded, not when WandbCallback starts
        report_targets(wandb_cfg)
    assert "train.report_to" in missing.value.message and "not installed" in missing.value.message
    assert "pip install wandb" in missing.value.hint

    monkeypatch.setattr(
        importlib.util, "find_spec", lambda name, *a: object() if name == "wandb" else real_find_spec(name, *a)
    )
    monkeypatch.delenv("WANDB_API_KEY")
    with pytest.raises(SlmError, match="WANDB_API_KEY"):
        report_targets(wandb_cfg)
    monkeypatch.setenv("WANDB_API_KEY", "test-key")
    assert report_targets(load_config(None, ["train.report_to=[wandb, tensorboard]"]).train) == ["wandb", "tensorboard"]
    with pytest.raises(SlmError, match="train.report_to: unknown target 'mlflow'"):
        report_targets(load_config(None, ["train.report_to=[mlflow]"]).train)


def test_sft_config_follows_the_train_section(tmp_path):
    from fine_tuning.train.trainer import sft_config

    cfg = load_config(
        None, ["train.activation_checkpointing=true", "train.warmup_ratio=0.1", "train.max_steps=40"]
    ).train
    args = sft_config(cfg, 7, tmp_path, "cpu", "fp32", has_eval=True, report=["tensorboard"])
    assert args.activation_checkpointing and args.gradient_checkpointing  # TRL 1.16 name, old alias mirrors it
    assert args.activation_checkpointing_kwargs == {"use_reentrant": False}
    assert args.use_cpu and not args.bf16 and not args.fp16
    assert args.packing and args.packing_strategy == "bfd" and args.assistant_only_loss
    assert args.eval_strategy == "steps" and args.load_best_model_at_end and args.metric_for_best_model == "eval_loss"
    assert "tensorboard" not in args.report_to  # it gets its own callback writing to <run>/train/tb
    assert args.seed == 7 and args.max_steps == 40 and args.warmup_steps == 0.1
    assert args.optim == "adamw_torch" and args.restore_callback_states_from_checkpoint
    paged = sft_config(
        load_config(None, ["train.optim=paged_adamw_8bit"]).train, 7, tmp_path, "cpu", "fp32", has_eval=False, report=[]
    )
    assert paged.optim == "paged_adamw_8bit"
    with pytest.raises(SlmError, match="train.optim: unknown optimizer 'adamw_typo'"):
        sft_config(
            load_config(None, ["train.optim=adamw_typo"]).train, 7, tmp_path, "cpu", "fp32", has_eval=False, report=[]
        )

    # TRL's own default turns checkpointing on; the config's false must win
    off = sft_config(load_config(None).train, 7, tmp_path, "cpu", "fp32", has_eval=False, report=["wandb"])
    assert not off.activation_checkpointing and not off.gradient_checkpointing
    assert off.eval_strategy == "no" and not off.load_best_model_at_end and "wandb" in off.report_to


@pytest.mark.slow
def test_rerun_after_the_last_checkpoint_does_not_train_past_max_steps(trained):
    """A kill between the final checkpoint and the manifest: the rerun takes the finished weights, no extra step."""
    import shutil

    import torch
    from safetensors.torch import load_file

    cfg, _, stage = trained
    before = load_file(str(stage / "adapter" / "adapter_model.safetensors"))
    (stage / "manifest.json").unlink()
    shutil.rmtree(stage / "adapter")
    report = run_stage(cfg, "train")
    summary = json.loads((stage / "train_summary.json").read_text(encoding="utf-8"))
    assert report.counts["steps"] == 10 and summary["global_step"] == 10
    after = load_file(str(stage / "adapter" / "adapter_model.safetensors"))
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
