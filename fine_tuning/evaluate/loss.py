"""Eval loss and perplexity on the assistant tokens: the prompt (with the generation prompt) is masked, the answer
and its end-of-turn token count."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from fine_tuning.evaluate.examples import MODELS, as_model, groups_of, messages_of, split_prompt_answer
from slm_forest.progress import progress_bar
from slm_forest.records import SFTExample


def assistant_tokens(tokenizer: Any, example: SFTExample) -> tuple[list[int], list[int]]:
    """(prompt ids, answer ids): the answer is what the template renders after the generation prompt."""
    prompt_messages, _ = split_prompt_answer(example)
    full = tokenizer.apply_chat_template(messages_of(example), tokenize=False)
    prompt = tokenizer.apply_chat_template(prompt_messages, tokenize=False, add_generation_prompt=True)
    full_ids = list(tokenizer(full, add_special_tokens=False)["input_ids"])
    prompt_ids = list(tokenizer(prompt, add_special_tokens=False)["input_ids"])
    shared = 0
    for a, b in zip(full_ids, prompt_ids):
        if a != b:
            break
        shared += 1
    return full_ids[:shared], full_ids[shared:]


def answer_nll(
    model: Any, tokenizer: Any, examples: list[SFTExample], batch_size: int, bar: Any
) -> list[tuple[float, int]]:
    """(sum of negative log-likelihood, token count) of each example's answer."""
    from fine_tuning.evaluate.mcq import continuation_logprobs

    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    pairs = [assistant_tokens(tokenizer, ex) for ex in examples]
    out: list[tuple[float, int]] = []
    for start in range(0, len(pairs), batch_size):
        chunk = [(p, a) for p, a in pairs[start : start + batch_size]]
        scorable = [(p, a) for p, a in chunk if a]
        logprobs = (
            iter(continuation_logprobs(model, [p for p, _ in scorable], [a for _, a in scorable], pad))
            if scorable
            else iter(())
        )
        for _, answer in chunk:
            if not answer:
                out.append((0.0, 0))
                continue
            values = next(logprobs)
            out.append((-float(sum(values)), len(values)))
        bar.advance(len(chunk))
    return out


def loss_metrics(
    model: Any, tokenizer: Any, splits: dict[str, list[SFTExample]], batch_size: int, resamples: int, seed: int
) -> dict[str, Any]:
    """Per split: {base: {group: summary}, tuned: {…}, delta: {loss, perplexity}} with paired-bootstrap intervals
    over the split's examples (token-weighted, as the point values)."""
    from fine_tuning.evaluate.metrics import LossSums
    from fine_tuning.evaluate.stats import paired_bootstrap, ratio

    total = sum(len(v) for v in splits.values()) * len(MODELS)
    result: dict[str, Any] = {}
    with progress_bar("evaluate: answer loss", total) as bar:
        for split, examples in splits.items():
            if not examples:
                continue
            result[split] = {}
            per_example: dict[str, list[tuple[float, int]]] = {}
            for which in MODELS:
                sums: dict[str, LossSums] = defaultdict(LossSums)
                with as_model(model, which):
                    values = answer_nll(model, tokenizer, examples, batch_size, bar)
                per_example[which] = values
                for example, (nll, tokens) in zip(examples, values):
                    if tokens:
                        for group in groups_of(example):
                            sums[group].add(nll, tokens)
                result[split][which] = {group: s.summary() for group, s in sorted(sums.items())}
            base_rows = [[nll, float(tokens)] for nll, tokens in per_example["base"]]
            tuned_rows = [[nll, float(tokens)] for nll, tokens in per_example["tuned"]]
            result[split]["delta"] = {
                "loss": paired_bootstrap(base_rows, tuned_rows, ratio, resamples, seed).as_dict(),
                "perplexity": paired_bootstrap(base_rows, tuned_rows, _perplexity, resamples, seed).as_dict(),
            }
    return result


def _perplexity(sums: list[float]) -> float | None:
    import math

    from fine_tuning.evaluate.stats import ratio

    loss = ratio(sums)
    return None if loss is None else math.exp(min(loss, 700.0))
