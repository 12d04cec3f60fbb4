"""vLLM-colocated generation for `slm reinforce` (GPU only): the rollouts come from vLLM inside the training process,
with the LoRA adapter synced into it, and the run completes (TRL #3671 reports hangs with colocate + PEFT)."""

from __future__ import annotations

import importlib.util

import pytest

pytestmark = pytest.mark.gpu


def _needs_gpu_and_vllm() -> None:
    import torch

    if not torch.cuda.is_available():
        pytest.skip("needs a CUDA GPU")
    if importlib.util.find_spec("vllm") is None:
        pytest.skip("needs vllm (pip install vllm)")


@pytest.mark.slow
def test_vllm_colocated_grpo_run_completes_and_logs_rewards(tmp_path):
    _needs_gpu_and_vllm()
    import json

    from slm_forest.config import load_config
    from slm_forest.pipeline import run_stage
    from tests.test_reinforce_stage import overrides, write_upstream

    write_upstream(tmp_path / "rl")
    run_stage(load_config(None, overrides(tmp_path)), "train")
    cfg = load_config(
        None,
        overrides(
            tmp_path, "reinforce.use_vllm=true", "reinforce.max_steps=2", "reinforce.vllm_gpu_memory_utilization=0.2"
        ),
    )
    report = run_stage(cfg, "reinforce")
    summary = json.loads((tmp_path / "rl" / "reinforce" / "reinforce_summary.json").read_text(encoding="utf-8"))
    assert report.counts["steps"] == 2 and summary["device"] == "cuda" and summary["reward_first"] is not None
