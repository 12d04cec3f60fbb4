"""Numeric accuracy of a model on held-out calculation questions: what `slm evaluate` reports for base, SFT and RL.

`score_adapter(model, tokenizer, rows)` answers each row greedily (chat template with the generation prompt, stop on
eos and end-of-turn) and scores the answer with the rewards (`rewards.score_all`): exact accuracy (final amount right
to the 원) with a Wilson 95% interval, the mean of every reward, and the accuracy per kind. `load_for_scoring`
gives the model of a train or reinforce stage directory; `held_out_rows` the reinforce stage's test split.

`score_rows` keeps each row's result, for paired comparisons: `fine_tuning.evaluate.calc_heldout` runs it for base,
SFT and RL on one loaded model (adapters switched, not reloaded) and bootstraps the deltas.
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


def score_rows(
    model: Any,
    tokenizer: Any,
    rows: list[PromptRow],
    *,
    system_prompt: str = "",
    max_new_tokens: int = 768,
    batch_size: int = 8,
    index: Any = None,
) -> list[dict[str, Any]]:
    """One dict per row, in order: its answer, whether it was cut at max_new_tokens, every reward, and `exact`
    (the final amount right to the 원; an unscorable answer is not exact). Paired comparisons read these."""
    answers = generate_answers(model, tokenizer, rows, system_prompt, max_new_tokens, batch_size)
    scored: list[dict[str, Any]] = []
    for row, (text, truncated) in zip(rows, answers):
        scores = score_all(text, row.facts, index, truncated=truncated)
        scored.append(
            {
                "row_id": row.id,
                "kind": row.facts.kind,
                "answer": text,
                "truncated": truncated,
                "scores": scores,
                "exact": scores["final_amount"] == 1.0,
            }
        )
    return scored


def summarize(rows: list[PromptRow], scored: list[dict[str, Any]], keep_answers: int = 20) -> ScoreReport:
    """Accuracy with its Wilson interval, reward means and accuracy per kind over `score_rows`' output."""
    sums: dict[str, list[float]] = defaultdict(list)
    kinds: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for item in scored:
        kinds[item["kind"]][0] += item["exact"]
        kinds[item["kind"]][1] += 1
        for name, value in item["scores"].items():
            if value is not None:
                sums[name].append(value)
    n, exact = len(scored), sum(item["exact"] for item in scored)
    return ScoreReport(
        n=n,
        exact=exact,
        accuracy=round(exact / n, 4) if n else 0.0,
        interval_95=wilson(exact, n),
        unscorable=sum(item["scores"]["final_amount"] is None for item in scored),
        reward_means={name: round(sum(v) / len(v), 4) if v else None for name, v in sums.items()},
        by_kind={k: {"n": t, "accuracy": round(r / t, 4)} for k, (r, t) in sorted(kinds.items())},
        answers=[
            {"row_id": item["row_id"], "question": row.question, "answer": item["answer"], "scores": item["scores"]}
            for row, item in list(zip(rows, scored))[:keep_answers]
        ],
    )


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
    scored = score_rows(
        model,
        tokenizer,
        rows,
        system_prompt=system_prompt,
        max_new_tokens=max_new_tokens,
        batch_size=batch_size,
        index=index,
    )
    return summarize(rows, scored, keep_answers)


def stop_ids(tokenizer: Any, summary: dict[str, Any]) -> list[int]:
    """eos and the train stage's end-of-turn token (Gemma 3: 1 and 106): where a generated answer ends."""
    end_of_turn = summary.get("end_of_turn_token") or tokenizer.eos_token
    ids = [tokenizer.eos_token_id, tokenizer.convert_tokens_to_ids(end_of_turn)]
    return list(dict.fromkeys(i for i in ids if i is not None))


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
    model.generation_config.eos_token_id = stop_ids(tokenizer, summary)
    return model, tokenizer
