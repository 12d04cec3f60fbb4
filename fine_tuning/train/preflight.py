"""Checks on the tokenized training data before the first optimizer step, so no GPU hour is spent on a run that
cannot learn what we want.

Each example is tokenized exactly as TRL will tokenize it (`apply_chat_template(..., return_assistant_tokens_mask=True)`
with the training template), then:
- generation_markers: the template has `{% generation %}…{% endgeneration %}`, or assistant-only loss is empty;
- assistant_mask: every example trains some tokens, and not all of them (all ones = the prompt is trained too);
- end_of_turn: the end-of-turn token (`<end_of_turn>` for Gemma, `<|endoftext|>` for Phi-2) is inside the mask,
  so the model learns to stop;
- pad_token: a pad token exists and differs from eos, or eos is still trained (pad = eos masks eos in many
  collators and the model never learns to stop);
- max_length: no example loses its whole answer to truncation (the prompt alone fills `train.max_length`);
  examples whose answer is only cut short train without their end-of-turn token — how a model learns never to
  stop. Their share is reported; above `train.max_truncated_share` (default 1 %) the run stops with the fix
  (the `train.max_length` that would bring it under), unless `train.truncated: drop` leaves them out (counted).
Each failure is one SlmError naming the config key and the fix; the report goes into train_summary.json.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from fine_tuning.train.chat_templates import has_generation_markers
from slm_forest.errors import SlmError


@dataclass
class TokenizedExample:
    id: str
    input_ids: list[int]
    assistant_mask: list[int]

    @property
    def answer_start(self) -> int | None:
        return next((i for i, bit in enumerate(self.assistant_mask) if bit), None)


@dataclass
class PreflightReport:
    examples: int
    tokens: int
    trained_tokens: int
    trained_share: float  # share of tokens in the loss (assistant answers + their end-of-turn tokens)
    max_example_tokens: int
    max_length: int
    truncated_examples: int  # longer than max_length: the end of their answer (and its end-of-turn token) is cut
    truncated_share: float  # truncated_examples / examples
    dropped_truncated: int  # left out of training by train.truncated=drop
    end_of_turn_token: str
    pad_token: str | None
    eos_token: str | None
    checks: dict[str, str] = field(default_factory=dict)
    truncated_ids: list[str] = field(default_factory=list)  # the examples cut at max_length

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["truncated_ids"] = data["truncated_ids"][:20]  # a sample in train_summary.json, not thousands
        return data


def tokenize_examples(
    tokenizer: Any, examples: list[tuple[str, list[dict[str, str]]]], template: str
) -> list[TokenizedExample]:
    out: list[TokenizedExample] = []
    for example_id, messages in examples:
        try:
            encoded = tokenizer.apply_chat_template(
                messages,
                tokenize=True,
                return_dict=True,
                return_assistant_tokens_mask=True,
                chat_template=template,
            )
        except Exception as exc:  # noqa: BLE001 - jinja errors (roles not alternating …) become one line
            raise SlmError(
                f"train example {example_id}: the chat template cannot render it ({exc})",
                "roles must be system?, then user/assistant alternating, ending with an assistant answer",
            ) from None
        out.append(TokenizedExample(example_id, list(encoded["input_ids"]), list(encoded["assistant_masks"])))
    return out


def _token_id(tokenizer: Any, token: str) -> int | None:
    vocab = tokenizer.get_vocab()
    return vocab.get(token)


def _end_of_turn_id(tokenizer: Any, template: str, end_of_turn_token: str) -> int:
    """The template can mark answers for assistant-only loss, and the end-of-turn token exists: its id."""
    if not has_generation_markers(template):
        raise SlmError(
            "the chat template has no {% generation %} markers, so assistant-only loss would train on nothing",
            "set train.chat_template to a .jinja file with {% generation %}…{% endgeneration %} around each answer",
        )
    eot_id = _token_id(tokenizer, end_of_turn_token)
    if eot_id is None:
        raise SlmError(
            f"the end-of-turn token {end_of_turn_token!r} is not in the tokenizer's vocabulary",
            "check the registry entry for train.base_model (end_of_turn_token) or the tokenizer",
        )
    return eot_id


def _check_example(ex: TokenizedExample, eot_id: int, end_of_turn_token: str, max_length: int) -> list[int]:
    """One example trains some tokens but not all, its end-of-turn token among them, and keeps part of its answer
    within max_length; returns its trained token ids."""
    n_trained = sum(ex.assistant_mask)
    if n_trained == 0:
        raise SlmError(
            f"train example {ex.id}: the assistant mask is empty, nothing of it would be trained",
            "each example must end with an assistant answer, and train.chat_template must put "
            "{% generation %} around the answer text",
        )
    if n_trained == len(ex.input_ids):
        raise SlmError(
            f"train example {ex.id}: the assistant mask covers every token, so the prompt would be trained too",
            "put {% generation %}…{% endgeneration %} only around the assistant answers in train.chat_template",
        )
    trained_ids = [t for t, bit in zip(ex.input_ids, ex.assistant_mask) if bit]
    if eot_id not in trained_ids:
        raise SlmError(
            f"train example {ex.id}: the end-of-turn token {end_of_turn_token!r} is not trained (outside the "
            "assistant mask), so the model would never learn to stop",
            "end each answer with the end-of-turn token inside {% generation %}…{% endgeneration %} "
            "(train.chat_template)",
        )
    start = ex.answer_start or 0
    if start >= max_length:
        raise SlmError(
            f"train example {ex.id}: its prompt is {start} tokens, so train.max_length={max_length} cuts the "
            "whole answer away",
            f"raise train.max_length to at least {len(ex.input_ids)} (this example's length) or shorten the "
            "prompts (build.system_prompt, chunk size)",
        )
    return trained_ids


def _check_pad_token(tokenizer: Any, eos_trained: bool) -> str:
    """A pad token exists, and pad = eos only when eos is still trained; the check's result."""
    pad_id, eos_id = tokenizer.pad_token_id, tokenizer.eos_token_id
    if pad_id is None:
        raise SlmError(
            "the tokenizer has no pad token",
            "give it a pad token distinct from eos (fine_tuning.train.loading.prepare_tokenizer does this for training)",
        )
    if pad_id == eos_id and not eos_trained:
        raise SlmError(
            f"pad = eos ({tokenizer.eos_token!r}) and eos is never trained: the model would not learn to stop",
            "give the tokenizer a pad token distinct from eos (fine_tuning.train.loading.prepare_tokenizer)",
        )
    return "ok" if pad_id != eos_id else "ok (pad = eos, but eos is trained)"


