"""What `slm plan` needs to cover the reinforce stage: the rollout volume and the extra memory GRPO adds to a LoRA run.

`reinforce_plan(cfg, arch)` is a pure function of the config (and the model's architecture numbers) for the planner
(fine_tuning/plan, owned elsewhere) to add to its train estimate:
- tokens generated per optimizer step = prompts per step × num_generations × max_completion_length (at most), and
  over the run × max_steps — generation dominates GRPO's time on a small GPU (each token is one forward pass);
- the sequence the loss sees: prompt + max_completion_length, for activations (micro_batch_size of them at a time);
- the KV cache of generation: 2 (K, V) × layers × kv_heads × head_dim × bytes × (prompt + completion) × the
  completions generated together (micro_batch_size × steps_per_generation with transformers, all of them in vLLM);
- the reference: with LoRA and beta > 0 TRL copies the SFT adapter as a frozen "ref" adapter (adapter-sized memory,
  one more forward pass per step); no second model. beta = 0: no reference at all;
- vLLM colocated: its share of the GPU (`vllm_gpu_memory_utilization`) is taken away from training.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

DTYPE_BYTES = {"bf16": 2, "fp16": 2, "fp32": 4}


@dataclass(frozen=True)
class ReinforcePlan:
    prompts_per_step: int
    completions_per_step: int
    generated_tokens_per_step: int  # upper bound: every rollout runs to max_completion_length
    generated_tokens_total: int
    sequence_tokens: int  # prompt + completion: what one training row holds
    concurrent_generations: int
    kv_cache_bytes: int
    reference: str  # "none" | "adapter copy (LoRA, beta > 0)"
    extra_forward_passes_per_step: int  # the reference pass (beta > 0) over every completion
    vllm_colocated_share: float  # GPU memory share left to vLLM (0 without it)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def reinforce_plan(
    cfg: Any,
    *,
    num_layers: int,
    num_kv_heads: int,
    head_dim: int,
    dtype: str = "bf16",
    prompt_tokens: int = 256,
    processes: int = 1,
) -> ReinforcePlan:
    """The rollout and memory terms of `cfg` (a ReinforceConfig) for a model of the given shape."""
    completions = cfg.micro_batch_size * cfg.gradient_accumulation_steps * processes
    prompts = completions // cfg.num_generations
    per_step = completions * cfg.max_completion_length
    sequence = prompt_tokens + cfg.max_completion_length
    concurrent = completions if cfg.use_vllm else cfg.micro_batch_size * cfg.gradient_accumulation_steps
    kv = 2 * num_layers * num_kv_heads * head_dim * DTYPE_BYTES.get(dtype, 2) * sequence * concurrent
    with_reference = cfg.beta > 0
    return ReinforcePlan(
        prompts_per_step=prompts,
        completions_per_step=completions,
        generated_tokens_per_step=per_step,
        generated_tokens_total=per_step * cfg.max_steps,
        sequence_tokens=sequence,
        concurrent_generations=concurrent,
        kv_cache_bytes=kv,
        reference="adapter copy (LoRA, beta > 0)" if with_reference else "none",
        extra_forward_passes_per_step=completions if with_reference else 0,
        vllm_colocated_share=cfg.vllm_gpu_memory_utilization if cfg.use_vllm else 0.0,
    )


def stage_plan(cfg: Any, arch: Any, dtype: str = "bf16") -> dict[str, Any] | None:
    """What `slm plan` shows for the reinforce stage of a run config (None when reinforce is not enabled): the
    rollout volume and memory terms for the train stage's model (`arch`: fine_tuning.plan.architecture)."""
    if not cfg.reinforce.enabled:
        return None
    plan = reinforce_plan(
        cfg.reinforce, num_layers=arch.num_layers, num_kv_heads=arch.num_kv_heads, head_dim=arch.head_dim, dtype=dtype
    )
    return plan.to_dict()


def plan_line(data: dict[str, Any]) -> str:
    """One line of `slm plan`'s table output for `stage_plan`'s dict."""
    vllm = (
        f", vLLM colocated takes {data['vllm_colocated_share']:.0%} of the GPU" if data["vllm_colocated_share"] else ""
    )
    return (
        f"reinforce (GRPO): {data['prompts_per_step']} prompts × {data['completions_per_step'] // max(1, data['prompts_per_step'])}"
        f" rollouts per step, up to {data['generated_tokens_per_step']:,} generated tokens per step "
        f"({data['generated_tokens_total']:,} over the run); generation KV cache ~{data['kv_cache_bytes'] / 2**30:.2f} "
        f"GiB on top of training; reference: {data['reference']}{vllm}"
    )
