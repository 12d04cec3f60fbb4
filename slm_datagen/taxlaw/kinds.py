"""The calculation kinds a payload may name, the inputs each accepts (name → type) and `compute`, which runs the
calculator of a kind on typed inputs. distill/calcspec.py builds the calculation prompt from INPUT_TYPES and
REQUIRED_INPUTS, so the prompt cannot ask for an input the checker does not read.

Types: "won" (an amount: int or Korean text such as "20억원"), "int" (a count or whole years), "bool", "str".
"""

from __future__ import annotations

from datetime import date
from typing import Any

from slm_datagen.taxlaw.amounts import parse_won
from slm_datagen.taxlaw.capital_gains import capital_gains_tax
from slm_datagen.taxlaw.capital_gains_sale import capital_gains_tax_from_sale
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.corporate import corporate_tax
from slm_datagen.taxlaw.gift import gift_tax
from slm_datagen.taxlaw.income import income_tax
from slm_datagen.taxlaw.inheritance import inheritance_tax, inheritance_tax_from_estate
from slm_datagen.taxlaw.inheritance_deductions import HeirFacts
from slm_datagen.taxlaw.inputs import AssetKind, HoldingPeriod
from slm_datagen.taxlaw.penalties import Lateness
from slm_datagen.taxlaw.tables import UnsupportedCase
from slm_datagen.taxlaw.vat import simplified_vat, vat

_LATE: dict[str, str] = {
    "filed_on_time": "bool",
    "days_late": "int",
    "late_return_filed": "bool",
    "fraudulent": "bool",
    "due_date": "str",
}
INPUT_TYPES: dict[str, dict[str, str]] = {
    "gift_tax": {
        "amount_won": "won",
        "relationship": "str",
        "donee_is_minor": "bool",
        "prior_gifts_won": "won",
        "prior_gift_tax_won": "won",
        "deduction_used_won": "won",
        "marriage_birth_deduction_won": "won",
        "donee_parent_deceased": "bool",
        **_LATE,
    },
    "inheritance_tax": {"taxable_base_won": "won", **_LATE},
    "inheritance_tax_estate": {
        "taxable_estate_won": "won",
        "children": "int",
        "minor_years": "int",
        "seniors": "int",
        "disabled_years": "int",
        "spouse_survives": "bool",
        "spouse_inherited_won": "won",
        "spouse_legal_share_won": "won",
        "spouse_sole_heir": "bool",
        "net_financial_assets_won": "won",
        "skip_generation_share_won": "won",
        "skip_generation_heir_is_minor": "bool",
        **_LATE,
    },
    "income_tax": {"taxable_income_won": "won", **_LATE},
    "capital_gains_tax": {
        "taxable_base_won": "won",
        "asset_kind": "str",
        "holding_period": "str",
        "transfer_date": "str",
        **_LATE,
    },
    "capital_gains_sale": {
        "transfer_price_won": "won",
        "acquisition_price_won": "won",
        "holding_years": "int",
        "expenses_won": "won",
        "asset_kind": "str",
        "residence_years": "int",
        "one_house_exempt": "bool",
        "basic_deduction_available": "bool",
        "transfer_date": "str",
        **_LATE,
    },
    "corporate_tax": {"taxable_base_won": "won"},
    "vat": {"sales_won": "won", "purchases_won": "won"},
    "simplified_vat": {"supply_with_vat_won": "won", "sector": "str", "purchases_with_vat_won": "won"},
}
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = {
    "gift_tax": ("amount_won", "relationship"),
    "inheritance_tax": ("taxable_base_won",),
    "inheritance_tax_estate": ("taxable_estate_won",),
    "income_tax": ("taxable_income_won",),
    "capital_gains_tax": ("taxable_base_won",),
    "capital_gains_sale": ("transfer_price_won", "acquisition_price_won", "holding_years"),
    "corporate_tax": ("taxable_base_won",),
    "vat": ("sales_won", "purchases_won"),
    "simplified_vat": ("supply_with_vat_won", "sector"),
}
# Kinds whose tables depend on the date: a payload without a year (or transfer_date) is malformed.
NEEDS_YEAR = frozenset(
    {"income_tax", "capital_gains_tax", "capital_gains_sale", "corporate_tax", "vat", "simplified_vat"}
)


def _lateness(inputs: dict[str, Any]) -> Lateness:
    due = inputs.get("due_date")
    try:
        due_date = date.fromisoformat(due) if due else None
    except ValueError as exc:
        raise ValueError(f"due_date must be YYYY-MM-DD, got {due!r}") from exc
    return Lateness(
        filed_on_time=inputs.get("filed_on_time", True),
        days_late=inputs.get("days_late", 0),
        late_return_filed=inputs.get("late_return_filed", False),
        fraudulent=inputs.get("fraudulent", False),
        due_date=due_date,
    )


