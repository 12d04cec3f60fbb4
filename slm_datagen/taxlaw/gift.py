"""증여세 for one gift to a resident donee (상속세 및 증여세법).

Why this exists: teacher models get arithmetic and law wrong in ways a reader does not notice. A widely copied sample
computes 증여세 on 20억원 with the brackets up to 5억 only (9,000만원) and says a parent's gift has no deduction; the
law gives a 5,000만원 증여재산공제 (제53조), a base of 19억 5,000만원 and 산출세액 6억 2,000만원.

Modelled: 세율 (제26조, applied to gifts by 제56조), 증여재산공제 (제53조), 혼인·출산 증여재산공제 (제53조의2),
10-year same-donor aggregation (제47조②) with 기납부세액공제 (제58조), 신고세액공제 (제69조), and the "과세표준 50만원
미만이면 부과하지 아니한다" rule (제55조②). Not modelled: 세대생략 할증 (제57조), 감정평가수수료공제, 외국납부세액공제,
연부연납.
"""

from __future__ import annotations

from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    BracketLine,
    TaxComputation,
    apply_schedule,
    as_of_field,
    credits_sentence,
    gift_article,
    lines_text,
    pct_of,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.inputs import DonorRelation, donor_relation
from slm_datagen.taxlaw.tables import (
    FILING_CREDIT_PCT,
    GIFT_DEDUCTIONS,
    INHERITANCE_GIFT_RATES,
    MARRIAGE_BIRTH_DEDUCTION_LIMIT,
    MINIMUM_TAXABLE_BASE,
    GiftDeductionTable,
    RateSchedule,
)


def gift_tax(
    amount_won: int,
    relationship: str | DonorRelation,
    donee_is_minor: bool = False,
    year: int | date | str | None = None,
    prior_gifts_won: int = 0,
    marriage_birth_deduction_won: int = 0,
    filed_on_time: bool = True,
) -> TaxComputation:
    """증여세 for one gift to a resident donee.

    amount_won: 증여재산가액 (after 비과세·채무인수 adjustments, which are the caller's job).
    relationship: the donor's relation to the donee (DonorRelation or a Korean label).
    prior_gifts_won: gifts from the same donor (or that donor's spouse if a 직계존속) within 10 years, added back under
        제47조②. Assumed to have used the same 증여재산공제 group first; deductions used by *other* donors of the same
        group are not known here. Their 증여세 is credited (제58조) as recomputed on those gifts alone.
    marriage_birth_deduction_won: the 제53조의2 amount claimed (capped at 1억원, only from a 직계존속, 2024 onward).
    year: the gift date or its year (None = the latest tables here).
    """
    require_won("amount_won", amount_won)
    require_won("prior_gifts_won", prior_gifts_won)
    require_won("marriage_birth_deduction_won", marriage_birth_deduction_won)
    relation = donor_relation(relationship)
    schedule: RateSchedule = pick(INHERITANCE_GIFT_RATES, year)
    deductions: GiftDeductionTable = pick(GIFT_DEDUCTIONS, year)
    articles = [gift_article("제26조"), gift_article("제56조"), gift_article("제53조"), gift_article("제55조")]

    gross = amount_won + prior_gifts_won  # 증여세 과세가액 (제47조②)
    limit = deductions.limit(relation, donee_is_minor)
    relation_deduction = min(limit, gross)

    marriage_deduction = _marriage_birth_deduction(
        marriage_birth_deduction_won, relation, year, gross - relation_deduction
    )
    articles += [gift_article("제53조의2")] if marriage_birth_deduction_won else []
    deduction = relation_deduction + marriage_deduction

    base = gross - deduction
    computed, lines = apply_schedule(base, schedule) if base >= MINIMUM_TAXABLE_BASE else (0, [])

    prepaid = 0
    if prior_gifts_won:
        articles.insert(0, gift_article("제47조"))
        articles.append(gift_article("제58조"))
        prepaid = _prepaid_tax_credit(prior_gifts_won, limit, schedule, computed, base)

    filing_pct = pick(FILING_CREDIT_PCT, year) if filed_on_time else 0
    filing_credit = pct_of(computed - prepaid, filing_pct)
    articles += [gift_article("제69조")] if filed_on_time else []
    payable = computed - prepaid - filing_credit

    sentences = _explanation(
        amount_won, prior_gifts_won, gross, relation, donee_is_minor, relation_deduction, marriage_deduction, base
    )
    sentences.append(_tax_sentence(computed, lines))
    sentences.append(credits_sentence(computed, prepaid, filing_pct, filing_credit, filed_on_time, payable))

    return TaxComputation(
        kind="gift_tax",
        as_of=as_of_field(year),
        inputs={
            "amount_won": amount_won,
            "relationship": relation.value,
            "donee_is_minor": donee_is_minor,
            "year": year_of(year),
            "prior_gifts_won": prior_gifts_won,
            "marriage_birth_deduction_won": marriage_birth_deduction_won,
            "filed_on_time": filed_on_time,
        },
        deduction=deduction,
        taxable_base=base,
        computed_tax=computed,
        prepaid_tax_credit=prepaid,
        filing_credit=filing_credit,
        payable=payable,
        brackets=lines,
        articles=articles,
        explanation=" ".join(sentences),
    )


