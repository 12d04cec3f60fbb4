"""The planner against published, measured peak-memory figures (tests/data/plan_published.csv): a regression suite.

Each row is one published run with its source, model (tests/data/plan_models.json), method, sequence, micro-batch,
checkpointing, GPU and measured figure (or OOM). The planner is run with the settings of the row's stack (`STACKS`:
what that code does, the same for every row of the stack — never fitted per row) plus the row's own settings. A row
whose memory is driven by something the planner does not model keeps its reason in `not_modelled` and is listed, not
scored. `python -m pytest tests/test_plan_published.py -s` prints the report (also in the README).
"""

from __future__ import annotations

import csv
import json
import statistics
from dataclasses import dataclass
from pathlib import Path

import pytest

from fine_tuning.plan.architecture import architecture_from_config
from fine_tuning.plan.memory import estimate_memory

DATA = Path(__file__).resolve().parent / "data"
GIB = 2**30

# What each stack's code does (read from its source or paper), as estimate_memory's arguments.
_LITGPT = dict(impl="litgpt", loss_impl="chunked", adapter_dtype="bf16", optimizer="adamw", double_quant=False,
               bnb_saves_inputs=True, packing=False, master_weights="bf16", lora_r=8, lora_targets=["q_proj", "v_proj"],
               lora_dropout=0.05)  # fmt: skip
STACKS: dict[str, dict] = {
    # LitGPT 2023 (resource tables: bitsandbytes 0.41.1, bf16-true, r=8 on query and value, lm_head in 128-token
    # chunks, torch AdamW); LitGPT 2024 (config hub: bitsandbytes 0.42, the rest as in each row's yaml)
    "litgpt2023": _LITGPT,
    "litgpt": _LITGPT,
    # Unsloth's "Hugging Face + FA2" column: transformers + PEFT + TRL of 2024, prepare_model_for_kbit_training,
    # full-logit loss, r=32 on all linear layers, dropout 0, flash-attention 2
    "hf2024": dict(
        lora_r=32,
        lora_targets="all-linear",
        lora_dropout=0.0,
        loss_impl="full",
        upcast_frozen_fp32=True,
        bnb_saves_inputs=True,
        attn_impl="flash_attention_2",
    ),  # fmt: skip
    # artidoro/qlora scripts/finetune_guanaco_65b.sh + qlora.py defaults
    "qlora2023": dict(
        lora_r=64,
        lora_targets="all-linear",
        optimizer="paged_adamw_32bit",
        adapter_dtype="bf16",
        loss_impl="full",
        bnb_saves_inputs=True,
    ),  # fmt: skip
    # torchtune full_finetune_single_device: bf16 params, fused torch AdamW, plain cross-entropy on fp32 logits
    "torchtune": dict(master_weights="bf16", optimizer="adamw_torch_fused", loss_impl="full"),
    "unsloth": {},
    # our own stack measured on CPU (bench/memory.py --quick: transformers 5, peft 0.21, torch 2.13, bf16 autocast,
    # the full-logit loss, torch's foreach AdamW, dropout 0, two steps)
    "ours-cpu": dict(loss_impl="full", optimizer="adamw_torch", lora_dropout=0.0),
}
_TARGETS = {"qv": ["q_proj", "v_proj"], "all": "all-linear"}
GOAL_MEDIAN, GOAL_WITHIN_25 = 0.10, 0.85


@dataclass(frozen=True)
class Row:
    source: str
    url: str
    model: str
    method: str
    seq: int
    batch: int
    ckpt: bool
    gpu: str
    gpu_gib: float
    n_gpus: int
    strategy: str
    measured: float | None
    unit: str
    oom: bool
    stack: str
    settings: str
    not_modelled: str


def load_rows() -> list[Row]:
    lines = [ln for ln in (DATA / "plan_published.csv").read_text().splitlines() if not ln.startswith("#")]
    rows = []
    for r in csv.DictReader(lines):
        rows.append(
            Row(
                **{
                    **r,
                    "seq": int(r["seq"]),
                    "batch": int(r["batch"]),
                    "ckpt": r["ckpt"] == "1",
                    "gpu_gib": float(r["gpu_gib"]),
                    "n_gpus": int(r["n_gpus"]),
                    "oom": r["oom"] == "1",
                    "measured": float(r["measured"]) if r["measured"] else None,
                }
            )  # fmt: skip
        )
    return rows


def planner_kwargs(row: Row) -> dict:
    kw = dict(STACKS[row.stack])
    for item in filter(None, row.settings.split(";")):
        key, value = item.split("=")
        if key == "targets":
            kw["lora_targets"] = _TARGETS[value]
        elif key == "lora_r":
            kw[key] = int(value)
        elif key == "accum":
            kw["grad_accum_steps"] = int(value)
        elif key == "double_quant":
            kw[key] = value == "1"
        elif key in ("master_weights", "loss_impl"):
            kw[key] = value
        elif key == "modules_to_save":
            kw[key] = value.split("+")
        else:
            kw[key] = float(value)
    kw.update(seq_len=row.seq, micro_batch=row.batch, gradient_checkpointing=row.ckpt, n_gpus=row.n_gpus,
              strategy=row.strategy, method="full" if row.method == "full" else "lora",
              quantization="4bit" if row.method == "qlora" else "none")  # fmt: skip
    return kw


