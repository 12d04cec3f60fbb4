"""What a calculation pair must carry so that `slm build` can recompute it, derived from the checker itself.

`slm_datagen.taxlaw.verdict.check_calculation` recomputes a teacher's payload only when its inputs use the names,
types and values it models (`verdict.INPUT_TYPES` / `REQUIRED_INPUTS`, the enums, `computation.RESULT_FIELDS`). A payload
with any other name is "unsupported" (kept as an unverified flag), so wrong arithmetic would reach training. The
calculation prompt is therefore generated from those tables (`calculation_rule`), and a reply is checked against
them (`payload_problem`) so a malformed payload gets the repair round instead of slipping through.

Only the Korean prose (what each input means) lives here; names, types, required-ness and allowed values come from
the calculator, so the prompt cannot ask for something the checker does not accept. `tests/test_distill_pure.py` checks
that every name has its prose and that the defaults stated here are the calculator's.
"""

from __future__ import annotations

from enum import Enum
from typing import Any

from slm_datagen.taxlaw import verdict
from slm_datagen.taxlaw.computation import RESULT_FIELDS as CHECKER_RESULT_FIELDS
from slm_datagen.taxlaw.inputs import AssetKind, DonorRelation, HoldingPeriod, VatSector

# The checker's own tables; reading them here (rather than copying them) is what keeps the prompt and the checker
# from drifting apart.
INPUT_TYPES: dict[str, dict[str, str]] = verdict.INPUT_TYPES
REQUIRED_INPUTS: dict[str, tuple[str, ...]] = verdict.REQUIRED_INPUTS
RESULT_FIELDS: tuple[str, ...] = CHECKER_RESULT_FIELDS
KINDS: tuple[str, ...] = tuple(INPUT_TYPES)

# String inputs whose value must be one of an enum's values (what `compute` turns into that enum).
ENUM_INPUTS: dict[str, type[Enum]] = {
    "relationship": DonorRelation,
    "asset_kind": AssetKind,
    "holding_period": HoldingPeriod,
    "sector": VatSector,
}
VALUE_LABELS: dict[str, str] = {
    DonorRelation.SPOUSE.value: "배우자",
    DonorRelation.LINEAL_ASCENDANT.value: "부모→자녀: 직계존속이 증여",
    DonorRelation.GRANDPARENT.value: "조부모→손자녀: 세대생략 할증 대상",
    DonorRelation.LINEAL_DESCENDANT.value: "자녀→부모: 직계비속이 증여",
    DonorRelation.OTHER_RELATIVE.value: "그 밖의 친족",
    DonorRelation.UNRELATED.value: "타인",
    AssetKind.LAND_BUILDING.value: "토지·건물(주택 제외)",
    AssetKind.HOUSING.value: "주택·조합원입주권",
    AssetKind.PRESALE_RIGHT.value: "분양권",
    HoldingPeriod.UNDER_1Y.value: "1년 미만",
    HoldingPeriod.FROM_1Y_TO_2Y.value: "1년 이상 2년 미만",
    HoldingPeriod.TWO_YEARS_OR_MORE.value: "2년 이상",
    VatSector.RETAIL_FOOD.value: "소매업·음식점업 등 15%",
    VatSector.MANUFACTURING.value: "제조업·농림어업 등 20%",
    VatSector.LODGING.value: "숙박업 25%",
    VatSector.CONSTRUCTION_TRANSPORT_ICT.value: "건설업·운수창고업·정보통신업 30%",
    VatSector.FINANCE_PROFESSIONAL_REAL_ESTATE.value: "금융보험·전문서비스·부동산임대업 등 40%",
    VatSector.OTHER_SERVICES.value: "그 밖의 서비스업 30%",
}
_LATE_NOTES: dict[str, tuple[str, Any]] = {
    "filed_on_time": ("법정신고기한 안에 신고했는지(아니면 신고세액공제 없음, 무신고가산세)", True),
    "days_late": ("법정납부기한 다음 날부터 납부일(기한후신고일)까지의 일수(납부지연가산세)", 0),
    "late_return_filed": ("기한이 지난 뒤 기한후신고를 했는지(무신고가산세 감면)", False),
    "fraudulent": ("부정행위로 신고하지 않았는지(무신고가산세 40%)", False),
    "due_date": ("법정신고·납부기한, YYYY-MM-DD (모르면 생략: 세목의 기한 규정으로 계산)", None),
}

