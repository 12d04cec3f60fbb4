"""The prompts `slm reinforce` trains on: calculation questions whose answer the calculator knows.

Two sources, one row type (`PromptRow`: the question, its facts for the rewards, its split):
- generated: `slm_datagen.taxlaw.questions.generate_questions` (seeded, every kind the calculator computes, both
  audiences). Families (kind + input shape) are assigned to splits with the build stage's own `plan_splits`, so no
  family is in two splits and adding questions moves few families;
- the built dataset's calculation pairs (style `calculation` in build/{train,val,test}.jsonl): a pair with a
  calculation payload (distill/qa_pairs.jsonl) contributes its payload; a free-text one its single reading of the
  question (dataset.question_readings). Pairs the build only kept as unverified (flag calc_unverified) and questions
  with several readings are left out: their answer is not known. They keep the split the build gave them.

Pure Python (no torch): the stage, the planner and `score_adapter` all read rows from here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fine_tuning.reinforce.rewards import RowFacts
from slm_datagen.dataset.question_readings import read_question
from slm_datagen.dataset.splits import plan_splits
from slm_datagen.taxlaw.amounts import find_amounts, format_won
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.questions import generate_questions
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl, write_jsonl
from slm_forest.records import QAPair, SFTExample

SPLITS = ("train", "val", "test")
_TAX_NAMES = {
    "gift_tax": "증여세",
    "inheritance_tax": "상속세",
    "inheritance_tax_estate": "상속세",
    "income_tax": "종합소득세",
    "capital_gains_tax": "양도소득세",
    "capital_gains_sale": "양도소득세",
    "corporate_tax": "법인세",
    "vat": "부가가치세",
    "simplified_vat": "부가가치세",
}


@dataclass(frozen=True)
class PromptRow:
    id: str
    source: str  # generated | dataset
    split: str
    family: str
    audience: str
    question: str
    facts: RowFacts

    def record(self, system_prompt: str) -> dict[str, Any]:
        """The row as GRPOTrainer reads it: a conversational prompt, and the facts the rewards get as a keyword."""
        messages = [{"role": "system", "content": system_prompt}] if system_prompt else []
        messages.append({"role": "user", "content": self.question})
        return {"prompt": messages, "row_id": self.id, "facts": self.facts.to_json()}

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "source": self.source,
            "split": self.split,
            "family": self.family,
            "audience": self.audience,
            "question": self.question,
            "facts": self.facts.to_json(),
        }

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> PromptRow:
        return cls(
            row["id"],
            row["source"],
            row["split"],
            row["family"],
            row["audience"],
            row["question"],
            RowFacts.from_json(row["facts"]),
        )


def question_amounts(question: str) -> frozenset[int]:
    """The amounts a question states: an answer restating them makes no claim (answer_steps)."""
    return frozenset(m.won for m in find_amounts(question) if not m.qualifier)


def generated_rows(n: int, seed: int, kinds: tuple[str, ...], val_share: float, test_share: float) -> list[PromptRow]:
    questions = generate_questions(n, seed, kinds)
    plan = plan_splits({q.family for q in questions}, val_share, test_share, seed)
    return [
        PromptRow(
            q.id,
            "generated",
            plan.assignment[q.family],
            q.family,
            q.audience,
            q.question,
            RowFacts(q.kind, q.case.when, dict(q.case.inputs), question_amounts(q.question)),
        )
        for q in questions
    ]


def _pair_facts(pair: QAPair) -> RowFacts | None:
    """The facts whose computation is the pair's answer, or None when that answer is not known for sure."""
    amounts = question_amounts(pair.question)
    if pair.calculation is not None:
        calc = pair.calculation
        return RowFacts(calc.kind, calc.year, dict(calc.inputs), amounts)
    facts = read_question(pair.question, pair.answer)
    if facts is None or facts.unverified or len(facts.readings) != 1:
        return None
    reading = facts.readings[0]
    if reading.year is None:
        return None  # an undated question was verified against a window of dates; its one date is not known
    return RowFacts(reading.kind, reading.year, dict(reading.inputs), amounts)


def dataset_rows(build_dir: Path, distill_dir: Path) -> list[PromptRow]:
    """The built dataset's verified calculation pairs, in the split the build gave them."""
    pairs_path = distill_dir / "qa_pairs.jsonl"
    pairs = {row["id"]: row for row in read_jsonl(pairs_path)} if pairs_path.exists() else {}
    out: list[PromptRow] = []
    for split in SPLITS:
        path = build_dir / f"{split}.jsonl"
        if not path.exists():
            continue
        for line_no, raw in enumerate(read_jsonl(path), start=1):
            example = SFTExample.model_validate(raw)
            meta = example.meta
            flags = {flag.get("rule") for flag in meta.get("flags") or []}
            if meta.get("style") != "calculation" or "calc_unverified" in flags:
                continue
            row = pairs.get(meta.get("pair_id"))
            if row is None:
                raise SlmError(
                    f"{path}:{line_no}: pair {meta.get('pair_id')} is not in {pairs_path}",
                    "rerun `slm build CONFIG --force` so build and distill agree",
                )
            facts = _pair_facts(QAPair.model_validate(row))
            if facts is None or facts.computation is None:
                continue
            family = f"dataset|{meta.get('doc_id')}"
            out.append(
                PromptRow(example.id, "dataset", split, family, meta.get("audience", "expert"), row["question"], facts)
            )
    return out


def check_no_family_in_two_splits(rows: list[PromptRow]) -> None:
    seen: dict[str, str] = {}
    for row in rows:
        if seen.setdefault(row.family, row.split) != row.split:
            raise SlmError(
                f"question family {row.family} is in both {seen[row.family]} and {row.split}",
                "this is a bug in the split: report it with the run's reinforce/prompts.jsonl",
            )


def write_rows(path: Path, rows: list[PromptRow]) -> None:
    write_jsonl(path, [row.to_json() for row in rows])


def read_rows(path: Path) -> list[PromptRow]:
    if not path.exists():
        raise SlmError(f"{path}: not found", "run `slm reinforce CONFIG` first (it writes the prompts)")
    return [PromptRow.from_json(row) for row in read_jsonl(path)]


# -------------------------------------------------------------------------------------------- reference answer
def reference_answer(c: TaxComputation, audience: str = "expert") -> str:
    """A worked answer in the training data's form: one labelled line per step, the final amount last, the basis.

    What a right completion looks like: used to size `reinforce.max_completion_length` (in tokens), to pretrain the
    tiny model of the bench and tests on the calculation phrasing, and as the right answer in the reward tests.
    """
    tax = _TAX_NAMES.get(c.kind, "세액")
    head = (
        "계산하면 다음과 같습니다."
        if audience == "expert"
        else "말씀하신 내용으로 차례대로 계산해 보면 다음과 같습니다."
    )
    lines = [head]
    for step in c.steps:
        if step.key in ("payable", "payable_with_local_tax", "local_income_tax"):
            continue
        label = step.label.split(" (")[0]
        if step.key == "deduction":  # "공제 합계" would read as the 합계 of the taxes (answer_steps)
            label = label.replace(" 합계", "액")
        lines.append(f"- {label}: {format_won(step.won)} ({step.article})")
    articles = sorted({step.article for step in c.steps if step.key == "computed_tax"} | set(c.articles[:1]))
    if c.local_income_tax:
        lines.append(f"이와 별도로 지방소득세 {format_won(c.local_income_tax)}을 함께 신고·납부합니다.")
    lines.append(f"(근거: {', '.join(articles)})")
    lines.append(f"따라서 납부할 {tax}는 {format_won(c.payable)}입니다.")
    return "\n".join(lines)
