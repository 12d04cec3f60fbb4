"""The model stages' config sections (`train`, `reinforce`, `evaluate`, `export`, `plan`); `slm_forest.config`
assembles them with the data stages' sections into `RunConfig`. Torch-free, like all of slm_forest."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import AliasChoices, BaseModel, ConfigDict, Field, model_validator


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", protected_namespaces=())


# ----------------------------------------------------------------------------------------------------------- train
class LoraConfigSection(Section):
    r: int = Field(16, ge=1)
    alpha: int = Field(32, ge=1)
    dropout: float = Field(0.05, ge=0, lt=1)
    target_modules: list[str] | str | None = Field(None, description="null uses the registry's per-architecture list")
    modules_to_save: list[str] = Field(
        default_factory=list,
        description="modules trained in full beside the LoRA weights and saved with the adapter, e.g. "
        "[embed_tokens, lm_head] (peft's modules_to_save)",
    )


class TrainConfig(Section):
    base_model: str = Field("tiny-random-phi", description="registry key, hub id or local path")
    method: Literal["lora", "qlora", "full"] = Field(
        "lora", description="lora; qlora: LoRA over a quantized frozen base (train.quantization); full: every weight"
    )
    quantization: Literal["nf4", "int8"] = Field(
        "nf4", description="qlora only: how bitsandbytes stores the frozen base (nf4 4-bit with double quant, or int8)"
    )
    master_weights: Literal["fp32", "bf16"] = Field(
        "fp32",
        description="full only: fp32 weights and optimizer states under bf16/fp16 autocast, or pure bf16 weights "
        "(half the memory, no fp32 master copy)",
    )
    lora: LoraConfigSection = Field(default_factory=LoraConfigSection)
    dtype: Literal["auto", "bf16", "fp16", "fp32"] = "auto"
    allow_fp32_fallback: bool = False
    max_length: int = Field(2048, ge=16)
    # Answers cut at max_length train without their end-of-turn token (the model learns not to stop).
    max_truncated_share: float = Field(
        0.01, ge=0, le=1, description="share of training examples max_length may cut before the run stops"
    )
    truncated: Literal["stop", "drop"] = Field(
        "stop", description="stop: fail above max_truncated_share; drop: leave cut examples out (counted)"
    )
    attn_implementation: Literal["auto", "sdpa", "eager", "flash_attention_2"] = Field(
        "auto",
        description="auto: flash_attention_2 on CUDA when installed and the model class supports it, else sdpa",
    )
    packing: bool = True
    epochs: float = Field(1.0, gt=0)
    max_steps: int = Field(-1, description="-1: run `epochs` epochs")
    learning_rate: float = Field(2e-4, gt=0)
    micro_batch_size: int = Field(4, ge=1)
    gradient_accumulation_steps: int = Field(1, ge=1)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    lr_scheduler: str = "cosine"
    optim: str = Field(
        "adamw_torch",
        description="HF optimizer name (TrainingArguments.optim), e.g. paged_adamw_8bit for less memory on GPU",
    )
    activation_checkpointing: bool = Field(
        False,
        validation_alias=AliasChoices("activation_checkpointing", "gradient_checkpointing"),
        description="recompute activations in backward (TRL 1.16 name; gradient_checkpointing accepted): less memory, ~20% slower",
    )
    chat_template: str | None = Field(
        None, description="a .jinja training template with {% generation %} markers; null picks one per model"
    )
    eval_steps: int = Field(50, ge=1)
    save_steps: int = Field(
        50, ge=1, description="checkpoint interval; a multiple of eval_steps when there is a val split"
    )
    save_total_limit: int = Field(2, ge=1)
    early_stopping_patience: int | None = Field(
        3, ge=1, description="evals without a better eval_loss; null: never stop"
    )
    logging_steps: int = Field(5, ge=1)
    report_to: list[str] = Field(
        default_factory=lambda: ["tensorboard"],
        description="tensorboard (<run>/train/tb) and/or wandb (needs WANDB_API_KEY)",
    )
    wandb_project: str | None = Field(None, description="W&B project when report_to includes wandb")
    tiny_model: dict[str, int] = Field(
        default_factory=dict, description="overrides for the tiny random model (hidden_size, layers, vocab_size …)"
    )
    output_dir: str | None = Field(
        None, description="checkpoints; default <run>/train/checkpoints (on RunPod: under /workspace)"
    )

    @property
    def gradient_checkpointing(self) -> bool:  # the pre-TRL-1.16 name, for readers of the old field
        return self.activation_checkpointing


# ------------------------------------------------------------------------------------------------------- reinforce
class RewardWeightsSection(Section):
    """How much each reward counts (fine_tuning/reinforce/rewards.py says what each one checks)."""

    final_amount: float = Field(1.0, ge=0, description="final 납부할 세액 exact to the 원")
    partial_amount: float = Field(
        0.5, ge=0, description="1 − relative error / partial_credit_scale: keeps a group apart when nobody is exact"
    )
    steps: float = Field(
        0.5, ge=0, description="share of the labelled steps (과세표준, 산출세액, 공제 …) that are right"
    )
    citations: float = Field(0.25, ge=0, description="cites the rule the computation applies, invents no article")
    format: float = Field(0.25, ge=0, description="ends with the final amount line, Korean, no runaway length")


class ReinforceConfig(Section):
    """`slm reinforce`: GRPO (TRL's GRPOTrainer) on calculation questions, continuing from the SFT adapter.

    Model, method (LoRA/QLoRA), dtype rules and chat template are the train stage's (`train.*`); only what RL adds
    is here.
    """

    enabled: bool = Field(False, description="run it in `slm run` after train; `slm reinforce CONFIG` always runs it")
    questions: int = Field(512, ge=8, description="generated calculation questions (all splits), seeded by `seed`")
    kinds: list[str] = Field(
        default_factory=list, description="calculation kinds to generate (taxlaw.kinds); empty = every kind"
    )
    dataset_pairs: bool = Field(True, description="also train on the built dataset's verified calculation pairs")
    val_share: float = Field(0.1, ge=0, lt=1, description="share of question families held out for validation")
    test_share: float = Field(0.1, ge=0, lt=1, description="share held out for scoring (score_adapter, evaluate)")
    num_generations: int = Field(
        8, ge=2, description="rollouts per prompt (the GRPO group); fewer than 4 often gives zero-variance groups"
    )
    max_completion_length: int = Field(
        768,
        ge=16,
        description="tokens per rollout: a worked Korean computation (5–10 labelled lines + basis) is 300–600 "
        "tokens on Gemma; the stage refuses a value shorter than the longest reference answer of the prompts",
    )
    temperature: float = Field(1.0, gt=0, description="sampling temperature of the rollouts (diversity in a group)")
    learning_rate: float = Field(
        2e-5,
        gt=0,
        description="for a LoRA adapter: ~10–20× TRL's 1e-6, which is a full fine-tuning value (LoRA moves far fewer "
        "weights per step); lower it to 5e-6 if the reward rises and then collapses",
    )
    beta: float = Field(
        0.01,
        ge=0,
        description="KL penalty towards the SFT adapter (TRL copies it as a frozen 'ref' adapter: no second model, one "
        "more forward pass per step); 0 drops that pass, at the risk of drifting from the SFT answer style",
    )
    micro_batch_size: int = Field(8, ge=1, description="completions per device per step")
    gradient_accumulation_steps: int = Field(
        4, ge=1, description="micro-batches per update; micro_batch_size × this must be a multiple of num_generations"
    )
    max_steps: int = Field(200, ge=1, description="optimizer steps")
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    logging_steps: int = Field(1, ge=1, description="every step: reward curves are noisy, and each step is costly")
    save_steps: int = Field(25, ge=1, description="checkpoint interval (resume with --resume)")
    save_total_limit: int = Field(2, ge=1)
    weights: RewardWeightsSection = Field(default_factory=RewardWeightsSection)
    partial_credit_scale: float = Field(0.5, gt=0, description="relative error at which partial credit reaches 0")
    max_answer_chars: int = Field(3000, ge=100, description="longer answers fail the runaway-length check")
    use_vllm: bool = Field(False, description="GPU only: generate with vLLM colocated in the training process")
    vllm_gpu_memory_utilization: float = Field(0.3, gt=0, lt=1, description="GPU share vLLM may take when colocated")
    output_dir: str | None = Field(None, description="checkpoints; default <run>/reinforce/checkpoints")

    @model_validator(mode="after")
    def _groups(self) -> ReinforceConfig:
        if (self.micro_batch_size * self.gradient_accumulation_steps) % self.num_generations:
            raise ValueError(
                f"micro_batch_size × gradient_accumulation_steps ({self.micro_batch_size} × "
                f"{self.gradient_accumulation_steps}) must be a multiple of num_generations ({self.num_generations}): "
                "a GRPO batch holds whole groups"
            )
        if self.val_share + self.test_share >= 1:
            raise ValueError("val_share + test_share must be below 1")
        return self


# ---------------------------------------------------------------------------------------------------------- export
GGUF_TYPES = ("f16", "bf16", "q8_0", "f32")  # what llama.cpp's convert_hf_to_gguf.py writes (--outtype)


class ExportConfig(Section):
    merge: bool = True
    adapter: Literal["auto", "sft", "rl"] = Field(
        "auto",
        description="which adapter to merge: rl = the reinforce stage's (GRPO), sft = the train stage's; auto = rl "
        "when `slm reinforce` has finished for this run, else sft",
    )
    gguf: bool | str | list[str] = Field(
        False,
        description="GGUF files via llama.cpp's converter: true = 16-bit (bf16 when trained in bf16, else f16); a "
        "type or a list of types (f16, bf16, q8_0, f32); auto = only when a converter is already here; false = none",
    )
    ollama_modelfile: bool = True
    push_to_hub: str | None = None
    # Multimodal Gemma 3 trains as its language model alone (text data); true puts the vision tower back.
    keep_vision: bool = Field(
        False, description="multimodal bases: export a checkpoint with the base's vision tower (image input)"
    )

    @model_validator(mode="after")
    def _gguf_types(self) -> ExportConfig:
        values = [] if isinstance(self.gguf, bool) or self.gguf == "auto" else [self.gguf]
        values = self.gguf if isinstance(self.gguf, list) else values
        unknown = [v for v in values if v not in GGUF_TYPES]
        if unknown or self.gguf == []:
            raise ValueError(
                f"gguf: {unknown[0] if unknown else '[]'!r} is not a GGUF type; use true, false, auto, "
                f"{', '.join(GGUF_TYPES)} or a list of them"
            )
        return self


# ------------------------------------------------------------------------------------------------------------ plan
class PlanConfig(Section):
    """`slm plan` and the memory check `slm train` makes before loading weights."""

    gpus: list[dict[str, Any]] = Field(
        default_factory=list,
        description="the GPU table to plan on; empty = the shipped RunPod table. An entry named like a shipped one "
        "('RTX 4090') changes only the fields it gives (e.g. usd_per_hour); a new one needs name, memory_gb, "
        "usd_per_hour, bf16, tflops_16bit, mem_bandwidth_gbs",
    )
    mfu: float = Field(0.35, gt=0, le=1, description="assumed model-FLOPs utilisation for the time estimate")
    chars_per_token: float = Field(
        1.3, gt=0, description="Korean characters per token, to estimate tokens from the built dataset"
    )
    check_before_training: bool = Field(True, description="slm train refuses a run the estimate says will not fit")
    loss_head: Literal["fused", "full", "chunked"] = Field(
        "fused",
        description="the loss the plan counts: fused = TRL's tiled LM head (what slm train runs); full = fp32 "
        "[tokens, vocab] logits (plain transformers / other stacks); chunked = LitGPT's bf16 logits",
    )