# name -> (meaning, default the calculator uses when the input is left out; None = no default / required)
INPUT_NOTES: dict[str, dict[str, tuple[str, Any]]] = {
    "gift_tax": {
        "amount_won": ("증여재산가액", None),
        "relationship": ("수증자에게 증여자가 누구인지", None),
        "donee_is_minor": ("수증자가 미성년자인지", False),
        "prior_gifts_won": ("10년 이내에 같은 증여자(직계존속이면 그 배우자 포함)에게서 받은 증여재산가액 합계", 0),
        "prior_gift_tax_won": ("그 이전 증여에 대해 납부했거나 납부할 증여세(모르면 생략: 다시 계산)", None),
        "deduction_used_won": ("10년 이내에 같은 관계의 다른 증여자 증여로 이미 공제받은 증여재산공제", 0),
        "marriage_birth_deduction_won": (
            "혼인·출산 증여재산공제(제53조의2, 2024년 이후 직계존속 증여)로 공제받는 금액",
            0,
        ),
        "donee_parent_deceased": ("조부모 증여에서 수증자의 부모(증여자의 자녀)가 사망했는지(할증 제외)", False),
        **_LATE_NOTES,
    },
    "inheritance_tax": {
        "taxable_base_won": ("상속세 과세표준(상속공제를 뺀 뒤의 금액)", None),
        **_LATE_NOTES,
    },
    "inheritance_tax_estate": {
        "taxable_estate_won": ("상속세 과세가액(상속재산 − 공과금·장례비·채무 + 사전증여재산)", None),
        "children": ("자녀 수", 0),
        "minor_years": ("미성년자(배우자 제외) 각자가 19세가 될 때까지의 연수의 합", 0),
        "seniors": ("65세 이상 상속인·동거가족(배우자 제외) 수", 0),
        "disabled_years": ("장애인 각자의 기대여명 연수의 합", 0),
        "spouse_survives": ("배우자가 있는지", False),
        "spouse_inherited_won": ("배우자가 실제 상속받은 금액", 0),
        "spouse_legal_share_won": ("배우자 법정상속분 상당액(실제 상속액이 5억원을 넘을 때 필수)", None),
        "spouse_sole_heir": ("배우자 단독상속인지(일괄공제 불가)", False),
        "net_financial_assets_won": ("순금융재산(금융재산상속공제)", 0),
        "skip_generation_share_won": ("자녀가 아닌 직계비속(손자녀 등)이 받은 재산(세대생략 할증)", 0),
        "skip_generation_heir_is_minor": ("그 직계비속이 미성년자인지", False),
        **_LATE_NOTES,
    },
    "income_tax": {
        "taxable_income_won": ("종합소득 과세표준", None),
        **_LATE_NOTES,
    },
    "capital_gains_tax": {
        "taxable_base_won": ("양도소득 과세표준(장기보유특별공제·기본공제를 뺀 뒤의 금액)", None),
        "asset_kind": ("양도한 자산", AssetKind.LAND_BUILDING.value),
        "holding_period": ("보유기간", HoldingPeriod.TWO_YEARS_OR_MORE.value),
        "transfer_date": ("양도일, YYYY-MM-DD (넣으면 year 대신 이 날짜의 세율을 적용)", None),
        **_LATE_NOTES,
    },
    "capital_gains_sale": {
        "transfer_price_won": ("양도가액(실지거래가액)", None),
        "acquisition_price_won": ("취득가액", None),
        "holding_years": ("보유기간(만 연수)", None),
        "expenses_won": ("필요경비(취득가액 외)", 0),
        "asset_kind": ("양도한 자산", AssetKind.LAND_BUILDING.value),
        "residence_years": ("거주기간(만 연수, 1세대1주택 표2)", 0),
        "one_house_exempt": ("1세대1주택 비과세 요건을 갖췄는지", False),
        "basic_deduction_available": ("그 해 양도소득 기본공제 250만원을 아직 쓰지 않았는지", True),
        "transfer_date": ("양도일, YYYY-MM-DD (넣으면 year 대신 이 날짜의 규정을 적용)", None),
        **_LATE_NOTES,
    },
    "corporate_tax": {
        "taxable_base_won": ("법인세 과세표준", None),
    },
    "vat": {
        "sales_won": ("매출 공급가액(부가가치세 제외)", None),
        "purchases_won": ("공제받는 매입 공급가액(부가가치세 제외)", None),
    },
    "simplified_vat": {
        "supply_with_vat_won": ("한 해 공급대가(부가가치세 포함)", None),
        "sector": ("업종", None),
        "purchases_with_vat_won": ("세금계산서 등을 받은 매입 공급대가", 0),
    },
}
YEAR_NOTES: dict[str, str] = {
    "gift_tax": "증여한 연도",
    "inheritance_tax": "상속개시 연도",
    "income_tax": "귀속연도",
    "capital_gains_tax": "양도한 연도; 2021년 주택·분양권처럼 연도 중에 세율이 바뀐 해에는 transfer_date도 넣으세요",
    "inheritance_tax_estate": "상속개시 연도",
    "capital_gains_sale": "양도한 연도; 연도 중에 규정이 바뀐 해(2021년)에는 transfer_date도 넣으세요",
    "corporate_tax": "사업연도 개시 연도",
    "vat": "과세기간 연도",
    "simplified_vat": "과세기간 연도(2021년 7월 이후)",
}
RESULT_LABELS: dict[str, str] = {
    "computed_tax": "산출세액",
    "payable": "납부할 세액(기납부세액공제·신고세액공제 후)",
    "taxable_base": "과세표준",
    "deduction": "증여재산공제 등 공제액",
    "filing_credit": "신고세액공제액",
    "prepaid_tax_credit": "기납부세액공제액",
    "gross_value": "과세가액(양도는 양도차익, 부가가치세는 매출세액)",
    "surcharge": "세대생략 할증액",
    "penalty_tax": "가산세 합계(무신고·납부지연)",
    "local_income_tax": "지방소득세",
    "payable_with_local_tax": "지방소득세를 더한 합계",
}
# What the calculator does not model (the "Not modelled" of each slm_datagen/taxlaw module): a problem that needs any of these cannot be checked.
NOT_MODELLED = (
    "부담부증여, 가업·동거주택 상속공제, 다주택 중과·비사업용토지·미등기 세율, 종합소득공제·세액공제·감면, "
    "법인세 세액공제·최저한세, 신용카드매출전표 발행세액공제"
)


