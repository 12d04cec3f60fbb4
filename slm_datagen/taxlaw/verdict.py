"""Checking a teacher's calculation payload: `compute(kind, year, inputs)` runs the calculator the kind names, and
`check_calculation` recomputes a payload and says ok, mismatch, unsupported or bad_input.

`INPUT_TYPES` / `REQUIRED_INPUTS` are the accepted inputs per kind; distill/calcspec.py builds the calculation prompt
from them, so the prompt cannot ask for an input this module does not read.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.amounts import format_won, parse_won
from slm_datagen.taxlaw.capital_gains import capital_gains_tax
from slm_datagen.taxlaw.computation import RESULT_FIELDS, TaxComputation
from slm_datagen.taxlaw.gift import gift_tax
from slm_datagen.taxlaw.income import income_tax
from slm_datagen.taxlaw.inheritance import inheritance_tax
from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod
from slm_datagen.taxlaw.tables import UnsupportedCase

# Rounding tolerance. The absolute part covers 원-level truncation differences (원 미만 절사 here; 10원 미만 절사 on
# payment under 국고금관리법 제47조) and the relative part covers teachers that round to 만원 or print four
# significant digits ("약 6억 2,000만원"). 0.1% stays well below the smallest real error worth catching: the 3%
# 신고세액공제, a missing 1,000만원 deduction (≥ 100만원 of tax), a wrong band, or a 2021-vs-2023 table mix-up at
# ordinary incomes (e.g. 18만원 on 102만원 at a base of 1,400만원).
DEFAULT_TOLERANCE_WON = 10
DEFAULT_TOLERANCE_RATIO = 0.001

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


# Inputs accepted per kind: name -> "won" | "bool" | "str". Required names are listed in REQUIRED_INPUTS.
INPUT_TYPES: dict[str, dict[str, str]] = {
    "gift_tax": {
        "amount_won": "won",
        "relationship": "str",
        "donee_is_minor": "bool",
        "prior_gifts_won": "won",
        "marriage_birth_deduction_won": "won",
        "filed_on_time": "bool",
    },
    "inheritance_tax": {"taxable_base_won": "won", "filed_on_time": "bool"},
    "income_tax": {"taxable_income_won": "won"},
    "capital_gains_tax": {
        "taxable_base_won": "won",
        "asset_kind": "str",
        "holding_period": "str",
        "transfer_date": "str",
    },
}
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "gift_tax": ("amount_won", "relationship"),
    "inheritance_tax": ("taxable_base_won",),
    "income_tax": ("taxable_income_won",),
    "capital_gains_tax": ("taxable_base_won",),
}


def tolerance_for(
    expected: int, tolerance_won: int = DEFAULT_TOLERANCE_WON, tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO
) -> int:
    """The allowed |claimed − expected|: the larger of the absolute and the relative tolerance."""
    return max(tolerance_won, int(abs(expected) * tolerance_ratio))


def _verdict(status: VerdictStatus, reason: str, **fields: Any) -> CalcVerdict:
    return CalcVerdict(status=status, reason=reason, **fields)


def compute(kind: str, year: int | date | str | None, inputs: dict[str, Any]) -> TaxComputation:
    """Run the calculator named by `kind` on already-typed inputs (see check_calculation for the names)."""
    if kind == "gift_tax":
        return gift_tax(
            inputs["amount_won"],
            inputs["relationship"],
            donee_is_minor=inputs.get("donee_is_minor", False),
            year=year,
            prior_gifts_won=inputs.get("prior_gifts_won", 0),
            marriage_birth_deduction_won=inputs.get("marriage_birth_deduction_won", 0),
            filed_on_time=inputs.get("filed_on_time", True),
        )
    if kind == "inheritance_tax":
        return inheritance_tax(inputs["taxable_base_won"], year=year, filed_on_time=inputs.get("filed_on_time", True))
    if kind == "income_tax":
        return income_tax(inputs["taxable_income_won"], year)
    if kind == "capital_gains_tax":
        return capital_gains_tax(
            inputs["taxable_base_won"],
            inputs.get("transfer_date") or year,
            asset_kind=inputs.get("asset_kind", AssetKind.LAND_BUILDING),
            holding_period=inputs.get("holding_period", HoldingPeriod.TWO_YEARS_OR_MORE),
        )
    raise UnsupportedCase(f"unknown calculation kind {kind!r}")


def _typed_inputs(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    spec = INPUT_TYPES[kind]
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        # A key we do not model (e.g. generation_skipping) may change the result, so we cannot vouch for it.
        raise UnsupportedCase(f"inputs not modelled for {kind}: {', '.join(unknown)}")
    missing = [name for name in REQUIRED_INPUTS[kind] if raw.get(name) is None]
    if missing:
        raise ValueError(f"missing inputs for {kind}: {', '.join(missing)}")
    typed: dict[str, Any] = {}
    for name, value in raw.items():
        if value is None:
            continue
        kind_of = spec[name]
        if kind_of == "won":
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            typed[name] = parse_won(value)
            if typed[name] < 0:
                raise ValueError(f"{name} is negative")
        elif kind_of == "bool":
            if not isinstance(value, bool):
                raise ValueError(f"{name} must be true/false, got {value!r}")
            typed[name] = value
        else:
            if not isinstance(value, str):
                raise ValueError(f"{name} must be a string, got {value!r}")
            typed[name] = value
    return typed


def check_calculation(
    calc: dict[str, Any],
    tolerance_won: int = DEFAULT_TOLERANCE_WON,
    tolerance_ratio: float = DEFAULT_TOLERANCE_RATIO,
) -> CalcVerdict:
    """Recompute a teacher's calculation payload and compare its claimed amount.

    Payload: {"kind": ..., "year": 2024 | "2024-03-15", "inputs": {...}, "result_won": int | "6억 2,000만원",
    "result_field": one of computed_tax | payable | taxable_base | deduction | filing_credit | prepaid_tax_credit}.
    Amount inputs may be ints or Korean strings ("20억원"). "year" is required for income_tax and capital_gains_tax;
    for gift_tax and inheritance_tax a missing year means the latest tables in this module.

    inputs per kind (required first):
      gift_tax:          amount_won, relationship ("직계존속"/"배우자"/"직계비속"/"기타친족"/"타인" or DonorRelation
                         values); donee_is_minor (false), prior_gifts_won (0), marriage_birth_deduction_won (0),
                         filed_on_time (true)
      inheritance_tax:   taxable_base_won; filed_on_time (true)
      income_tax:        taxable_income_won            (year = 귀속연도, required)
      capital_gains_tax: taxable_base_won; asset_kind ("land_building"), holding_period ("2y_or_more"),
                         transfer_date ("YYYY-MM-DD", overrides year)

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
    if kind in ("income_tax", "capital_gains_tax") and year is None and not raw_inputs.get("transfer_date"):
        return _verdict("bad_input", "year가 없음 / year missing", kind=kind, result_field=field, claimed_won=claimed)
    try:
        computation = compute(kind, year, _typed_inputs(kind, raw_inputs))
    except UnsupportedCase as exc:
        reason = f"계산 범위 밖 / not modelled: {exc}"
        return _verdict("unsupported", reason, kind=kind, result_field=field, claimed_won=claimed)
    except (ValueError, TypeError) as exc:
        return _verdict(
            "bad_input", f"입력 오류 / bad input: {exc}", kind=kind, result_field=field, claimed_won=claimed
        )

    return _compare(kind, field, claimed, computation, tolerance_won, tolerance_ratio)


def _compare(
    kind: str, field: str, claimed: int, computation: TaxComputation, tolerance_won: int, tolerance_ratio: float
) -> CalcVerdict:
    """ok or mismatch for the claimed `field`, with a hint when the claim is the other of 산출세액 / 납부할 세액."""
    expected = computation.amount(field)
    tolerance = tolerance_for(expected, tolerance_won, tolerance_ratio)
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
    if abs(difference) <= tolerance:
        return _verdict("ok", f"{field} 일치 / {field} matches: {format_won(expected)}", **common)
    hint = ""
    for other in ("computed_tax", "payable"):
        if other != field and abs(claimed - computation.amount(other)) <= tolerance:
            hint = f" (주장값은 {other}와 같음 / the claim equals {other}, but result_field says {field})"
    return _verdict(
        "mismatch",
        f"{field} 불일치: 주장 {format_won(claimed)}, 계산 {format_won(expected)} / "
        f"{field} mismatch: claimed {claimed:,} won, expected {expected:,} won{hint}",
        **common,
    )
