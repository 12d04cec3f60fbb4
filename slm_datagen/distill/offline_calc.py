"""The offline teacher's calculation pairs: a realistic case, every labelled step and the final amount, all from the
calculator (slm_datagen.taxlaw), plus the `QAPair.calculation` payload `slm build` recomputes.

Which chunks get one: a statute article the calculator itself cites for a kind (소득세법 제55조 → 종합소득세, 제104조 →
양도소득세, 상속세 및 증여세법 제26조·제53조·제56조 … → 증여세/상속세; read from the calculator's own steps, so an article
added to the corpus later is picked up by law name and number), and an interpretation, ruling or precedent whose
관련법령 are a law the calculator covers (prompts.calculation_kinds), limited to the kinds a `Calculation` record can
carry. Other statute articles get none: their pair must cite the article, and a computation would not be about it.

Everything is drawn from `random.Random(sha256(seed, chunk id, audience))`: the same seed and chunk always give the
same case, a new seed a new one. Amounts are whole 10만원 steps in ranges people ask about; the question states
every fact the computation uses (amount, who gave it and the donee's age, dates, on-time or late filing), so a
reader can redo the sum. The case facts and their Korean wording live in offline_cases.py; the planted errors of
the demo (`distill.offline.planted_error_rate`) in offline_planted.py.
"""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass, replace
from functools import lru_cache
from typing import Any, get_args

from slm_datagen.distill.offline_cases import Case, draw_case, expert_question, lay_question, line_note
from slm_datagen.distill.prompts import CALCULATION_LAWS, calculation_kinds
from slm_datagen.distill.schema import CalcInput, CalculationDraft, CitationDraft, PairDraft
from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.citations import find_citations, format_citation, normalize_law_name
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.kinds import compute
from slm_forest.records import Calculation, Chunk

# The kinds a Calculation record (and so a QAPair) can carry.
RECORD_KINDS: tuple[str, ...] = get_args(Calculation.model_fields["kind"].annotation)
# One computation per kind and branch of the law the article decides (a grandparent's gift cites 제57조, a late one
# 국세기본법): what the calculator cites here is what "an article the calculator implements" means.
_PROBES: dict[str, tuple[dict[str, Any], ...]] = {
    "gift_tax": (
        {"amount_won": 300_000_000, "relationship": "lineal_ascendant"},
        {"amount_won": 300_000_000, "relationship": "grandparent", "donee_is_minor": True},
    ),
    "inheritance_tax": ({"taxable_base_won": 1_500_000_000},),
    "income_tax": ({"taxable_income_won": 50_000_000},),
    "capital_gains_tax": ({"taxable_base_won": 120_000_000},),
}
_KIND_NAMES = {
    "gift_tax": "증여세",
    "inheritance_tax": "상속세",
    "income_tax": "종합소득세",
    "capital_gains_tax": "양도소득세",
}

ArticleKey = tuple[str, int, int]


@lru_cache(maxsize=1)
def rate_articles() -> dict[ArticleKey, tuple[str, ...]]:
    """(law, article, branch) -> the kinds whose computation cites it, for the kind's own law (CALCULATION_LAWS)."""
    found: dict[ArticleKey, list[str]] = {}
    for kind, probes in _PROBES.items():
        own_laws = {law for law, kinds in CALCULATION_LAWS.items() if kind in kinds}
        for inputs in probes:
            computation = compute(kind, 2024, inputs)
            for text in [*computation.articles, *(step.article for step in computation.steps)]:
                for citation in find_citations(text):
                    if citation.law in own_laws:
                        key = (citation.law, citation.article, citation.branch or 0)
                        found.setdefault(key, [])
                        if kind not in found[key]:
                            found[key].append(kind)
    return {key: tuple(kinds) for key, kinds in found.items()}


def offline_calculation_kinds(chunk: Chunk) -> tuple[str, ...]:
    """The kinds the offline teacher computes for this chunk; () when it writes no calculation pair for it."""
    if chunk.kind == "statute_article":
        if not chunk.law_name or chunk.article_no is None:
            return ()
        key = (normalize_law_name(chunk.law_name), chunk.article_no, chunk.article_branch or 0)
        return rate_articles().get(key, ())
    return tuple(kind for kind in calculation_kinds(chunk) if kind in RECORD_KINDS)