def truncation_check(lengths: list[int], max_length: int, max_share: float, policy: str) -> str:
    """The max_length check's result for these example lengths; SlmError when too many answers are cut."""
    truncated = sum(1 for n in lengths if n > max_length)
    if truncated == 0:
        return "ok"
    share = truncated / len(lengths)
    if policy == "drop":
        return f"ok ({truncated} answers cut at train.max_length dropped: train.truncated=drop)"
    if share > max_share:
        # The smallest max_length that keeps the cut share within the limit.
        allowed = int(max_share * len(lengths))
        needed = sorted(lengths, reverse=True)[allowed] if allowed < len(lengths) else max_length
        raise SlmError(
            f"train.max_length={max_length} cuts {truncated} of {len(lengths)} answers ({share:.1%}, above "
            f"train.max_truncated_share={max_share:.1%}): they would train without their end-of-turn token, and "
            "the model would learn not to stop",
            f"raise train.max_length to {needed}, or set train.truncated: drop to leave those examples out",
        )
    return f"ok ({truncated} answers, {share:.1%}, cut short at train.max_length; limit {max_share:.1%})"


def run_preflight(
    tokenizer: Any,
    examples: list[tuple[str, list[dict[str, str]]]],
    *,
    template: str,
    end_of_turn_token: str,
    max_length: int,
    max_truncated_share: float = 1.0,
    truncated_policy: str = "stop",
) -> PreflightReport:
    """Tokenize `examples` (id, messages) with `template` and check them; raise SlmError on the first failure.

    `truncated_policy`: "stop" (fail above `max_truncated_share`) or "drop" (report them in `truncated_ids`, for
    the caller to leave out)."""
    checks: dict[str, str] = {}
    if not examples:
        raise SlmError("train.jsonl has no examples", "run `slm build CONFIG` (or check build.val_share/test_share)")
    eot_id = _end_of_turn_id(tokenizer, template, end_of_turn_token)
    checks["generation_markers"] = "ok"

    tokenized = tokenize_examples(tokenizer, examples, template)
    tokens = trained = truncated = 0
    eos_trained = False
    eos_id = tokenizer.eos_token_id
    for ex in tokenized:
        trained_ids = _check_example(ex, eot_id, end_of_turn_token, max_length)
        eos_trained = eos_trained or (eos_id is not None and eos_id in trained_ids)
        if len(ex.input_ids) > max_length:
            truncated += 1
        tokens += len(ex.input_ids)
        trained += len(trained_ids)
    checks["assistant_mask"] = "ok"
    checks["end_of_turn"] = "ok"
    lengths = [len(ex.input_ids) for ex in tokenized]
    checks["max_length"] = truncation_check(lengths, max_length, max_truncated_share, truncated_policy)
    truncated_ids = [ex.id for ex in tokenized if len(ex.input_ids) > max_length]
    if truncated_policy == "drop" and len(truncated_ids) == len(tokenized):
        raise SlmError(
            f"train.truncated=drop: every example is longer than train.max_length={max_length}",
            f"raise train.max_length (the longest example has {max(lengths)} tokens)",
        )
    checks["pad_token"] = _check_pad_token(tokenizer, eos_trained)

    return PreflightReport(
        examples=len(tokenized),
        tokens=tokens,
        trained_tokens=trained,
        trained_share=round(trained / tokens, 4) if tokens else 0.0,
        max_example_tokens=max(len(ex.input_ids) for ex in tokenized),
        max_length=max_length,
        truncated_examples=truncated,
        truncated_share=round(truncated / len(tokenized), 4),
        dropped_truncated=len(truncated_ids) if truncated_policy == "drop" else 0,
        end_of_turn_token=end_of_turn_token,
        pad_token=tokenizer.pad_token,
        eos_token=tokenizer.eos_token,
        checks=checks,
        truncated_ids=truncated_ids,
    )