def _gift(year: Any, i: dict[str, Any]) -> TaxComputation:
    return gift_tax(
        i["amount_won"],
        i["relationship"],
        donee_is_minor=i.get("donee_is_minor", False),
        year=year,
        prior_gifts_won=i.get("prior_gifts_won", 0),
        marriage_birth_deduction_won=i.get("marriage_birth_deduction_won", 0),
        prior_gift_tax_won=i.get("prior_gift_tax_won"),
        deduction_used_won=i.get("deduction_used_won", 0),
        donee_parent_deceased=i.get("donee_parent_deceased", False),
        lateness=_lateness(i),
    )


def _estate(year: Any, i: dict[str, Any]) -> TaxComputation:
    heir_names = HeirFacts.__dataclass_fields__
    heirs = HeirFacts(**{name: value for name, value in i.items() if name in heir_names})
    return inheritance_tax_from_estate(
        i["taxable_estate_won"],
        year,
        heirs,
        skip_generation_share_won=i.get("skip_generation_share_won", 0),
        skip_generation_heir_is_minor=i.get("skip_generation_heir_is_minor", False),
        lateness=_lateness(i),
    )


def _sale(year: Any, i: dict[str, Any]) -> TaxComputation:
    return capital_gains_tax_from_sale(
        i["transfer_price_won"],
        i["acquisition_price_won"],
        i.get("transfer_date") or year,
        expenses_won=i.get("expenses_won", 0),
        asset_kind=i.get("asset_kind", AssetKind.LAND_BUILDING),
        holding_years=i["holding_years"],
        residence_years=i.get("residence_years", 0),
        one_house_exempt=i.get("one_house_exempt", False),
        basic_deduction_available=i.get("basic_deduction_available", True),
        lateness=_lateness(i),
    )


_CALCULATORS = {
    "gift_tax": _gift,
    "inheritance_tax": lambda year, i: inheritance_tax(i["taxable_base_won"], year, lateness=_lateness(i)),
    "inheritance_tax_estate": _estate,
    "income_tax": lambda year, i: income_tax(i["taxable_income_won"], year, lateness=_lateness(i)),
    "capital_gains_tax": lambda year, i: capital_gains_tax(
        i["taxable_base_won"],
        i.get("transfer_date") or year,
        asset_kind=i.get("asset_kind", AssetKind.LAND_BUILDING),
        holding_period=i.get("holding_period", HoldingPeriod.TWO_YEARS_OR_MORE),
        lateness=_lateness(i),
    ),
    "capital_gains_sale": _sale,
    "corporate_tax": lambda year, i: corporate_tax(i["taxable_base_won"], year),
    "vat": lambda year, i: vat(i["sales_won"], i["purchases_won"], year),
    "simplified_vat": lambda year, i: simplified_vat(
        i["supply_with_vat_won"], i["sector"], year, i.get("purchases_with_vat_won", 0)
    ),
}


def compute(kind: str, year: int | date | str | None, inputs: dict[str, Any]) -> TaxComputation:
    """Run the calculator named by `kind` on already-typed inputs (names: INPUT_TYPES)."""
    if kind not in _CALCULATORS:
        raise UnsupportedCase(f"unknown calculation kind {kind!r}")
    return _CALCULATORS[kind](year, inputs)


def _typed(name: str, kind_of: str, value: Any) -> Any:
    if kind_of == "won":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        won = parse_won(value)
        if won < 0:
            raise ValueError(f"{name} is negative")
        return won
    if kind_of == "int":
        if isinstance(value, float) and value.is_integer():
            value = int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"{name} must be a whole number ≥ 0, got {value!r}")
        return value
    if kind_of == "bool":
        if not isinstance(value, bool):
            raise ValueError(f"{name} must be true/false, got {value!r}")
        return value
    if not isinstance(value, str):
        raise ValueError(f"{name} must be a string, got {value!r}")
    return value


def typed_inputs(kind: str, raw: dict[str, Any]) -> dict[str, Any]:
    spec = INPUT_TYPES[kind]
    unknown = sorted(set(raw) - set(spec))
    if unknown:
        # A key we do not model (e.g. generation_skipping) may change the result, so we cannot vouch for it.
        raise UnsupportedCase(f"inputs not modelled for {kind}: {', '.join(unknown)}")
    missing = [name for name in REQUIRED_INPUTS[kind] if raw.get(name) is None]
    if missing:
        raise ValueError(f"missing inputs for {kind}: {', '.join(missing)}")
    return {name: _typed(name, spec[name], value) for name, value in raw.items() if value is not None}