def _type_text(kind: str, name: str) -> str:
    spec = INPUT_TYPES[kind][name]
    if spec == "won":
        return "원 단위 정수"
    if spec == "bool":
        return "true/false"
    if spec == "int":
        return "0 이상의 정수"
    if name in ENUM_INPUTS:
        values = [member.value for member in ENUM_INPUTS[name]]  # type: ignore[attr-defined]
        return "문자열 " + " | ".join(f'"{v}"({VALUE_LABELS.get(v, v)})' for v in values)
    return "문자열"


def _default_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return f'"{value}"'
    return str(value)


def calculation_rule(kinds: tuple[str, ...] = ()) -> str:
    """The `calculation` field's instructions for the allowed kinds: exact input names, types and allowed values."""
    kinds = tuple(k for k in kinds if k in INPUT_TYPES) or KINDS
    fields = " | ".join(f'"{f}"({RESULT_LABELS.get(f, f)})' for f in RESULT_FIELDS)
    lines = [
        '{"kind": 아래 kind 중 하나, "year": 적용 연도(정수), "inputs": [{"name": 입력 이름, "value": 값}, …], '
        '"result_won": 결과 금액(원, 정수), "result_field": 결과의 의미}',
        f"  result_field: {fields} 중 하나. result_won은 이 항목의 금액입니다.",
        "  inputs의 name은 kind별로 아래 이름만 그대로 씁니다(다른 이름은 검산할 수 없습니다). "
        "금액은 원 단위 정수, 예/아니오는 true/false, 문자열은 보기 중 하나로 씁니다. "
        "필수가 아닌 입력은 문제에 해당할 때만 넣습니다.",
    ]
    for kind in kinds:
        lines.append(f"  - {kind} (year: {YEAR_NOTES.get(kind, '적용 연도')}):")
        required = REQUIRED_INPUTS[kind]
        for name in INPUT_TYPES[kind]:
            meaning, default = INPUT_NOTES.get(kind, {}).get(name, (name, None))
            tags = [_type_text(kind, name)]
            if name in required:
                tags.insert(0, "필수")
            elif default is not None:
                tags.append(f"생략하면 {_default_text(default)}")
            lines.append(f"    · {name} ({', '.join(tags)}): {meaning}")
    lines.append(
        f"  이 입력으로 나타낼 수 없는 사실({NOT_MODELLED} 등)이 결과를 바꾸는 문제는 만들지 말고, "
        "위 입력만으로 결과가 정해지는 문제를 만드세요."
    )
    return "\n".join(lines)


def normalise_inputs(kind: str, inputs: dict[str, Any]) -> dict[str, Any]:
    """Names as the checker spells them (trimmed, lower case) and "true"/"false" strings as booleans."""
    spec = INPUT_TYPES.get(kind, {})
    out: dict[str, Any] = {}
    for raw_name, value in inputs.items():
        name = str(raw_name).strip().lower()
        if spec.get(name) == "bool" and isinstance(value, str) and value.strip().lower() in ("true", "false"):
            value = value.strip().lower() == "true"
        elif isinstance(value, float) and value.is_integer():
            value = int(value)
        out[name] = value
    return out


def payload_problem(payload: dict[str, Any]) -> str | None:
    """Why `verdict.check_calculation` could not recompute this payload, or None when it can.

    Only the payload's shape is judged here: a wrong amount (mismatch) or a year the tables do not cover is left to
    `slm build`, which rejects or flags it with the details.
    """
    kind = payload.get("kind")
    if kind not in INPUT_TYPES:
        return f"calculation.kind: {kind!r} is not one of {', '.join(KINDS)}"
    inputs = payload.get("inputs") or {}
    accepted = INPUT_TYPES[kind]
    unknown = sorted(set(inputs) - set(accepted))
    if unknown:
        return f"calculation.inputs: {', '.join(unknown)} not accepted for {kind}; use only {', '.join(accepted)}"
    missing = [name for name in REQUIRED_INPUTS[kind] if inputs.get(name) is None]
    if missing:
        return f"calculation.inputs: {kind} needs {', '.join(missing)}"
    result = verdict.check_calculation(payload)
    if result.status == "bad_input":
        return f"calculation: {result.reason}"
    return None