def _marriage_birth_deduction(claimed: int, relation: DonorRelation, year: int | date | str | None, room: int) -> int:
    """제53조의2: only from a 직계존속, capped (1억원), and never more than what is left after the 제53조 공제."""
    if not claimed:
        return 0
    if relation is not DonorRelation.LINEAL_ASCENDANT:
        raise ValueError("혼인·출산 증여재산공제 (제53조의2) applies only to gifts from a 직계존속")
    cap = pick(MARRIAGE_BIRTH_DEDUCTION_LIMIT, year)
    if claimed > cap:
        raise ValueError(f"혼인·출산 증여재산공제 is capped at {format_won(cap)}")
    return min(claimed, room)


def _prepaid_tax_credit(prior_gifts: int, limit: int, schedule: RateSchedule, computed: int, base: int) -> int:
    """제58조 기납부세액공제: the tax on the added-back gifts alone, capped at 산출세액 × (their base / whole base)."""
    prior_base = prior_gifts - min(limit, prior_gifts)
    prior_tax = apply_schedule(prior_base, schedule)[0] if prior_base >= MINIMUM_TAXABLE_BASE else 0
    cap = computed * prior_base // base if base else 0
    return min(prior_tax, cap)


def _explanation(
    amount_won: int,
    prior_gifts_won: int,
    gross: int,
    relation: DonorRelation,
    donee_is_minor: bool,
    relation_deduction: int,
    marriage_deduction: int,
    base: int,
) -> list[str]:
    """The sentence from the gift to the 과세표준."""
    relation_label = {
        DonorRelation.SPOUSE: "배우자",
        DonorRelation.LINEAL_ASCENDANT: "직계존속→" + ("미성년" if donee_is_minor else "성년") + " 수증자",
        DonorRelation.LINEAL_DESCENDANT: "직계비속",
        DonorRelation.OTHER_RELATIVE: "그 밖의 친족",
        DonorRelation.UNRELATED: "타인",
    }[relation]
    if prior_gifts_won:
        head = (
            f"증여재산가액 {format_won(amount_won)}에 10년 내 동일인 증여 {format_won(prior_gifts_won)}을 합산한 "
            f"과세가액 {format_won(gross)}(제47조②)"
        )
    else:
        head = f"증여재산가액 {format_won(amount_won)}"
    if relation_deduction or marriage_deduction:
        subtracted = f"증여재산공제 {format_won(relation_deduction)}({relation_label}, 제53조)"
        if marriage_deduction:
            subtracted += f"과 혼인·출산 증여재산공제 {format_won(marriage_deduction)}(제53조의2)"
        sentences = [f"{head}에서 {subtracted}을 빼면 과세표준은 {format_won(base)}입니다."]
    else:
        sentences = [f"{head}에 대해 증여재산공제가 없으므로({relation_label}) 과세표준은 {format_won(base)}입니다."]
    return sentences


def _tax_sentence(computed: int, lines: list[BracketLine]) -> str:
    if not lines:
        return "과세표준이 50만원 미만이므로 증여세를 부과하지 않습니다(제55조②)."
    return f"제56조에 따라 제26조 세율을 적용한 산출세액은 {format_won(computed)}({lines_text(lines)})입니다."
