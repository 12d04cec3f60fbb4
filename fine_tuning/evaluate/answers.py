"""Answers of base and tuned to the test questions, their scores (chrF, ROUGE-L, citations, final amount) and the
per-group aggregates."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fine_tuning.evaluate.examples import MODELS, as_model, groups_of, split_prompt_answer
from slm_forest.progress import progress_bar
from slm_forest.records import SFTExample


def generate_answers(
    model: Any, tokenizer: Any, prompts: list[list[dict[str, str]]], cfg: Any, seed: int
) -> dict[str, list[Any]]:
    """Completions of base and tuned for every prompt, batched by prompt length (fewer pads), in input order."""
    import torch

    from fine_tuning.serve.generate import GenerationSettings, generate_batch, stop_token_ids

    settings = GenerationSettings(max_new_tokens=cfg.max_new_tokens, temperature=cfg.temperature)
    stop_ids = stop_token_ids(tokenizer, model)
    lengths = [len(tokenizer.apply_chat_template(p, tokenize=False, add_generation_prompt=True)) for p in prompts]
    order = sorted(range(len(prompts)), key=lambda i: lengths[i])
    out: dict[str, list[Any]] = {}
    with progress_bar("evaluate: generating answers", len(prompts) * len(MODELS)) as bar:
        for which in MODELS:
            torch.manual_seed(seed)  # sampling (temperature > 0) draws the same way for both models
            results: list[Any] = [None] * len(prompts)
            with as_model(model, which):
                for start in range(0, len(order), cfg.batch_size):
                    batch = order[start : start + cfg.batch_size]
                    for index, completion in zip(
                        batch, generate_batch(model, tokenizer, [prompts[i] for i in batch], settings, stop_ids)
                    ):
                        results[index] = completion
                    bar.advance(len(batch))
            out[which] = results
    return out


def score_answer(answer: str, reference: str, example: SFTExample, corpus: Any) -> dict[str, Any]:
    from fine_tuning.evaluate.calculator import check_numeric
    from fine_tuning.evaluate.citation_scores import score_citations
    from fine_tuning.evaluate.metrics import chrf_sentence, rouge_l

    numeric = check_numeric(answer, reference, example.meta)
    return {
        "chrf": round(chrf_sentence(answer, reference), 2),
        "rouge_l": round(rouge_l(answer, reference), 4),
        "citations": score_citations(answer, reference, example.meta.get("citations") or [], corpus).as_dict(),
        "numeric": numeric.as_dict() if numeric is not None and numeric.expected is not None else None,
    }


def aggregate(rows: list[dict[str, Any]], examples: list[SFTExample]) -> dict[str, Any]:
    from fine_tuning.evaluate.metrics import ScoreSums

    out: dict[str, Any] = {}
    for which in MODELS:
        sums: dict[str, ScoreSums] = defaultdict(ScoreSums)
        for row, example in zip(rows, examples):
            for group in groups_of(example):
                sums[group].add(row[which]["answer"], row["reference"], row[which]["scores"])
        out[which] = {group: s.summary() for group, s in sorted(sums.items())}
    return out


def answer_rows(
    model: Any, tokenizer: Any, examples: list[SFTExample], path: str, cfg: Any, seed: int, corpus: Any
) -> list[dict[str, Any]]:
    """One row per test question (`predictions.jsonl`): the question, the reference, both answers and their scores."""
    prompts, references = [], []
    for example in examples:
        prompt, reference = split_prompt_answer(example, path)
        prompts.append(prompt)
        references.append(reference)
    completions = generate_answers(model, tokenizer, prompts, cfg, seed)
    rows: list[dict[str, Any]] = []
    for i, example in enumerate(examples):
        question = next((m["content"] for m in reversed(prompts[i]) if m["role"] == "user"), "")
        row: dict[str, Any] = {
            "id": example.id,
            "pair_id": example.meta.get("pair_id"),
            "law_name": example.meta.get("law_name"),
            "kind": example.meta.get("kind"),
            "style": example.meta.get("style"),
            "question": question,
            "reference": references[i],
        }
        for which in MODELS:
            c = completions[which][i]
            row[which] = {
                "answer": c.text,
                "finish_reason": c.finish_reason,
                "tokens": c.completion_tokens,
                "scores": score_answer(c.text, references[i], example, corpus),
            }
        rows.append(row)
    return rows
