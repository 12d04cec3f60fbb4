"""Multiple-choice benchmarks in the KMMLU CSV format, scored by log-likelihood (no generation, no answer parsing).

File format (KMMLU, HAERAE-HUB): a header `question,answer,A,B,C,D[,Category,Human Accuracy]`, `answer` 1–4 naming the
correct option. Also accepted: 2 to 10 option columns `A`…`J` (세무사/공인회계사 five-option items ①–⑤, true/false
sets with A/B, KMMLU-Pro/Redux style files), answers as numbers (`3`), letters (`C`) or circled numbers (`③`). A row
naming several answers (`1,3`, `AC`) is an error: one option is scored right. Each row becomes an `MCQuestion`; its
`Category` (KMMLU's column, else the file's subject) groups the macro average.

This module is the *cloze* scorer, kept for small base models that cannot follow a letter format; the published
protocol (the lettered options in the prompt, the letter scored, 5-shot) runs through lm-evaluation-harness
(`fine_tuning.evaluate.harness`). Cloze scoring: the prompt is

    질문: <question>
    답:

(preceded by `few_shot` solved examples in the same form, each followed by its correct option), and each option
" <option text>" is scored by the sum of the log-probabilities of its tokens given the prompt. The prediction is the
option with the highest sum (`accuracy`) and, because long options collect more negative log-probability, also the
one with the highest sum divided by the option's length in characters (`accuracy_norm`, the length normalisation of
lm-evaluation-harness's acc_norm, with characters instead of bytes so Hangul is not weighted three times). Option text
is scored rather than the letters because small and base models rarely follow a letter format; the cloze form
measures what the model knows about each statement. Its numbers are not comparable with published KMMLU scores.

Few-shot examples come from `<Subject>-dev.csv` beside the file when it exists (KMMLU ships 5 dev rows per subject),
otherwise from the file's first rows, which are then excluded from the scored questions.

Zero-shot and few-shot are both reported (KMMLU's paper reports both, and they can disagree: a small tuned model may
gain zero-shot and lose few-shot): `shot_counts(evaluate.few_shot)` is `[0]` for few_shot 0, else `[0, k]`. Both
settings score the same questions (without the rows used as shots), so the two accuracies are comparable.

All options of a question go through the model in one left-padded batch with explicit position ids, and only the
logits of the last (longest option + 1) positions are computed (`logits_to_keep`), so a 256k-vocabulary model does not
materialise full-vocabulary logits for the whole prompt.
"""

from __future__ import annotations

import csv
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tuning.serve.generate import max_positions
from slm_forest.errors import SlmError

LETTERS = tuple("ABCDEFGHIJ")  # up to ten options (KMMLU-Pro style files); at least two (true/false sets)
MIN_OPTIONS = 2
_CIRCLED_ANSWERS = "①②③④⑤⑥⑦⑧⑨⑩"
_MULTI_ANSWER = re.compile(r"[,;/&+|]|\s|및|와|과")


@dataclass(frozen=True)
class MCQuestion:
    question: str
    options: tuple[str, ...]
    answer: int  # 0-based index of the correct option
    row: int  # 1-based data row in the CSV (header excluded)
    category: str = ""


@dataclass(frozen=True)
class OptionScores:
    """Log-likelihoods of each option of one question."""

    loglik: tuple[float, ...]
    tokens: tuple[int, ...]
    chars: tuple[int, ...]

    @property
    def pick(self) -> int:
        return max(range(len(self.loglik)), key=lambda i: self.loglik[i])

    @property
    def pick_norm(self) -> int:
        return max(range(len(self.loglik)), key=lambda i: self.loglik[i] / max(1, self.chars[i]))


