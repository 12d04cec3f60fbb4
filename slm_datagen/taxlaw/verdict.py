"""Checking a teacher's calculation payload: `compute(kind, year, inputs)` runs the calculator the kind names, and
`check_calculation` recomputes a payload and says ok, mismatch, unsupported or bad_input.

`INPUT_TYPES` / `REQUIRED_INPUTS` are the accepted inputs per kind; distill/calcspec.py builds the calculation prompt
from them, so the prompt cannot ask for an input this module does not read.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.amounts import format_won, parse_won
from slm_datagen.taxlaw.computation import RESULT_FIELDS, TaxComputation
from slm_datagen.taxlaw.kinds import INPUT_TYPES, NEEDS_YEAR, REQUIRED_INPUTS, compute, typed_inputs
from slm_datagen.taxlaw.tables import UnsupportedCase

__all__ = ["INPUT_TYPES", "REQUIRED_INPUTS", "CalcVerdict", "check_calculation", "compute", "matches"]

# No ratio tolerance: a claim is compared to the won after the statute's own rounding (원 미만 절사 in every
# computation here). The one other rounding the law itself makes is 국고금관리법 제47조: a 납부할 세액 is paid with
# amounts under 10원 cut off, so both figures are accepted for the payable fields. A caller that knows the claim is
# stated to a unit (an answer that says "약" or "천원 단위") passes `rounding_unit_won`.
DEFAULT_TOLERANCE_WON = 0
PAYMENT_FIELDS = frozenset({"payable", "payable_with_local_tax"})

VerdictStatus = Literal["ok", "mismatch", "unsupported", "bad_input"]


class CalcVerdict(BaseModel):
    model_config = ConfigDict(frozen=True)

    status: VerdictStatus
    kind: str | None = None
    result_field: str | None = None
    expected_won: int | None = None
    claimed_won: int | None = None
    difference_won: int | None = None  # claimed − expected
    tolerance_won: int | None = None
    reason: str  # one line, Korean then English
    computation: TaxComputation | None = None

    @property
    def ok(self) -> bool:
        return self.status == "ok"


def matches(claimed: int, expected: int, field: str, rounding_unit_won: int = 1, tolerance_won: int = 0) -> bool:
    """Whether `claimed` states `expected`: exactly, or cut to 10원 for a payment (국고금관리법 제47조), or — when the
    claim is stated to `rounding_unit_won` — a multiple of that unit less than one unit away (절사, 반올림 or 올림)."""
    if abs(claimed - expected) <= tolerance_won:
        return True
    if field in PAYMENT_FIELDS and claimed == expected - expected % 10:
        return True
    return rounding_unit_won > 1 and claimed % rounding_unit_won == 0 and abs(claimed - expected) < rounding_unit_won


def _verdict(status: VerdictStatus, reason: str, **fields: Any) -> CalcVerdict:
    return CalcVerdict(status=status, reason=reason, **fields)


def check_calculation(
    calc: dict[str, Any],
    tolerance_won: int = DEFAULT_TOLERANCE_WON,
    rounding_unit_won: int = 1,
) -> CalcVerdict:
    """Recompute a teacher's calculation payload and compare its claimed amount.

    Payload: {"kind": ..., "year": 2024 | "2024-03-15", "inputs": {...}, "result_won": int | "6억 2,000만원",
    "result_field": one of computed_tax | payable | taxable_base | deduction | filing_credit | prepaid_tax_credit}.
    Amount inputs may be ints or Korean strings ("20억원"). "year" is required for income_tax and capital_gains_tax;
    for gift_tax and inheritance_tax a missing year means the latest tables in this module.

    inputs per kind: kinds.INPUT_TYPES / REQUIRED_INPUTS (gift_tax, inheritance_tax from the base,
    inheritance_tax_estate, income_tax, capital_gains_tax from the base, capital_gains_sale, corporate_tax, vat,
    simplified_vat). "year" is required for the kinds in kinds.NEEDS_YEAR; for gift and inheritance tax a missing year
    means the latest tables.

    Status: ok | mismatch | unsupported (a kind, year or input this module does not model) | bad_input (missing or
    malformed fields, including a missing result_field: a claim is compared with the amount before 신고세액공제
    (computed_tax) or after it (payable) only as the payload says, never with whichever fits).
    """
    if not isinstance(calc, dict):
        return _verdict("bad_input", "계산 정보가 객체가 아님 / calculation payload is not an object")
    kind = calc.get("kind")
    if kind not in INPUT_TYPES:
        return _verdict(
            "unsupported", f"지원하지 않는 계산 종류 {kind!r} / unsupported calculation kind {kind!r}", kind=kind
        )
    field = calc.get("result_field")
    if field not in RESULT_FIELDS:
        return _verdict(
            "bad_input",
            f"result_field가 없거나 잘못됨({field!r}) / result_field missing or not one of {list(RESULT_FIELDS)}",
            kind=kind,
            result_field=field if isinstance(field, str) else None,
        )
    try:
        claimed = parse_won(calc.get("result_won"))  # type: ignore[arg-type]
    except ValueError as exc:
        reason = f"result_won을 해석할 수 없음 / result_won unreadable: {exc}"
        return _verdict("bad_input", reason, kind=kind, result_field=field)
    raw_inputs = calc.get("inputs")
    if not isinstance(raw_inputs, dict):
        return _verdict(
            "bad_input", "inputs가 없음 / inputs missing", kind=kind, result_field=field, claimed_won=claimed
        )
    year = calc.get("year")
    if kind in NEEDS_YEAR and year is None and not raw_inputs.get("transfer_date"):
        return _verdict("bad_input", "year가 없음 / year missing", kind=kind, result_field=field, claimed_won=claimed)
    try:
        computation = compute(kind, year, typed_inputs(kind, raw_inputs))
    except UnsupportedCase as exc:
        reason = f"계산 범위 밖 / not modelled: {exc}"
        return _verdict("unsupported", reason, kind=kind, result_field=field, claimed_won=claimed)
    except (ValueError, TypeError) as exc:
        return _verdict(
            "bad_input", f"입력 오류 / bad input: {exc}", kind=kind, result_field=field, claimed_won=claimed
        )

    return _compare(kind, field, claimed, computation, tolerance_won, rounding_unit_won)


def _compare(
    kind: str, field: str, claimed: int, computation: TaxComputation, tolerance_won: int, rounding_unit_won: int
) -> CalcVerdict:
    """ok or mismatch for the claimed `field`, with a hint when the claim is the other of 산출세액 / 납부할 세액."""
    expected = computation.amount(field)
    tolerance = max(tolerance_won, rounding_unit_won - 1)
    difference = claimed - expected
    common = dict(
        kind=kind,
        result_field=field,
        expected_won=expected,
        claimed_won=claimed,
        difference_won=difference,
        tolerance_won=tolerance,
        computation=computation,
    )
    if matches(claimed, expected, field, rounding_unit_won, tolerance_won):
        return _verdict("ok", f"{field} 일치 / {field} matches: {format_won(expected)}", **common)
    hint = ""
    for other in ("computed_tax", "payable"):
        if other != field and matches(claimed, computation.amount(other), other, rounding_unit_won, tolerance_won):
            hint = f" (주장값은 {other}와 같음 / the claim equals {other}, but result_field says {field})"
    return _verdict(
        "mismatch",
        f"{field} 불일치: 주장 {format_won(claimed)}, 계산 {format_won(expected)} / "
        f"{field} mismatch: claimed {claimed:,} won, expected {expected:,} won{hint}",
        **common,
    )
