"""GRPO changes something measurable on CPU: bench/reinforce.py's run (a tiny Gemma 3 SFT'd on worked 법인세 answers,
then 24 GRPO steps of the real `slm reinforce` stage) must raise the reward and teach the rollouts to end.

Measured (README, bench/README.md): reward 0.068 → 0.238 over the first and last 5 steps, clipped share 1.0 → about
0.4, 2 of 24 groups flat, ~1 minute. Before truncated rollouts were scored 0 for format (they were None everywhere,
outside the group baseline) the same run went 0.485 → 0.468 with 11 of 24 groups flat; this test fails on that code.
"""

from __future__ import annotations

import pytest

from bench.reinforce import run_bench


@pytest.mark.slow
@pytest.mark.timeout(900)
def test_grpo_raises_the_reward_and_rollouts_learn_to_end(tmp_path):
    result = run_bench(tmp_path, "corporate_tax", steps=24, sft_steps=60, extra=[])
    assert result["last"] > result["first"] + 0.08, result["rewards"]
    assert len(result["rewards"]) >= 20, result["rewards"]  # a step whose rollouts were all unscorable logs no reward
    clipped = result["clipped"]
    assert sum(clipped[-8:]) / 8 < sum(clipped[:4]) / 4 - 0.2, clipped  # fewer rollouts run to the length cap
    assert result["zero_variance"] <= result["groups"] // 4, result