def predict(row: Row):
    models = json.loads((DATA / "plan_models.json").read_text())
    return estimate_memory(architecture_from_config(models[row.model]), **planner_kwargs(row))


def measured_gib(row: Row) -> float:
    return row.measured * (1e9 / GIB if row.unit == "GB_alloc" else 1.0)


def predicted_gib(row: Row, est) -> float:
    """Allocated tensor memory for allocator figures; the whole card's worth (CUDA context included) otherwise."""
    return est.allocated_gb if row.unit.endswith("alloc") else est.peak_gb


@dataclass(frozen=True)
class Scored:
    row: Row
    predicted: float
    error: float | None  # (predicted - measured) / measured
    predicted_fits: bool


def score_all() -> tuple[list[Scored], list[Row]]:
    scored, skipped = [], []
    for row in load_rows():
        if row.not_modelled:
            skipped.append(row)
            continue
        est = predict(row)
        pred = predicted_gib(row, est)
        err = None if row.measured is None else (pred - measured_gib(row)) / measured_gib(row)
        scored.append(Scored(row, pred, err, est.peak_gb <= row.gpu_gib))
    return scored, skipped


def summary(items: list[Scored]) -> tuple[int, float, float, float]:
    errs = [abs(s.error) for s in items if s.error is not None]
    if not errs:
        return 0, 0.0, 0.0, 0.0
    return (len(errs), statistics.median(errs), sum(e <= 0.15 for e in errs) / len(errs),
            sum(e <= 0.25 for e in errs) / len(errs))  # fmt: skip


def report(scored: list[Scored], skipped: list[Row]) -> str:
    out = ["group                      rows  median|err|  within15%  within25%"]
    groups: dict[str, list[Scored]] = {"all": scored}
    for s in scored:
        groups.setdefault(f"source {s.row.source}", []).append(s)
        groups.setdefault(f"method {s.row.method}", []).append(s)
    for name, items in sorted(groups.items(), key=lambda kv: (kv[0] != "all", kv[0])):
        n, med, w15, w25 = summary(items)
        out.append(f"{name:<26} {n:>4}  {med:10.1%}  {w15:9.0%}  {w25:9.0%}")
    ooms = [s for s in scored if s.row.oom]
    out.append(f"published OOM rows predicted not to fit: {sum(not s.predicted_fits for s in ooms)}/{len(ooms)}")
    fitting = [s for s in scored if not s.row.oom]
    out.append(f"fitting rows predicted to fail: {sum(not s.predicted_fits for s in fitting)}/{len(fitting)}")
    out.append(f"not modelled (listed, not scored): {len(skipped)}")
    for s in scored:
        r = s.row
        err = "OOM" if s.error is None else f"{s.error:+.1%}"
        out.append(f"  {r.source:<15} {r.model:<22} {r.method:<5} seq {r.seq:>5} mb {r.batch} x{r.n_gpus} "
                   f"{'ckpt' if r.ckpt else '    '} {r.gpu:<10} plan {s.predicted:6.2f} GiB  {err}")  # fmt: skip
    return "\n".join(out)


def test_the_table_is_complete_and_every_row_names_its_source():
    rows = load_rows()
    models = json.loads((DATA / "plan_models.json").read_text())
    assert len(rows) >= 80
    for row in rows:
        ours = (DATA.parent.parent / row.url.split()[0]).is_file()  # our own CPU measurements: the bench script
        assert (row.url.startswith("https://") or ours) and row.model in models and row.stack in STACKS
        assert (row.measured is None) == row.oom or row.unit == "GiB_card", row
    assert len({r.source for r in rows}) >= 5


def test_accuracy_against_published_runs(capsys):
    scored, skipped = score_all()
    text = report(scored, skipped)
    with capsys.disabled():
        print("\n" + text)
    n, median, _, within25 = summary(scored)
    ooms = [s for s in scored if s.row.oom]
    fitting = [s for s in scored if not s.row.oom]
    assert n >= 60
    assert median <= GOAL_MEDIAN, text
    assert within25 >= GOAL_WITHIN_25, text
    # Every published OOM row is predicted not to fit. LitGPT's FSDP full rows needed what finetune/full.py does: the
    # yaml's `devices` (2 for phi-2 / stablelm-3b, not the 4xA10G machine's 4) and gradient accumulation under
    # fabric.no_backward_sync, which keeps whole gradients on every GPU (parallel.py): Llama 2 7B plans 24.0 GiB of 22.3.
    missed_oom = [s for s in ooms if s.predicted_fits]
    assert missed_oom == [], text
    # No fitting row is predicted to fail. Unsloth's max-context rows sit at the card's edge by construction (the
    # longest context that still fits). The Llama 3.3 70B one planned +3.3 % over the card while the allocator's 7 %
    # slack was charged on the 40.7 GB of weights too; weights are allocated once at their sizes and never freed, so
    # the slack is now charged on the rest only (memory_terms.cuda_overhead_term): −0.3 %, a fit by 0.2 GiB.
    false_alarms = [s for s in fitting if not s.predicted_fits]
    assert false_alarms == [], text


@pytest.mark.parametrize("reason", sorted({r.not_modelled for r in load_rows() if r.not_modelled}))
def test_rows_not_modelled_say_why(reason):
    assert len(reason) > 40 and ("not" in reason or "below" in reason)