def option_letters(header: list[str], path: Path) -> tuple[str, ...]:
    """The option columns of a header: A, B, … contiguous from A, 2 to 10 of them."""
    present = [letter for letter in LETTERS if letter in header]
    letters = LETTERS[: len(present)]
    if tuple(present) != letters:
        raise SlmError(
            f"{path}:1: option columns {','.join(present)} are not contiguous from A (header: {','.join(header)})",
            "name the option columns A, B, C, … without gaps",
        )
    if len(letters) < MIN_OPTIONS:
        raise SlmError(
            f"{path}:1: {len(letters)} option column(s) (header: {','.join(header)})",
            "a multiple-choice file needs 2 to 10 option columns A…J (true/false: A and B)",
        )
    return letters


def parse_answer(raw: str, letters: tuple[str, ...], where: str) -> int:
    """0-based index of the correct option from `3`, `3.0`, `C`, `c` or `③`; several answers are an error."""
    value = raw.strip()
    numbers = [str(i + 1) for i in range(len(letters))]
    hint = f"answer with one option: 1-{len(letters)} or {letters[0]}-{letters[-1]}"
    if _MULTI_ANSWER.search(value) or (len(value) > 1 and value.upper().isalpha()):
        raise SlmError(f"{where}: answer {raw!r} names several options; multiple-answer rows are not supported", hint)
    if value.upper() in letters:
        return letters.index(value.upper())
    if len(value) == 1 and value in _CIRCLED_ANSWERS[: len(letters)]:
        return _CIRCLED_ANSWERS.index(value)
    try:
        number = float(value)
    except ValueError:
        number = -1.0
    if number.is_integer() and str(int(number)) in numbers:
        return int(number) - 1
    raise SlmError(f"{where}: answer {raw!r} is not one of {len(letters)} options", hint)


def read_benchmark(path: Path) -> list[MCQuestion]:
    """Rows of a KMMLU-format CSV (2-10 options); a bad header or row is an error naming the file and line."""
    path = Path(path)
    if not path.is_file():
        raise SlmError(
            f"evaluate.benchmarks: {path} not found", "list KMMLU-format CSV files (question,answer,A,B,C,D,…)"
        )
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [h.strip() for h in reader.fieldnames or []]
        reader.fieldnames = header
        missing = [c for c in ("question", "answer") if c not in header]
        if missing:
            raise SlmError(
                f"{path}:1: missing column(s) {', '.join(missing)} (header: {','.join(header)})",
                "use the KMMLU layout: question,answer,A,B,C,D[,E…] with answer 1-n or A-…",
            )
        letters = option_letters(header, path)
        questions: list[MCQuestion] = []
        for index, row in enumerate(reader, start=1):
            where = f"{path}:{reader.line_num}"
            answer = parse_answer(row.get("answer") or "", letters, where)
            options = tuple((row.get(letter) or "").strip() for letter in letters)
            question = (row.get("question") or "").strip()
            if not question or not all(options):
                empty = [letter for letter, option in zip(letters, options) if not option]
                raise SlmError(
                    f"{where}: empty {'question' if not question else 'option ' + ','.join(empty)}",
                    f"every row of this file needs {len(letters)} options ({letters[0]}-{letters[-1]}); fix or remove it",
                )
            category = (row.get("Category") or "").strip() or path.stem.split("-", 1)[0]
            questions.append(MCQuestion(question, options, answer, index, category))
    if not questions:
        raise SlmError(f"{path}: no questions", "the file has a header but no rows")
    return questions


def dev_file_for(path: Path) -> Path | None:
    """`Taxation-test.csv` -> `Taxation-dev.csv` beside it, when it exists and is another file."""
    path = Path(path)
    subject = path.name.split("-", 1)[0] if "-" in path.name else path.stem
    candidate = path.with_name(f"{subject}-dev.csv")
    if candidate.is_file() and candidate.resolve() != path.resolve():
        return candidate
    return None


