"""Benchmark of the training step's data layout: bin packing without padding vs padding every example to 2,048.

    python bench/train.py                    # 160 examples of ~300 tokens, tiny Phi, CPU
    python bench/train.py --examples 64      # a quicker look

What it does: generates Korean chat pairs (system + question + answer, 220–380 tokens each with the tiny tokenizer,
~300 on average) from a vocabulary of real tax phrases, builds the tiny random Phi of `fine_tuning.train.tiny` with a BPE
tokenizer trained on them, and trains one epoch over the SAME examples twice through the project's training path
(`fine_tuning.train.trainer.sft_config` + `make_trainer`: TRL SFTTrainer, LoRA, fp32 on CPU, one thread):

- packed, the project's settings: `packing=True` (best-fit bins of up to 2,048 tokens), padding-free batches,
  assistant-only loss, a pad token distinct from eos;
- baseline, the seed project's settings: no packing, every example padded to `max_length` 2,048
  (`pad_to_multiple_of=2048`, which is `padding="max_length"` for examples shorter than 2,048), pad = eos, loss on
  the whole text, per-device batch 4 (fewer optimizer steps than the packed run's batch 1: that favours the baseline).

Only `trainer.train()` is timed (no imports, model building, tokenisation or packing). Real tokens are counted on
the micro-batches the trainer actually receives (`TokenCounter`: attention-mask ones, or every position of a
padding-free batch); both runs must see the same number of real tokens. Speedup = packed real tokens/s ÷ baseline
real tokens/s, on process CPU time (one thread, so this is the training work, insensitive to other load on a shared
machine); the wall-clock ratio is printed too.

Targets: real-token share ≥ 0.95 with packing, speedup ≥ 4×. The last line is machine-readable:
`train: real_token_share=<x> baseline_share=<y> speedup=<z>`.

Why packed micro-batches hold ONE 2,048-token bin here: a padding-free batch is one flattened row, and SDPA (the only
attention on CPU) turns packed sequences into a block-diagonal mask over that row, so the attention work grows with
(micro_batch × 2,048)². With a varlen flash-attention kernel on a GPU the bins stay separate and larger micro-batches
cost nothing extra. `--micro-batch-size 4` shows the effect.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

for _name, _value in (
    ("HF_HUB_OFFLINE", "1"),
    ("HF_DATASETS_OFFLINE", "1"),
    ("TRANSFORMERS_OFFLINE", "1"),
    ("HF_HUB_DISABLE_TELEMETRY", "1"),
    ("TOKENIZERS_PARALLELISM", "false"),
    ("WANDB_DISABLED", "true"),
):
    os.environ.setdefault(_name, _value)
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

SYSTEM = "당신은 한국 세법 전문가입니다. 관련 법령을 근거로 정확하게 답변하세요."
LAWS = ["소득세법", "법인세법", "부가가치세법", "상속세 및 증여세법", "국세기본법", "조세특례제한법", "지방세법"]
SUBJECTS = [
    "거주자",
    "비거주자",
    "내국법인",
    "상속인",
    "수증자",
    "간이과세자",
    "일반과세자",
    "임대사업자",
    "양도인",
    "원천징수의무자",
    "근로소득자",
    "개인사업자",
    "특수관계인",
    "공익법인",
    "주택임대사업자",
]
OBJECTS = [
    "양도소득세",
    "상속재산가액",
    "증여재산공제",
    "부가가치세 매입세액",
    "종합소득금액",
    "근로소득공제",
    "퇴직소득",
    "배당소득",
    "1세대 1주택 비과세",
    "필요경비",
    "감가상각비",
    "접대비",
    "기부금",
    "과세표준",
    "산출세액",
    "가산세",
    "경정청구",
    "세금계산서",
    "공통매입세액",
    "가업상속공제",
    "배우자 상속공제",
    "중간예납세액",
]
CONDITIONS = [
    "법정신고기한 내에 과세표준신고서를 제출하지 아니한 경우",
    "특수관계인에게 시가보다 낮은 가액으로 양도한 경우",
    "상속개시일 전 10년 이내에 피상속인이 상속인에게 증여한 경우",
    "사업자등록을 하지 아니한 상태에서 재화를 공급한 경우",
    "임대주택을 5년 이상 임대한 후 양도하는 경우",
    "실지거래가액을 확인할 수 없는 경우",
    "해당 과세기간 종료일 현재 국내에 주소를 둔 경우",
]
PREDICATES = [
    "과세표준에 산입합니다",
    "비과세 대상에 해당합니다",
    "필요경비로 공제할 수 있습니다",
    "가산세가 부과됩니다",
    "경정청구를 할 수 있습니다",
    "매입세액을 공제받을 수 없습니다",
    "신고기한까지 신고하여야 합니다",
    "원천징수하여 납부하여야 합니다",
]
QUESTIONS = [
    "{law}상 {subject}가 {condition}에 {object}는 어떻게 처리되나요?",
    "{subject}의 {object} 계산 방법을 {law} 조문에 따라 설명해 주세요.",
    "{condition}, {subject}는 {object}와 관련하여 무엇을 해야 하나요?",
]


def _sentence(rng: random.Random) -> str:
    amount = f"{rng.randint(1, 900) * 1_000_000:,}원"
    article = f"{rng.choice(LAWS)} 제{rng.randint(1, 120)}조" + (f"의{rng.randint(2, 4)}" if rng.random() < 0.2 else "")
    return (
        f"{article}에 따르면 {rng.choice(SUBJECTS)}가 {rng.choice(CONDITIONS)} {rng.choice(OBJECTS)} {amount}은 "
        f"{rng.choice(PREDICATES)}."
    )


def conversation(rng: random.Random, sentences: int) -> list[dict[str, str]]:
    question = rng.choice(QUESTIONS).format(
        law=rng.choice(LAWS), subject=rng.choice(SUBJECTS), condition=rng.choice(CONDITIONS), object=rng.choice(OBJECTS)
    )
    answer = " ".join(_sentence(rng) for _ in range(sentences))
    return [
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": question},
        {"role": "assistant", "content": answer},
    ]


def token_length(tokenizer: Any, messages: list[dict[str, str]]) -> int:
    return len(tokenizer.apply_chat_template(messages, tokenize=True, return_dict=True)["input_ids"])


def make_examples(tokenizer: Any, n: int, seed: int, low: int, high: int) -> list[list[dict[str, str]]]:
    """n conversations whose rendered length is drawn uniformly from [low, high] tokens (answers grow by a sentence)."""
    rng = random.Random(seed)
    examples = []
    while len(examples) < n:
        target = rng.randint(low, high)
        messages = conversation(rng, 1)
        while token_length(tokenizer, messages) < target:
            messages[-1]["content"] += " " + _sentence(rng)
        if token_length(tokenizer, messages) <= high + 60:  # one sentence past the target at most
            examples.append(messages)
    return examples


def build_model(workdir: Path, seed: int) -> Path:
    from fine_tuning.train.tiny import build_tiny_model

    rng = random.Random(seed + 1)
    corpus = [m["content"] for _ in range(400) for m in conversation(rng, rng.randint(2, 6))]
    return build_tiny_model("tiny-random-phi", workdir / "base", corpus, seed)


def train_once(
    base: Path, examples: list[list[dict[str, str]]], *, packed: bool, micro_batch: int, seed: int, workdir: Path
) -> dict[str, Any]:
    """One epoch over `examples`; returns the token counts and the times of trainer.train() alone."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM, AutoTokenizer, PrinterCallback

    from fine_tuning.train.trainer import make_trainer, sft_config
    from slm_forest.config import TrainConfig

    torch.manual_seed(seed)
    tokenizer = AutoTokenizer.from_pretrained(base)
    model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32)
    lora = LoraConfig(
        r=16,
        lora_alpha=32,
        lora_dropout=0.05,
        task_type="CAUSAL_LM",
        target_modules=["q_proj", "k_proj", "v_proj", "dense", "fc1", "fc2"],
    )
    model = get_peft_model(model, lora)
    cfg = TrainConfig(
        base_model="tiny-random-phi",
        max_length=2048,
        packing=packed,
        epochs=1,
        micro_batch_size=micro_batch,
        learning_rate=1e-3,
        report_to=[],
        early_stopping_patience=None,
    )
    out = workdir / ("packed" if packed else "baseline")
    args = sft_config(cfg, seed, out, "cpu", "fp32", False, [])
    args.save_strategy = "no"
    args.logging_steps = 10_000  # logging work is not what is measured
    if not packed:
        # The seed's layout: every example padded to max_length, pad = eos, loss on the prompt too.
        args.pad_to_multiple_of = cfg.max_length
        args.assistant_only_loss = False
        tokenizer.pad_token = tokenizer.eos_token
    convs = [(str(i), m) for i, m in enumerate(examples)]
    trainer = make_trainer(model, tokenizer, args, convs, [], [])
    trainer.remove_callback(PrinterCallback)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as `slm train` does for tiny models on CPU
    try:
        wall, cpu = time.perf_counter(), time.process_time()
        trainer.train()
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    finally:
        torch.set_num_threads(threads)
    stats = trainer.token_counter.stats()
    return {**stats, "steps": trainer.state.global_step, "wall_s": wall, "cpu_s": cpu}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--examples", type=int, default=160, help="chat pairs per run (the same for both)")
    parser.add_argument("--min-tokens", type=int, default=220)
    parser.add_argument("--max-tokens", type=int, default=380)
    parser.add_argument("--micro-batch-size", type=int, default=1, help="packed run: 2,048-token bins per micro-batch")
    parser.add_argument("--baseline-batch-size", type=int, default=4, help="baseline: padded examples per micro-batch")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--keep", action="store_true", help="keep the temporary directory")
    opts = parser.parse_args()

    from transformers import AutoTokenizer

    from fine_tuning.train.trainer import quiet_transformers

    quiet_transformers()
    workdir = Path(tempfile.mkdtemp(prefix="slm-bench-train-"))
    try:
        base = build_model(workdir, opts.seed)
        tokenizer = AutoTokenizer.from_pretrained(base)
        examples = make_examples(tokenizer, opts.examples, opts.seed, opts.min_tokens, opts.max_tokens)
        lengths = [token_length(tokenizer, m) for m in examples]
        print(
            f"data: {len(examples)} Korean chat pairs, tokens per example mean {statistics.mean(lengths):.0f} "
            f"(min {min(lengths)}, max {max(lengths)}), {sum(lengths):,} tokens",
            flush=True,
        )
        packed = train_once(
            base, examples, packed=True, micro_batch=opts.micro_batch_size, seed=opts.seed, workdir=workdir
        )
        baseline = train_once(
            base, examples, packed=False, micro_batch=opts.baseline_batch_size, seed=opts.seed, workdir=workdir
        )
    finally:
        if not opts.keep:
            shutil.rmtree(workdir, ignore_errors=True)

    for name, run in (("packed  ", packed), ("baseline", baseline)):
        print(
            f"{name}: {run['steps']} optimizer steps, {run['positions']:,} positions, {run['real_tokens']:,} real tokens "
            f"(share {run['real_token_share']:.3f}), {run['cpu_s']:.1f} s CPU / {run['wall_s']:.1f} s wall → "
            f"{run['real_tokens'] / run['cpu_s']:,.0f} real tokens/s (CPU), {run['real_tokens'] / run['wall_s']:,.0f} (wall)"
        )
    if packed["real_tokens"] != baseline["real_tokens"]:
        raise SystemExit(f"the runs saw different real tokens: {packed['real_tokens']} vs {baseline['real_tokens']}")
    speedup = (packed["real_tokens"] / packed["cpu_s"]) / (baseline["real_tokens"] / baseline["cpu_s"])
    wall_speedup = (packed["real_tokens"] / packed["wall_s"]) / (baseline["real_tokens"] / baseline["wall_s"])
    print(f"wall-clock speedup {wall_speedup:.2f}x; load average {os.getloadavg()[0]:.2f}")
    print(
        f"train: real_token_share={packed['real_token_share']:.3f} baseline_share={baseline['real_token_share']:.3f} "
        f"speedup={speedup:.2f}"
    )


if __name__ == "__main__":
    main()