def case_rng(seed: int, chunk: Chunk, audience: str, purpose: str) -> random.Random:
    digest = hashlib.sha256(f"{seed}\x1f{chunk.id}\x1f{audience}\x1f{purpose}".encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


# ------------------------------------------------------------------------------------------------- worked answer
@dataclass(frozen=True)
class Line:
    """One labelled line of the worked answer: '- 과세표준: 2억 5,000만원 (…)'."""

    key: str  # the calculator's step key (taxable_base, computed_tax, …)
    label: str
    won: int
    note: str = ""


@dataclass(frozen=True)
class Worked:
    """A case and its computation as the answer states them; planted errors edit a copy of this."""

    case: Case  # the facts the question states
    answer_case: Case  # the facts the answer and payload use (differ only for a planted payload_facts_differ)
    computation: TaxComputation
    lines: tuple[Line, ...]
    final_won: int  # the 납부할 세액 the answer states
    result_won: int  # what the payload claims
    kind: str

    def line(self, key: str) -> Line | None:
        return next((line for line in self.lines if line.key == key), None)

    def with_line(self, key: str, won: int, note: str | None = None) -> Worked:
        lines = tuple(
            replace(line, won=won, note=line.note if note is None else note) if line.key == key else line
            for line in self.lines
        )
        return replace(self, lines=lines)


_SKIPPED_STEPS = frozenset({"local_income_tax", "payable_with_local_tax"})  # told in their own sentence, see below


def worked_lines(case: Case, computation: TaxComputation) -> tuple[Line, ...]:
    deductions = [step for step in computation.steps if step.key == "deduction_item"]
    lines = []
    for step in computation.steps:
        if step.key in _SKIPPED_STEPS or (step.key == "deduction" and len(deductions) == 1):
            continue  # a single 공제 needs no 공제 합계 line
        label = step.label.split(" (")[0]
        lines.append(Line(step.key, label, step.won, line_note(case, computation, step)))
    return tuple(lines)


def work(case: Case) -> Worked:
    computation = compute(case.kind, case.year, case.inputs)
    return Worked(
        case, case, computation, worked_lines(case, computation), computation.payable, computation.payable, case.kind
    )


def cited_articles(worked: Worked, chunk: Chunk) -> list[CitationDraft]:
    """Every article the computation relies on, and the source article itself when it is a statute."""
    texts = [*worked.computation.articles, *(step.article for step in worked.computation.steps)]
    if chunk.kind == "statute_article":
        texts.insert(0, chunk.citation)
    drafts: list[CitationDraft] = []
    for text in texts:
        for citation in find_citations(text):
            label = format_citation(citation.model_copy(update={"paragraph": None, "item": None, "subitem": None}))
            draft = CitationDraft(law=citation.law, article=label[len(citation.law) :].strip())
            if draft not in drafts:
                drafts.append(draft)
    return drafts


def _local_tax_sentence(computation: TaxComputation) -> str:
    if not computation.local_income_tax:
        return ""
    article = next((s.article for s in computation.steps if s.key == "local_income_tax"), "지방세법")
    return (
        f"이와 별도로 지방소득세 {format_won(computation.local_income_tax)}(산출세액의 10%, {article})을 함께 신고·납부하며, "
        f"둘을 합한 부담은 {format_won(computation.payable_with_local_tax)}입니다."
    )


def answer_text(worked: Worked, audience: str, citations: list[CitationDraft]) -> str:
    name = _KIND_NAMES[worked.kind]
    case = worked.answer_case
    if audience == "expert":
        head = f"{case.year}년 적용 세율과 공제로 {name}를 계산하면 다음과 같습니다."
    else:
        head = f"말씀하신 내용으로 {name}를 순서대로 계산해 보면 다음과 같습니다."
    body = [head] + [
        f"- {line.label}: {format_won(line.won)}" + (f" ({line.note})" if line.note else "") for line in worked.lines
    ]
    closing = [s for s in (_local_tax_sentence(worked.computation),) if s]
    closing.append(f"따라서 납부할 {name}는 {format_won(worked.final_won)}입니다.")
    if audience == "layperson":
        closing.append(case.lay_tip)
    basis = ", ".join(c.label() for c in citations)
    return "\n".join(body) + "\n\n" + " ".join(closing) + f"\n\n(근거: {basis})"


def payload(worked: Worked) -> CalculationDraft:
    case = worked.answer_case
    inputs = [CalcInput(name=name, value=value) for name, value in case.inputs.items()]
    return CalculationDraft(
        kind=worked.kind,  # type: ignore[arg-type]
        year=case.year,
        inputs=inputs,
        result_won=worked.result_won,
        result_field="payable",
    )


def render(worked: Worked, chunk: Chunk, audience: str) -> PairDraft:
    citations = cited_articles(worked, chunk)
    question = expert_question(worked.case) if audience == "expert" else lay_question(worked.case)
    return PairDraft(
        question=question,
        answer=answer_text(worked, audience, citations),
        audience=audience,  # type: ignore[arg-type]
        citations=citations,
        calculation=payload(worked),
    )


def calculation_pair(
    chunk: Chunk, audience: str, seed: int = 0, planted_error_rate: float = 0.0
) -> tuple[PairDraft, dict[str, Any]] | None:
    """A calculation pair for `chunk` and its meta ({"planted_error": …} when one was planted), or None."""
    kinds = offline_calculation_kinds(chunk)
    if not kinds:
        return None
    rng = case_rng(seed, chunk, audience, "case")
    case = draw_case(rng.choice(kinds), rng, chunk)
    worked = work(case)
    meta: dict[str, Any] = {}
    plant_rng = case_rng(seed, chunk, audience, "plant")
    if planted_error_rate > 0 and plant_rng.random() < planted_error_rate:
        from slm_datagen.distill.offline_planted import plant_error  # noqa: PLC0415 - the demo's path only

        worked, planted = plant_error(worked, plant_rng)
        meta["planted_error"] = planted
    return render(worked, chunk, audience), meta


__all__ = [
    "RECORD_KINDS",
    "Line",
    "Worked",
    "calculation_pair",
    "offline_calculation_kinds",
    "rate_articles",
    "work",
    "worked_lines",
]
