"""Peak memory of one training step, measured on CPU, beside what `slm plan` estimates for the same model.

    python bench/memory.py            # Phi-2- and Gemma-3-shaped tiny models, LoRA and QLoRA, 2,048 packed tokens
    python bench/memory.py --quick    # 512 tokens: a look in seconds, not the figures of bench/README.md

What it does: builds random models with the production vocabularies (Phi-2 51,200, Gemma 3 262,144) and the
production width ratios (heads, head_dim, MLP factor, Gemma's sliding + full layers, a SigLIP tower for the
multimodal Gemma 3) at a reduced width and two decoder layers, and runs one training step the way `slm train`
does on a GPU: bf16 weights (4-bit nf4 for QLoRA), bf16 autocast, LoRA r=16 in fp32, non-reentrant activation
checkpointing, one packed row of 2,048 tokens (four examples with restarting position_ids, SDPA), TRL's fused
LM-head loss (`add_fused_lm_head`, what SFTTrainer 1.16 calls), AdamW. Each setup runs twice: "before" is the old
loading path (multimodal class with its vision tower, `prepare_model_for_kbit_training`'s fp32 cast), "after" is
`fine_tuning.train.loading.load_model_for_training` today.

Measured: every tensor storage alive at each dispatched op (a TorchDispatchMode holding weak references to the
storages: allocations the allocator cannot see on CPU otherwise), plus the parameters that exist before the step;
the peak of their sum. TRL's head runs with small tiles (`small_cpu_head_tiles`: its CPU fallback keeps ~7 fp32
copies of each tile, which Triton on CUDA does not). The dtype of every frozen parameter group is read from the model. The planner's estimate
for the same architecture is `estimate_memory(...)` without cuda_overhead (the CUDA context and fragmentation do not
exist on CPU). A third Gemma run uses the plain full-logit loss to show what TRL's tiled head saves.

Issue 15 adds, with the full-logit loss: full fine-tuning (fp32 masters under bf16 autocast, and pure bf16) and LoRA
with a trainable embedding (modules_to_save); each planned term is printed beside the measured weights, gradients
(after backward) and optimizer states (after a foreach AdamW step), and the peak beside the plan's allocation.

Last line: `memory: gemma3_12b_qlora_plan_gib=<x> measured_vs_plan=<r> frozen_fp32_params=<n>` — the planner's
Gemma 3 12B QLoRA figure at 2,048 tokens, measured/planned for the Gemma-shaped QLoRA step, and frozen fp32
parameters left in that model after loading.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

GIB = 2**30
PHI2 = dict(model_type="phi", vocab_size=51200, hidden_size=320, intermediate_size=1280, num_hidden_layers=2,
            num_attention_heads=4, partial_rotary_factor=0.4, tie_word_embeddings=False)  # fmt: skip
GEMMA3_TEXT = dict(model_type="gemma3_text", vocab_size=262144, hidden_size=240, intermediate_size=960,
                   num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1, head_dim=128,
                   sliding_window=1024, layer_types=["sliding_attention", "full_attention"],
                   tie_word_embeddings=True)  # fmt: skip  # 12B ratios: ffn 4x, head_dim 256 at 16 heads of 3840
SIGLIP = dict(model_type="siglip_vision_model", hidden_size=64, intermediate_size=256, num_hidden_layers=2,
              num_attention_heads=2, image_size=224, patch_size=14)  # fmt: skip


class LiveStoragePeak:
    """Peak bytes of live tensor storages during the ops run under it (parameters present before: `base`)."""

    def __init__(self, base_bytes: int) -> None:
        from torch.multiprocessing.reductions import StorageWeakRef
        from torch.utils._python_dispatch import TorchDispatchMode

        tracker = self
        self.live: dict[int, tuple[object, int]] = {}
        self.base, self.peak = base_bytes, base_bytes
        self.current = self.added = 0  # bytes of tracked storages (some maybe dead until the next sweep); new ones

        class Mode(TorchDispatchMode):
            def __torch_dispatch__(self, func, types, args=(), kwargs=None):  # noqa: ANN001
                out = func(*args, **(kwargs or {}))
                tracker.observe(out, StorageWeakRef)
                return out

        self.mode = Mode()

    def observe(self, out: object, weak_ref: type) -> None:
        """Add the new storages; when the running total (dead ones included) could be a new peak, drop the dead
        ones first — the peak only needs checking at allocations, and this keeps the per-op cost small."""
        import torch
        from torch.utils._pytree import tree_flatten

        for tensor in tree_flatten(out)[0]:
            if isinstance(tensor, torch.Tensor) and tensor.device.type == "cpu" and not tensor.is_meta:
                storage = tensor.untyped_storage()
                key = storage._cdata
                if key not in self.live and storage.nbytes():
                    self.live[key] = (weak_ref(storage), storage.nbytes())
                    self.current += storage.nbytes()
                    self.added += 1
        if self.base + self.current > self.peak or self.added > 2000:
            dead = [k for k, (ref, _) in self.live.items() if ref.expired()]
            for key in dead:
                self.current -= self.live.pop(key)[1]
            self.added = 0
            self.peak = max(self.peak, self.base + self.current)


def build_checkpoint(root: Path, name: str, text: dict, vision: dict | None) -> Path:
    import torch
    from transformers import AutoConfig, AutoModelForCausalLM

    if vision is None:
        config = AutoConfig.for_model(**text)
    else:
        text_kw = {k: v for k, v in text.items() if k != "model_type"}
        config = AutoConfig.for_model(
            "gemma3", text_config=text_kw, vision_config=vision, mm_tokens_per_image=16, image_token_index=262143
        )
    torch.manual_seed(0)
    model = AutoModelForCausalLM.from_config(config, dtype=torch.bfloat16)
    path = root / name
    model.save_pretrained(path)
    return path


def load(path: Path, kind: str, method: str, old_path: bool):
    """The model of one setup: today's loader, or the pre-issue-14 one (multimodal class, fp32 cast)."""
    import torch
    from peft import prepare_model_for_kbit_training
    from transformers import AutoModelForCausalLM

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.attention import AttentionChoice
    from fine_tuning.train.loading import apply_lora, load_model_for_training, quantization_config
    from slm_forest.config import load_config

    spec = get_model_spec(str(path))
    lora = load_config(None, ["train.lora.dropout=0"]).train.lora
    if not old_path:
        attention = AttentionChoice("sdpa", "bench")
        model = load_model_for_training(
            spec, path, method, "bf16", "cpu", activation_checkpointing=True, attention=attention
        )
        if method == "lora":  # what Trainer does for train.activation_checkpointing=true (QLoRA: the loader does)
            model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
            model.enable_input_require_grads()
        return apply_lora(model, spec, lora), spec
    kwargs = {"dtype": torch.bfloat16, "attn_implementation": "sdpa"}
    if method == "qlora":
        kwargs["quantization_config"] = quantization_config(spec, "cpu")
    model = AutoModelForCausalLM.from_pretrained(path, **kwargs)
    if method == "qlora":
        model = prepare_model_for_kbit_training(model, True, {"use_reentrant": False})
    else:
        model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
        model.enable_input_require_grads()
    return apply_lora(model, spec, lora), spec


