"""Deliberate, realistic errors the demo plants in a share of the offline calculation pairs
(`distill.offline.planted_error_rate`, 0 by default), so the build card shows the gate rejecting them by rule name.

Each planted pair carries `meta.planted_error` = {"kind", "step", "stated_won", "correct_won", "detail"}. The kinds are
the mistakes teachers (and the seed project's sample) actually make:

* wrong_bracket      the top slice of the base taxed at the band below's rate; the later lines and the payload follow
* missing_deduction  the seed's error: "증여재산공제가 없다", the tax computed on the whole gift; payload follows
* wrong_final        every line right but the final 납부할 세액 (신고세액공제 not taken off, or a digit slip); payload right
* wrong_intermediate one labelled line wrong (과세표준, 산출세액 or 증여재산공제), the final line and payload right
* payload_facts_differ the answer and payload computed for other facts than the question states (a 성년 read as
                       미성년, another amount or holding period): consistent with each other, wrong for the question

`plant_error(worked, rng)` returns the edited copy and the meta; the choice of kind is seeded like the rest.
"""

from __future__ import annotations

import math
import random
from dataclasses import replace
from typing import Any

from slm_datagen.distill.offline_calc import Worked, work
from slm_datagen.distill.offline_cases import Case, bracket_text
from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.kinds import compute

PLANTED_KINDS = ("wrong_bracket", "missing_deduction", "wrong_final", "wrong_intermediate", "payload_facts_differ")


def _meta(kind: str, step: str, stated: int, correct: int, detail: str) -> dict[str, Any]:
    return {"kind": kind, "step": step, "stated_won": stated, "correct_won": correct, "detail": detail}


def _recomputed_tail(worked: Worked, computed_tax: int) -> Worked:
    """The lines after 산출세액 redone from a wrong 산출세액, as a teacher who got it wrong would carry it on."""
    c = worked.computation
    surcharge = computed_tax * round(c.surcharge * 100 / c.computed_tax) // 100 if c.surcharge and c.computed_tax else 0
    credit = math.floor((computed_tax + surcharge) * 3 / 100) if c.filing_credit else 0
    payable = computed_tax + surcharge - credit + c.penalty_tax
    out = worked.with_line("computed_tax", computed_tax)
    if c.surcharge:
        out = out.with_line("surcharge", surcharge)
    if c.filing_credit:
        out = out.with_line("filing_credit", credit)
    out = out.with_line("payable", payable)
    return replace(out, final_won=payable, result_won=payable)


def _wrong_bracket(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]] | None:
    bands = [b for b in worked.computation.brackets if b.amount_taxed]
    if len(bands) < 2 or worked.computation.penalty_tax:
        return None
    top, below = bands[-1], bands[-2]
    wrong = sum(b.tax for b in bands[:-1]) + top.amount_taxed * below.rate_pct // 100
    out = _recomputed_tail(worked, wrong)
    note = " + ".join(f"{format_won(b.amount_taxed)} × {(b if b is not top else below).rate_pct}%" for b in bands)
    out = out.with_line("computed_tax", wrong, note=note)
    detail = f"top slice taxed at {below.rate_pct}% instead of {top.rate_pct}%"
    return out, _meta("wrong_bracket", "computed_tax", wrong, worked.computation.computed_tax, detail)


def _missing_deduction(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]] | None:
    case = worked.case
    if case.kind != "gift_tax" or not worked.computation.deduction or worked.computation.penalty_tax:
        return None
    as_if = compute("gift_tax", case.year, {**case.inputs, "relationship": "unrelated"})  # no 증여재산공제 at all
    out = worked.with_line("deduction_item", 0, note="증여재산공제는 적용되지 않는다고 보아 공제하지 않음")
    out = out.with_line("taxable_base", as_if.taxable_base)
    out = _recomputed_tail(out, as_if.computed_tax)
    out = out.with_line("computed_tax", as_if.computed_tax, note=bracket_text(as_if))
    return out, _meta(
        "missing_deduction",
        "deduction_item",
        0,
        worked.computation.deduction,
        "증여재산공제 left out (the seed's error)",
    )


def _wrong_final(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]] | None:
    c = worked.computation
    if c.filing_credit and rng.random() < 0.6:
        wrong, detail = c.payable + c.filing_credit, "신고세액공제 not taken off the final figure"
    else:
        wrong, detail = c.payable * 10 if c.payable < 10**8 else c.payable // 10, "a digit slip in the final figure"
    if wrong == c.payable:
        return None
    out = replace(worked.with_line("payable", wrong), final_won=wrong)
    return out, _meta("wrong_final", "payable", wrong, c.payable, detail)


def _slip(won: int, rng: random.Random) -> int:
    """A realistic slip in one line: its second digit off by one or two."""
    unit = 10 ** max(len(str(won)) - 2, 0)
    return won + rng.choice((-2, -1, 1, 2)) * unit


def _wrong_intermediate(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]] | None:
    steps = [
        key for key in ("taxable_base", "computed_tax", "deduction_item") if (line := worked.line(key)) and line.won
    ]
    if not steps:
        return None
    step = rng.choice(steps)
    correct = worked.line(step).won
    wrong = _slip(correct, rng)
    return worked.with_line(step, wrong), _meta(
        "wrong_intermediate", step, wrong, correct, f"{step} misstated, final line right"
    )


def _changed_facts(case: Case, rng: random.Random) -> tuple[dict[str, Any], str] | None:
    inputs = dict(case.inputs)
    if case.kind == "gift_tax":
        if inputs["relationship"] in ("lineal_ascendant", "grandparent", "other_relative"):
            inputs["donee_is_minor"] = not inputs["donee_is_minor"]
            return inputs, "donee_is_minor flipped"
        inputs["amount_won"] = inputs["amount_won"] + 100_000_000
        return inputs, "amount_won + 1억원"
    if case.kind == "capital_gains_tax":
        inputs["holding_period"] = "2y_or_more" if inputs["holding_period"] != "2y_or_more" else "1y_to_2y"
        return inputs, "holding_period changed"
    name = "taxable_income_won" if case.kind == "income_tax" else "taxable_base_won"
    inputs[name] = inputs[name] + rng.choice((10_000_000, 30_000_000, 50_000_000))
    return inputs, f"{name} increased"


def _payload_facts_differ(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]] | None:
    changed = _changed_facts(worked.case, rng)
    if changed is None:
        return None
    inputs, detail = changed
    other = work(replace(worked.case, inputs=inputs))
    if other.computation.payable == worked.computation.payable:
        return None  # e.g. a 기타친족's 1,000만원 공제 is the same for a minor: the misreading would change nothing
    out = replace(other, case=worked.case, answer_case=other.case)
    return out, _meta("payload_facts_differ", "inputs", other.computation.payable, worked.computation.payable, detail)


_PLANTERS = {
    "wrong_bracket": _wrong_bracket,
    "missing_deduction": _missing_deduction,
    "wrong_final": _wrong_final,
    "wrong_intermediate": _wrong_intermediate,
    "payload_facts_differ": _payload_facts_differ,
}


def plant_error(worked: Worked, rng: random.Random) -> tuple[Worked, dict[str, Any]]:
    """One error of a seeded kind; a kind that does not apply to this case (no deduction, one band) gives way to the
    next, and wrong_final applies to every case."""
    order = list(PLANTED_KINDS)
    rng.shuffle(order)
    for kind in [*order, "wrong_final"]:
        planted = _PLANTERS[kind](worked, rng)
        if planted is not None:
            return planted
    raise AssertionError("wrong_final applies to every case")
