"""The rewards of `slm reinforce`: plain functions of (completion text, the row's facts), each tested on its own.

A row's facts are the calculator's inputs (`RowFacts`: kind, date, inputs); the computation they give is the answer
key, so nothing here trusts a stored figure. A completion is read with the build stage's own readers
(`taxlaw.answer_steps.answer_statements` / `check_statements`, `taxlaw.verdict.matches`, `taxlaw.amounts`,
`taxlaw.citations` + `dataset.grounding`), the same ones that verified the training data:

- `final_amount`: 1.0 when the final claim is the 납부할 세액 to the 원 (a 10원 cut is the statute's own rounding,
  국고금관리법 제47조; a total labelled 지방소득세 포함 is compared with the total), else 0.0;
- `partial_amount`: 1 − relative error / scale, floored at 0, so a group of wrong answers still ranks the closer ones
  (the variance GRPO needs when nobody is exactly right yet);
- `steps`: the share of the labelled intermediate lines (과세표준, 산출세액, 공제, 할증, 가산세 …) that are right, over at
  least the core steps the computation has (과세표준 and 산출세액, unless the question gives them), so a bare final figure earns nothing here;
- `citations`: 1.0 when the answer cites an article the computation applies and no cited article is invented (missing
  from a law the corpus holds in full, unknown law, deleted or a 항 it lacks), 0.25 for real citations of no applied
  rule, 0.0 for none or any invented one;
- `format`: the mean of three checks — the answer ends with its final amount (at most a short basis line after it),
  it is Korean (Hangul share), it has no runaway length (characters, a line repeated three times).

Unscorable is `None`, not 0 (TRL leaves a completion whose rewards are all None out of the group's baseline and gives
it advantage 0): a row whose facts do not compute gets None everywhere, and a completion that is not Korean gets None
from the readers that only read Korean — `format` still scores it 0 for the language.

A truncated completion (cut at max_completion_length, no end-of-turn) is unscorable for the amount, step and citation
readers but **fails the format**: 0, not None. Measured why (bench/reinforce.py): with None everywhere a cut rollout
left the baseline, so ending was never worth more than running on; a terminated answer below its group's mean was
pushed down, the cut ones were not, and the share of rollouts running to the cap grew until most groups were flat.
Scored 0 it sits at the bottom of its group, so an answer that ends gets a positive advantage; its loss stays masked
(`mask_truncated_completions`), so its tokens are not pushed down either.
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import cached_property, lru_cache
from typing import Any

from slm_datagen.dataset.grounding import StatuteIndex, classify_citation
from slm_datagen.hangul import hangul_share
from slm_datagen.taxlaw.amounts import find_amounts
from slm_datagen.taxlaw.answer_steps import Statement, answer_statements, check_statements
from slm_datagen.taxlaw.citations import find_citations, normalize_law_name
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.kinds import compute, typed_inputs
from slm_datagen.taxlaw.tables import UnsupportedCase
from slm_datagen.taxlaw.verdict import matches

MIN_HANGUL_SHARE = 0.3  # build.min_hangul_share's default: the same bar the training answers passed
CORE_STEPS = ("taxable_base", "computed_tax")  # what every worked computation shows before the final figure
_INVENTED = frozenset({"not_in_full_law", "unknown_law", "wrong_version", "paragraph_missing"})
BASIS_TAIL_CHARS = 160  # room after the final amount for "(근거: 상속세 및 증여세법 제56조, 제69조)"


@dataclass(frozen=True)
class RowFacts:
    """What a prompt row carries for its rewards: the calculator's inputs and the amounts its question states."""

    kind: str
    year: int | str | None
    inputs: dict[str, Any]
    question_amounts: frozenset[int] = frozenset()

    @classmethod
    def from_json(cls, text: str) -> RowFacts:
        data = json.loads(text)
        return cls(data["kind"], data.get("year"), data["inputs"], frozenset(data.get("question_amounts") or ()))

    def to_json(self) -> str:
        payload = {"kind": self.kind, "year": self.year, "inputs": self.inputs}
        return json.dumps(payload | {"question_amounts": sorted(self.question_amounts)}, ensure_ascii=False)

    @cached_property
    def computation(self) -> TaxComputation | None:
        """The answer key, or None when the facts do not compute (the row is unscorable)."""
        try:
            return compute(self.kind, self.year, typed_inputs(self.kind, self.inputs))
        except (UnsupportedCase, ValueError, TypeError, KeyError):
            return None


@lru_cache(maxsize=4096)
def facts_from_json(text: str) -> RowFacts:
    """Parsed once per distinct row (each prompt comes back num_generations times per step)."""
    return RowFacts.from_json(text)


@dataclass(frozen=True)
class Weights:
    final_amount: float = 1.0
    partial_amount: float = 0.5
    steps: float = 0.5
    citations: float = 0.25
    format: float = 0.25


def is_korean(text: str) -> bool:
    return hangul_share(text) >= MIN_HANGUL_SHARE


def _readable(completion: str, facts: RowFacts, truncated: bool) -> TaxComputation | None:
    """The computation when the completion can be judged by the Korean readers; None = unscorable."""
    if truncated or not is_korean(completion):
        return None
    return facts.computation