def split_shots(path: Path, questions: list[MCQuestion], k: int) -> tuple[list[MCQuestion], list[MCQuestion], str]:
    """(shots, questions to score, where the shots came from)."""
    if k <= 0:
        return [], questions, "none"
    dev = dev_file_for(path)
    if dev is not None:
        shots = read_benchmark(dev)[:k]
        return shots, questions, dev.name
    if k >= len(questions):
        raise SlmError(
            f"evaluate.few_shot={k}: {path.name} has only {len(questions)} questions and no -dev.csv beside it",
            f"lower evaluate.few_shot below {len(questions)} or put a {path.name.split('-', 1)[0]}-dev.csv beside it",
        )
    return questions[:k], questions[k:], f"first {k} rows (excluded from scoring)"


def shot_counts(few_shot: int) -> list[int]:
    """The shot settings a benchmark is scored in: zero-shot always, and `few_shot` when it is above 0."""
    return [0] if few_shot <= 0 else [0, int(few_shot)]


def format_question(question: MCQuestion) -> str:
    return f"질문: {question.question}\n답:"


def build_prompt(question: MCQuestion, shots: list[MCQuestion]) -> str:
    solved = "".join(f"{format_question(s)} {s.options[s.answer]}\n\n" for s in shots)
    return solved + format_question(question)


def continuation(option: str) -> str:
    return " " + option


def _device(model: Any) -> Any:
    try:
        return next(model.parameters()).device
    except (StopIteration, AttributeError):
        import torch

        return torch.device("cpu")


def continuation_logprobs(
    model: Any, contexts: list[list[int]], continuations: list[list[int]], pad_id: int
) -> list[list[float]]:
    """log p(token | everything before it) for every continuation token, one left-padded forward pass.

    Rows are `context + continuation`, left-padded so all continuations end at the last position; position ids are
    passed explicitly (a forward pass does not derive them from the attention mask), and only the last
    (longest continuation + 1) logits are materialised.
    """
    import torch

    longest = max(len(c) for c in continuations)
    limit = max_positions(model)
    sequences = []
    for context, cont in zip(contexts, continuations):
        if limit is not None and len(context) + len(cont) > limit:
            context = context[len(context) + len(cont) - limit :]  # keep the end: the part next to the answer
        sequences.append(context + cont)
    width = max(len(s) for s in sequences)
    ids = torch.full((len(sequences), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(sequences), width), dtype=torch.long)
    for row, seq in enumerate(sequences):
        ids[row, width - len(seq) :] = torch.tensor(seq, dtype=torch.long)
        mask[row, width - len(seq) :] = 1
    positions = (mask.cumsum(-1) - 1).clamp(min=0)
    keep = longest + 1  # logits at width-keep … width-1; the last one predicts nothing we score
    device = _device(model)
    with torch.no_grad():
        out = model(
            input_ids=ids.to(device),
            attention_mask=mask.to(device),
            position_ids=positions.to(device),
            logits_to_keep=keep,
            use_cache=False,
        )
    logprobs = torch.log_softmax(out.logits[:, -keep:, :].float(), dim=-1)
    result: list[list[float]] = []
    for row, cont in enumerate(continuations):
        # token cont[j] sits at position width-len(cont)+j and is predicted by the logit one before it, which in the
        # kept window has index keep-1-len(cont)+j.
        start = keep - 1 - len(cont)
        targets = torch.tensor(cont, dtype=torch.long, device=logprobs.device)
        picked = logprobs[row, start : start + len(cont), :].gather(-1, targets[:, None]).squeeze(-1)
        result.append(picked.tolist())
    return result


def option_logliks(model: Any, tokenizer: Any, prompt: str, options: list[str]) -> OptionScores:
    """Sum of log p(option tokens | prompt) for each option of one question."""
    context = list(tokenizer(prompt, add_special_tokens=True)["input_ids"])
    conts = [list(tokenizer(continuation(o), add_special_tokens=False)["input_ids"]) for o in options]
    if any(not c for c in conts):
        raise SlmError("an option encodes to no tokens", "check the benchmark file for empty options")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    logprobs = continuation_logprobs(model, [context] * len(conts), conts, pad)
    return OptionScores(tuple(sum(lp) for lp in logprobs), tuple(len(c) for c in conts), tuple(len(o) for o in options))
