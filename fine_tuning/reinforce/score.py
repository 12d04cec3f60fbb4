"""Numeric accuracy of a model on held-out calculation questions: what `slm evaluate` reports for base, SFT and RL.

`score_adapter(model, tokenizer, rows)` answers each row greedily (chat template with the generation prompt, stop on
eos and end-of-turn) and scores the answer with the rewards (`rewards.score_all`): exact accuracy (final amount right
to the 원) with a Wilson 95% interval, the mean of every reward, and the accuracy per kind. `load_for_scoring`
gives the model of a train or reinforce stage directory; `held_out_rows` the reinforce stage's test split.

How evaluate calls it (the evaluation rewrite owns that stage):
    rows = held_out_rows(run_dir / "reinforce" / "prompts.jsonl", split="test")
    for name, adapter in (("base", None), ("sft", run_dir / "train" / "adapter"), ("rl", run_dir / "reinforce" / "adapter")):
        model, tokenizer = load_for_scoring(run_dir / "train", adapter)
        report = score_adapter(model, tokenizer, rows, system_prompt=cfg.build.system_prompt)
"""

from __future__ import annotations

import math
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from fine_tuning.reinforce.prompts import PromptRow, read_rows
from fine_tuning.reinforce.rewards import score_all


@dataclass
class ScoreReport:
    n: int
    exact: int  # answers whose final amount is right to the 원
    accuracy: float
    interval_95: tuple[float, float]  # Wilson score interval of the accuracy
    unscorable: int  # truncated or not Korean
    reward_means: dict[str, float | None]
    by_kind: dict[str, dict[str, float]] = field(default_factory=dict)
    answers: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def wilson(successes: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return (0.0, 0.0)
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


def held_out_rows(prompts_path: Path, split: str = "test") -> list[PromptRow]:
    return [row for row in read_rows(prompts_path) if row.split == split]


def generate_answers(
    model: Any, tokenizer: Any, rows: list[PromptRow], system_prompt: str, max_new_tokens: int, batch_size: int
) -> list[tuple[str, bool]]:
    """(answer, truncated) per row, greedy, stopping on the model's end ids."""
    import torch

    eos_ids = model.generation_config.eos_token_id
    eos_ids = [eos_ids] if isinstance(eos_ids, int) else list(eos_ids or [tokenizer.eos_token_id])
    tokenizer.padding_side = "left"
    out: list[tuple[str, bool]] = []
    for start in range(0, len(rows), batch_size):
        batch = rows[start : start + batch_size]
        texts = [
            tokenizer.apply_chat_template(r.record(system_prompt)["prompt"], tokenize=False, add_generation_prompt=True)
            for r in batch
        ]
        encoded = tokenizer(texts, return_tensors="pt", padding=True, add_special_tokens=False).to(model.device)
        with torch.no_grad():
            generated = model.generate(
                **encoded,
                max_new_tokens=max_new_tokens,
                do_sample=False,
                eos_token_id=eos_ids,
                pad_token_id=tokenizer.pad_token_id,
            )
        for ids in generated[:, encoded["input_ids"].shape[1] :].tolist():
            ends = [i for i, token in enumerate(ids) if token in eos_ids]
            kept = ids[: ends[0]] if ends else ids
            out.append((tokenizer.decode(kept, skip_special_tokens=True), not ends))
    return out


def score_adapter(
    model: Any,
    tokenizer: Any,
    rows: list[PromptRow],
    *,
    system_prompt: str = "",
    max_new_tokens: int = 768,
    batch_size: int = 8,
    index: Any = None,
    keep_answers: int = 20,
) -> ScoreReport:
    answers = generate_answers(model, tokenizer, rows, system_prompt, max_new_tokens, batch_size)
    sums: dict[str, list[float]] = defaultdict(list)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    exact = unscorable = 0
    kept: list[dict[str, Any]] = []
    for row, (text, truncated) in zip(rows, answers):
        scores = score_all(text, row.facts, index, truncated=truncated)
        right = scores["final_amount"] == 1.0
        exact += right
        unscorable += scores["final_amount"] is None
        kinds[row.facts.kind][0] += right
        kinds[row.facts.kind][1] += 1
        for name, value in scores.items():
            if value is not None:
                sums[name].append(value)
        if len(kept) < keep_answers:
            kept.append({"row_id": row.id, "question": row.question, "answer": text, "scores": scores})
    n = len(rows)
    return ScoreReport(
        n=n,
        exact=exact,
        accuracy=round(exact / n, 4) if n else 0.0,
        interval_95=wilson(exact, n),
        unscorable=unscorable,
        reward_means={name: round(sum(v) / len(v), 4) if v else None for name, v in sums.items()},
        by_kind={k: {"n": t, "accuracy": round(r / t, 4)} for k, (r, t) in sorted(kinds.items())},
        answers=kept,
    )


def load_for_scoring(train_dir: Path, adapter_dir: Path | None, device: str | None = None) -> tuple[Any, Any]:
    """The train stage's base with `adapter_dir` (the SFT or the RL adapter; None = the base alone), for generation,
    with the train stage's tokenizer and generation stopping on eos and the end-of-turn token."""
    import torch
    import transformers
    from peft import PeftModel
    from transformers import AutoTokenizer

    from fine_tuning.train.loading import inference_dtype, load_pretrained, read_train_summary, torch_dtype

    summary = read_train_summary(train_dir)
    device = device or ("cuda" if torch.cuda.is_available() else "cpu")
    base = train_dir / summary["base_model_dir"] if summary.get("base_model_dir") else summary["base_model_path"]
    dtype = torch_dtype(inference_dtype(summary.get("dtype", "fp32"), device))
    model = load_pretrained(getattr(transformers, summary["model_class"]), base, dtype=dtype)
    if adapter_dir is not None:
        model = PeftModel.from_pretrained(model, str(adapter_dir))
    model.to(device)
    model.eval()
    tokenizer = AutoTokenizer.from_pretrained(str(train_dir / "tokenizer"))
    end_of_turn = summary.get("end_of_turn_token") or tokenizer.eos_token
    ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(end_of_turn)]
    model.generation_config.eos_token_id = list(dict.fromkeys(i for i in ids if i is not None))
    return model, tokenizer
