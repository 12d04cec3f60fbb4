"""`slm reinforce` end to end on CPU with a tiny Gemma 3: GRPO runs a few steps, logs rewards, saves, resumes; the
preflight refuses a completion length too short for a worked answer; the RL adapter scores on held-out questions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fine_tuning.reinforce.prompts import generated_rows, reference_answer
from slm_forest.config import load_config
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.manifest import Manifest, describe_files, write_manifest
from slm_forest.pipeline import run_stage

SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
KINDS = ("income_tax", "corporate_tax")


def _manifest(run_dir: Path, stage: str, files: list[Path]) -> None:
    write_manifest(
        run_dir / stage,
        Manifest(
            stage=stage,
            run_name=run_dir.name,
            fingerprint=f"test-{stage}",
            config={},
            outputs=describe_files(files, run_dir),
            counts={},
            started_at="2026-01-01T00:00:00",
            finished_at="2026-01-01T00:00:01",
            seconds=1.0,
        ),
    )


def write_upstream(run_dir: Path, n: int = 48) -> None:
    """build/ with worked calculation answers (the phrasing the model learns), empty distill/ and collect/."""
    rows = generated_rows(n, 1234, KINDS, 0.0, 0.0)
    examples = [
        {
            "id": f"sft-{i:03d}",
            "messages": [
                {"role": "system", "content": SYSTEM},
                {"role": "user", "content": row.question},
                {"role": "assistant", "content": reference_answer(row.facts.computation, row.audience)},
            ],
            "meta": {"style": "explain"},
        }
        for i, row in enumerate(rows)
    ]
    build = run_dir / "build"
    write_jsonl(build / "train.jsonl", examples[:-8])
    write_jsonl(build / "val.jsonl", examples[-8:])
    _manifest(run_dir, "build", [build / "train.jsonl", build / "val.jsonl"])
    for stage, name in (("distill", "qa_pairs.jsonl"), ("collect", "documents.jsonl")):
        write_jsonl(run_dir / stage / name, [])
        _manifest(run_dir, stage, [run_dir / stage / name])


def overrides(runs_dir: Path, *extra: str) -> list[str]:
    return [
        f"runs_dir={runs_dir}",
        "run_name=rl",
        "train.base_model=tiny-random-gemma3",
        "train.max_length=768",
        "train.max_steps=20",
        "train.learning_rate=0.003",
        "train.eval_steps=10",
        "train.save_steps=10",
        "train.report_to=[]",
        "train.tiny_model={pretrain_steps: 60}",
        "reinforce.questions=32",
        f"reinforce.kinds=[{','.join(KINDS)}]",
        "reinforce.num_generations=4",
        "reinforce.micro_batch_size=4",
        "reinforce.gradient_accumulation_steps=1",
        "reinforce.max_completion_length=400",
        "reinforce.save_steps=2",
        *extra,
    ]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    write_upstream(runs_dir / "rl")
    run_stage(load_config(None, overrides(runs_dir)), "train")
    return runs_dir


@pytest.mark.slow
def test_tiny_grpo_run_logs_rewards_saves_and_resumes(trained):
    stage = trained / "rl" / "reinforce"
    report = run_stage(load_config(None, overrides(trained, "reinforce.max_steps=2")), "reinforce")
    assert report.complete and report.counts["steps"] == 2
    assert (stage / "adapter" / "adapter_model.safetensors").exists() and not (stage / "adapter" / "ref").exists()
    assert (stage / "checkpoints" / "checkpoint-2" / "trainer_state.json").exists()
    logged = list(read_jsonl(stage / "trainer_log.jsonl"))
    steps = [entry for entry in logged if "reward" in entry]
    assert len(steps) == 2
    for key in ("rewards/final_amount/mean", "rewards/format/mean", "frac_reward_zero_std", "groups/zero_variance"):
        assert key in steps[0], key
    rollouts = list(read_jsonl(stage / "rollouts.jsonl"))
    assert rollouts and all(len(entry["groups"]) == 1 for entry in rollouts) and rollouts[0]["samples"]
    summary = json.loads((stage / "reinforce_summary.json").read_text(encoding="utf-8"))
    assert summary["global_step"] == 2 and summary["reward_first"] is not None and summary["device"] == "cpu"
    assert summary["eos_token_ids"] and len(summary["eos_token_ids"]) == 2  # <eos> and <end_of_turn>
    assert summary["prompts"]["train"] > 0 and summary["groups"] == 2
    first_adapter = (stage / "adapter" / "adapter_model.safetensors").read_bytes()
    sft_adapter = (trained / "rl" / "train" / "adapter" / "adapter_model.safetensors").read_bytes()
    assert first_adapter != sft_adapter  # GRPO moved the SFT adapter

    resumed = run_stage(
        load_config(None, overrides(trained, "reinforce.max_steps=4")), "reinforce", options={"resume": True}
    )
    summary = json.loads((stage / "reinforce_summary.json").read_text(encoding="utf-8"))
    assert resumed.counts["steps"] == 4 and summary["resumed_from"] == "checkpoint-2"
    assert len([e for e in read_jsonl(stage / "trainer_log.jsonl") if "reward" in e]) == 4  # the log continues

    from fine_tuning.reinforce.score import held_out_rows, load_for_scoring, score_adapter

    rows = held_out_rows(stage / "prompts.jsonl", split="train")[:4]
    model, tokenizer = load_for_scoring(trained / "rl" / "train", stage / "adapter")
    scored = score_adapter(model, tokenizer, rows, system_prompt=SYSTEM, max_new_tokens=64, batch_size=4)
    assert (
        scored.n == 4
        and 0.0 <= scored.accuracy <= 1.0
        and set(scored.reward_means)
        <= {
            "final_amount",
            "partial_amount",
            "steps",
            "citations",
            "format",
        }
    )


@pytest.mark.slow
def test_completion_length_too_short_for_a_worked_answer_is_refused(trained):
    cfg = load_config(None, overrides(trained, "reinforce.max_completion_length=40", "reinforce.max_steps=1"))
    with pytest.raises(SlmError, match="max_completion_length"):
        run_stage(cfg, "reinforce", force=True)