def final_statement(completion: str, facts: RowFacts) -> Statement | None:
    statements = answer_statements(completion, facts.question_amounts)
    return next((s for s in statements if s.final), None)


def expected_finals(statement: Statement, c: TaxComputation) -> tuple[int, ...]:
    """What the final claim must equal: the 납부할 세액, a stated total with 지방소득세 the total, a refund its amount."""
    if statement.target == "refund":
        return (-c.payable,)
    if statement.target in ("total", "sum", "payment") and c.payable_with_local_tax:
        return (c.payable, c.payable_with_local_tax)
    return (c.payable,)


def final_amount(completion: str, facts: RowFacts, *, truncated: bool = False) -> float | None:
    c = _readable(completion, facts, truncated)
    if c is None:
        return None
    statement = final_statement(completion, facts)
    if statement is None:
        return 0.0
    return 1.0 if any(matches(statement.mention.won, v, "payable") for v in expected_finals(statement, c)) else 0.0


def partial_amount(completion: str, facts: RowFacts, *, truncated: bool = False, scale: float = 0.5) -> float | None:
    """1 at the exact figure, falling linearly to 0 at a relative error of `scale` (0.5 = half the tax off)."""
    c = _readable(completion, facts, truncated)
    if c is None:
        return None
    statement = final_statement(completion, facts)
    if statement is None:
        return 0.0
    stated = statement.mention.won
    errors = [abs(stated - v) / max(abs(v), 1) for v in expected_finals(statement, c)]
    return round(max(0.0, 1.0 - min(errors) / scale), 6)


def steps(completion: str, facts: RowFacts, *, truncated: bool = False) -> float | None:
    c = _readable(completion, facts, truncated)
    if c is None:
        return None
    lines = [s for s in answer_statements(completion, facts.question_amounts) if not s.final]
    wrong = len(check_statements(completion, lines, c))
    # a core step the question already states (the given 과세표준, a 공급대가) is a restated input, not a line to earn
    core = len({s.key for s in c.steps if s.key in CORE_STEPS and s.won not in facts.question_amounts})
    denominator = max(len(lines), core, 1)
    return round((len(lines) - wrong) / denominator, 6)


def _article_key(law: str, article: int, branch: int | None) -> tuple[str, int, int]:
    return normalize_law_name(law), article, branch or 0


def applied_articles(c: TaxComputation) -> set[tuple[str, int, int]]:
    """The articles the calculator applies (its own citations and every step's)."""
    keys = set()
    for text in [*c.articles, *(step.article for step in c.steps)]:
        keys |= {_article_key(x.law, x.article, x.branch) for x in find_citations(text)}
    return keys


def citations(
    completion: str, facts: RowFacts, index: StatuteIndex | None = None, *, truncated: bool = False
) -> float | None:
    c = _readable(completion, facts, truncated)
    if c is None:
        return None
    applied = applied_articles(c)
    default_law = next(iter(sorted(law for law, _, _ in applied)), None)
    cited = find_citations(completion, default_law=default_law)
    if not cited:
        return 0.0
    keys = {_article_key(x.law, x.article, x.branch) for x in cited}
    if index is not None:
        for citation in cited:
            if _article_key(citation.law, citation.article, citation.branch) in applied:
                continue  # the calculator's own citation: real law whether or not the corpus holds the article
            outcome, _ = classify_citation(citation, index, None, "reject")
            if outcome in _INVENTED:
                return 0.0
    return 1.0 if keys & applied else 0.25


def _runaway(completion: str, max_chars: int) -> bool:
    if len(completion) > max_chars:
        return True
    lines = [line.strip() for line in completion.splitlines() if len(line.strip()) >= 8]
    return any(count >= 3 for count in Counter(lines).values())


def ends_with_final(completion: str, facts: RowFacts) -> bool:
    """The final claim is the last amount, with at most a short basis line after it."""
    statement = final_statement(completion, facts)
    if statement is None:
        return False
    tail = completion[statement.mention.end :]
    return len(tail.strip()) <= BASIS_TAIL_CHARS and not find_amounts(tail)


def format_score(completion: str, facts: RowFacts, *, truncated: bool = False, max_chars: int = 3000) -> float | None:
    if truncated:
        return 0.0  # it neither ends with its final amount nor stays within length: see the module docstring
    korean = is_korean(completion)
    checks = [korean and ends_with_final(completion, facts), korean, not _runaway(completion, max_chars)]
    return round(sum(checks) / len(checks), 6)


def score_all(
    completion: str,
    facts: RowFacts,
    index: StatuteIndex | None = None,
    *,
    truncated: bool = False,
    scale: float = 0.5,
    max_chars: int = 3000,
) -> dict[str, float | None]:
    """Every reward of one completion, by name (what the trainer logs and `score_adapter` reports)."""
    return {
        "final_amount": final_amount(completion, facts, truncated=truncated),
        "partial_amount": partial_amount(completion, facts, truncated=truncated, scale=scale),
        "steps": steps(completion, facts, truncated=truncated),
        "citations": citations(completion, facts, index, truncated=truncated),
        "format": format_score(completion, facts, truncated=truncated, max_chars=max_chars),
    }