def frozen_groups(model) -> dict[str, tuple[int, str]]:
    """Frozen parameters by group (embeddings, norms, vision tower, 4-bit linears, other) → (count, dtypes)."""
    groups: dict[str, tuple[int, set[str]]] = {}
    for name, param in model.named_parameters():
        if param.requires_grad:
            continue
        if "vision_tower" in name or "multi_modal_projector" in name:
            group = "vision tower"
        elif param.dtype.is_floating_point is False:
            group = "4-bit linears"
        elif "embed" in name or "lm_head" in name:
            group = "embeddings/lm_head"
        elif "norm" in name:
            group = "norms"
        else:
            group = "other frozen"
        count, dtypes = groups.get(group, (0, set()))
        groups[group] = (count + param.numel(), dtypes | {str(param.dtype).replace("torch.", "")})
    return {g: (n, "/".join(sorted(d))) for g, (n, d) in groups.items()}


def packed_batch(vocab: int, tokens: int):
    import torch

    generator = torch.Generator().manual_seed(0)
    ids = torch.randint(10, vocab - 10, (1, tokens), generator=generator)
    positions = torch.cat([torch.arange(tokens // 4)] * 4)[None]
    labels = ids.clone()
    for start in range(0, tokens, tokens // 4):  # each example's prompt (first third) is not trained
        labels[0, start : start + tokens // 12] = -100
    return ids, positions, labels


def small_cpu_head_tiles() -> None:
    """TRL's tiled head folds each [4096 tokens x 32768 vocab] tile with fused Triton kernels on CUDA, but on CPU
    with torch ops that keep ~7 fp32 copies of the tile alive (measured: 7 x 64 MiB at 512 tokens). That is a
    CPU-only cost the GPU plan does not have, so the step is measured with 256 x 4096 tiles (same arithmetic), and
    the plan's LM-head tile term is computed for the same tiles (the 12B figure is computed before, with TRL's)."""
    import trl.kernels.chunked_logprob as kernel
    import trl.trainer.utils as trl_utils

    from fine_tuning.plan import memory_terms

    kernel.TOKEN_CHUNK_SIZE = memory_terms.FUSED_HEAD_TOKEN_TILE = 256
    trl_utils._CHUNKED_LOGPROB_CHUNK_SIZE = memory_terms.FUSED_HEAD_VOCAB_TILE = 4096  # the plan's tile term too


def measure_step(model, vocab: int, tokens: int, fused: bool) -> tuple[float, float]:
    """(peak GiB, seconds) of forward + backward + AdamW step."""
    import torch
    from trl.trainer.utils import add_fused_lm_head

    if fused:
        add_fused_lm_head(model.get_base_model(), outputs=("log_probs", "entropy", "is_top1"))
    model.train()
    ids, positions, labels = packed_batch(vocab, tokens)
    params = sum(p.untyped_storage().nbytes() for p in {id(p): p for p in model.parameters()}.values())
    buffers = sum(b.untyped_storage().nbytes() for b in model.buffers())
    optimizer = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=1e-4)
    tracker = LiveStoragePeak(params + buffers)
    started = time.perf_counter()
    with tracker.mode, torch.autocast("cpu", dtype=torch.bfloat16):
        if fused:
            out = model(input_ids=ids, position_ids=positions, labels=labels, fused_lm_head=True)
            loss = -out.log_probs.sum() / out.label_mask.sum()
        else:
            loss = model(input_ids=ids, position_ids=positions, labels=labels, use_cache=False).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
    return tracker.peak / GIB, time.perf_counter() - started


def planned(spec, method: str, tokens: int, old_path: bool, fused: bool = True):
    from fine_tuning.plan.memory import estimate_memory

    return estimate_memory(
        spec.arch,
        quantization="4bit" if method == "qlora" else "none",
        dtype="bf16",
        lora_targets=spec.lora_target_modules,
        lora_dropout=0.0,
        seq_len=tokens,
        micro_batch=1,
        gradient_checkpointing=True,
        upcast_frozen_fp32=old_path and method == "qlora",
        load_vision_tower=old_path,
        loss_impl="fused" if fused else "full",
    )


def run_setup(path: Path, kind: str, method: str, old_path: bool, tokens: int, fused: bool = True) -> dict:
    model, spec = load(path, kind, method, old_path)
    groups = frozen_groups(model)
    peak, seconds = measure_step(model, spec.arch.vocab_size, tokens, fused)
    plan = planned(spec, method, tokens, old_path, fused)
    fp32 = sum(n for n, dtypes in groups.values() if "float32" in dtypes)
    label = f"{kind} {method} {'before' if old_path else 'after '}{'' if fused else ' full-logit loss'}"
    print(
        f"\n{label}: measured peak {peak:.3f} GiB in {seconds:.1f} s; plan (no CUDA overhead) {plan.allocated_gb:.3f} GiB"
    )
    for line in plan.lines:
        if line.name != "cuda_overhead":
            print(f"    plan {line.name:<17}{line.gb:8.3f} GiB  {line.explanation}")
    for group, (count, dtypes) in groups.items():
        print(f"    frozen {group:<20}{count:>12,} params  {dtypes}")
    return {"peak": peak, "plan": plan.allocated_gb, "frozen_fp32": fp32, "label": label}


def load_extra(path: Path, setup: str):
    """Setups the training side of issue 15 adds, built here with torch/peft directly (the bench measures memory,
    not `slm train`'s loader): full fine-tuning with fp32 masters under bf16 autocast or pure bf16, and LoRA with a
    trainable embedding (peft modules_to_save)."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    from fine_tuning.plan.registry import get_model_spec
    from fine_tuning.train.loading import load_language_model_only

    spec = get_model_spec(str(path))
    dtype = torch.float32 if setup == "full fp32" else torch.bfloat16
    if spec.multimodal:
        model = load_language_model_only(path).to(dtype)  # text-only training, as `slm train` does
    else:
        model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, attn_implementation="sdpa")
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})
    if setup.startswith("full"):
        model.requires_grad_(True)
        return model, spec
    model.enable_input_require_grads()
    config = LoraConfig(r=16, lora_alpha=32, lora_dropout=0.0, target_modules=spec.lora_target_modules,
                        modules_to_save=["embed_tokens"], task_type="CAUSAL_LM")  # fmt: skip
    return get_peft_model(model, config), spec


def measure_terms(model, vocab: int, tokens: int) -> dict[str, float]:
    """Measured GiB of weights (params + buffers), gradients (after backward), optimizer states (after the step;
    torch's foreach AdamW, what adamw_torch runs on CUDA) and the peak over two steps (the second one's backward
    runs with the states of the first, as every step of a run does), with the full-logit loss."""
    import torch

    ids, positions, labels = packed_batch(vocab, tokens)
    params = {id(p): p for p in model.parameters()}.values()
    base = sum(p.untyped_storage().nbytes() for p in params) + sum(
        b.untyped_storage().nbytes() for b in model.buffers()
    )
    trainable = [p for p in params if p.requires_grad]
    optimizer = torch.optim.AdamW(trainable, lr=1e-5, foreach=True)
    tracker = LiveStoragePeak(base)
    model.train()
    with tracker.mode:
        for _ in range(2):
            with torch.autocast("cpu", dtype=torch.bfloat16):
                loss = model(input_ids=ids, position_ids=positions, labels=labels, use_cache=False).loss
            loss.backward()
            grads = sum(p.grad.untyped_storage().nbytes() for p in trainable if p.grad is not None)
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            del loss
    states = sum(t.untyped_storage().nbytes() for st in optimizer.state.values() for t in st.values() if t.dim())
    return {
        "weights": base / GIB,
        "gradients": grads / GIB,
        "optimizer_states": states / GIB,
        "peak": tracker.peak / GIB,
    }


def run_extra(path: Path, kind: str, setup: str, tokens: int) -> dict:
    from fine_tuning.plan.memory import estimate_memory

    model, spec = load_extra(path, setup)
    measured = measure_terms(model, spec.arch.vocab_size, tokens)
    full = setup.startswith("full")
    plan = estimate_memory(
        spec.arch,
        method="full" if full else "lora",
        master_weights="fp32" if setup == "full fp32" else "bf16",
        dtype="bf16",
        lora_targets=spec.lora_target_modules,
        modules_to_save=[] if full else ["embed_tokens"],
        lora_dropout=0.0,
        seq_len=tokens,
        gradient_checkpointing=True,
        loss_impl="full",
        optimizer="adamw_torch",
    )
    print(
        f"\n{kind} {setup}: measured peak {measured['peak']:.3f} GiB; plan (no CUDA overhead) {plan.allocated_gb:.3f}"
    )
    for line in plan.lines:
        if line.name == "cuda_overhead":
            continue
        seen = measured.get(line.name)
        if line.name == "weights" and not full:
            seen = None  # the base and the modules_to_save copy are both parameters: compared together below
        beside = f"measured {seen:7.3f}" if seen is not None else " " * 16
        print(f"    plan {line.name:<17}{line.gb:8.3f} GiB  {beside}  {line.explanation}")
    if not full:
        both = plan.line("weights").gb + plan.line("lora_params").gb + plan.line("modules_to_save").gb
        print(f"    weights + adapters + modules_to_save: plan {both:.3f} GiB, measured {measured['weights']:.3f} GiB")
    return {"peak": measured["peak"], "plan": plan.allocated_gb, "label": f"{kind} {setup}"}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="512 tokens instead of 2,048")
    parser.add_argument("--extra-only", action="store_true", help="only full fine-tuning and modules_to_save")
    args = parser.parse_args()
    tokens = 512 if args.quick else 2048

    import torch

    from fine_tuning.plan.memory import estimate_memory

    torch.set_num_threads(max(1, os.cpu_count() or 1))
    plan_12b = estimate_memory("gemma-3-12b-it", quantization="4bit", dtype="bf16", seq_len=2048).peak_gb
    small_cpu_head_tiles()
    results: dict[tuple[str, str, bool], dict] = {}
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        phi = build_checkpoint(root, "phi2-shaped", PHI2, None)
        gemma = build_checkpoint(root, "gemma3-shaped", GEMMA3_TEXT, SIGLIP)
        extra = [
            run_extra(path, kind, setup, tokens)
            for kind, path in (("phi-2-shaped", phi), ("gemma-3-shaped", gemma))
            for setup in ("full fp32", "full bf16", "lora + modules_to_save")
        ]
        print("\nfull fine-tuning and modules_to_save (measured peak / plan):")
        for row in extra:
            print(f"  {row['label']}: {row['peak']:.3f} / {row['plan']:.3f} GiB = {row['peak'] / row['plan']:.2f}")
        if args.extra_only:
            return
        for kind, path in (("phi-2-shaped", phi), ("gemma-3-shaped", gemma)):
            for method in ("lora", "qlora"):
                for old_path in (True, False):
                    results[kind, method, old_path] = run_setup(path, kind, method, old_path, tokens)
        full_logits = run_setup(gemma, "gemma-3-shaped", "qlora", False, tokens, fused=False)

    print("\nbefore → after (measured peak; plan):")
    for kind in ("phi-2-shaped", "gemma-3-shaped"):
        for method in ("lora", "qlora"):
            b, a = results[kind, method, True], results[kind, method, False]
            print(
                f"  {kind} {method}: {b['peak']:.3f} → {a['peak']:.3f} GiB (x{b['peak'] / a['peak']:.2f}); "
                f"plan {b['plan']:.3f} → {a['plan']:.3f} GiB (x{b['plan'] / a['plan']:.2f}); "
                f"measured/plan after {a['peak'] / a['plan']:.2f}"
            )
    gemma_after = results["gemma-3-shaped", "qlora", False]
    logits_gib = tokens * GEMMA3_TEXT["vocab_size"] * 4 / GIB
    print(
        f"TRL fused LM head vs full-logit loss (Gemma vocab, {tokens} tokens): {gemma_after['peak']:.3f} vs "
        f"{full_logits['peak']:.3f} GiB measured; fp32 logits alone would be {logits_gib:.2f} GiB"
    )
    ratio = gemma_after["peak"] / gemma_after["plan"]
    print(
        f"memory: gemma3_12b_qlora_plan_gib={plan_12b:.2f} measured_vs_plan={ratio:.2f} "
        f"frozen_fp32_params={gemma_after['frozen_fp32']}"
    )


if __name__ == "__main__":
    main()
