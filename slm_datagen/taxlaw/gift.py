"""증여세 for one gift to a resident donee (상속세 및 증여세법).

Why this exists: teacher models get arithmetic and law wrong in ways a reader does not notice. A widely copied sample
computes 증여세 on 20억원 with the brackets up to 5억 only (9,000만원) and says a parent's gift has no deduction; the
law gives a 5,000만원 증여재산공제 (제53조), a base of 19억 5,000만원 and 산출세액 6억 2,000만원.

Modelled: 세율 (제26조 via 제56조), 증여재산공제 by the direction of the gift (제53조: 배우자 6억, 직계존속→성년 5,000만
/ 미성년 2,000만, 직계비속→직계존속 5,000만, 기타친족 1,000만), 혼인·출산 증여재산공제 (제53조의2), 세대생략 할증
(제57조: 30%, 40% for a minor receiving more than 20억, not when the donee's parent has died), 10-year aggregation
(제47조②) with 기납부세액공제 (제58조), 신고세액공제 (제69조), 가산세 (penalties.py), 50만원 미만 불부과 (제55조②).

How the statute is read here (a 세무사 may see these as choices; each is tested):
* 제47조② "동일인(증여자가 직계존속이면 그 배우자 포함)으로부터 받은 증여재산가액을 합친 금액이 1천만원 이상인
  경우에는 그 가액을 가산": `prior_gifts_won` is the total of the earlier gifts within 10 years from that donor (and,
  for a parent or grandparent, the donor's spouse). The threshold is applied to that total of earlier gifts — "그 가액",
  the amount added, is the earlier gifts; the present gift is taxed whatever its size — so earlier gifts under
  1,000만원 in total are not added and earn no 기납부세액공제.
* The 증여재산공제 is one 10-year allowance per relation group (제53조 본문), used in date order. Earlier gifts that are
  not added back still used it first; `deduction_used_won` is what *other* donors of the group already used (the
  grandparents' gifts when a parent gives now, say).
* 기납부세액 (제58조) is the tax on the earlier gifts: `prior_gift_tax_won` when the caller knows it, else recomputed
  with these tables on the earlier gifts alone (their share of the allowance, the same 할증), and in both cases capped
  at 산출세액(할증 포함) × 가산한 증여재산의 과세표준 / 과세표준 (제58조①).
* The 40% of 제57조② is for "증여재산가액이 20억원을 초과": when the present gift alone and the aggregated 과세가액 fall
  on different sides of 20억, the case is unverified rather than guessed.
* 신고세액공제 is 제69조's percent of (산출세액 + 할증 − 기납부세액공제); a return filed late gets none.

Not modelled: 감정평가수수료공제, 외국납부세액공제, 연부연납, 부담부증여, 비거주자.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from slm_datagen.taxlaw.amounts import format_won
from slm_datagen.taxlaw.computation import (
    BracketLine,
    Step,
    TaxComputation,
    apply_schedule,
    as_of_field,
    gift_article,
    lines_text,
    pct_of,
    pick,
    require_won,
    year_of,
)
from slm_datagen.taxlaw.inputs import DonorRelation, donor_relation
from slm_datagen.taxlaw.penalties import ON_TIME, Lateness, add_months_end, deadline_window, late_penalties
from slm_datagen.taxlaw.penalties import penalty_sentence as _penalty_sentence
from slm_datagen.taxlaw.tables import (
    AGGREGATION_THRESHOLD,
    FILING_CREDIT_PCT,
    GENERATION_SKIP_SURCHARGE,
    GIFT_DEDUCTIONS,
    INHERITANCE_GIFT_RATES,
    MARRIAGE_BIRTH_DEDUCTION_LIMIT,
    MINIMUM_TAXABLE_BASE,
    GenerationSkipSurcharge,
    GiftDeductionTable,
    RateSchedule,
    UnsupportedCase,
)

RELATION_LABELS = {
    DonorRelation.SPOUSE: "배우자",
    DonorRelation.LINEAL_ASCENDANT: "직계존속",
    DonorRelation.GRANDPARENT: "조부모 등 직계존속(세대생략)",
    DonorRelation.LINEAL_DESCENDANT: "직계비속→직계존속",
    DonorRelation.OTHER_RELATIVE: "그 밖의 친족",
    DonorRelation.UNRELATED: "타인",
}
_ASCENDANTS = (DonorRelation.LINEAL_ASCENDANT, DonorRelation.GRANDPARENT)


def gift_deadline(gift_day: date) -> date:
    """증여세 법정신고기한: 증여받은 날이 속하는 달의 말일부터 3개월 (제68조①)."""
    return add_months_end(gift_day, 3)


def gift_tax(
    amount_won: int,
    relationship: str | DonorRelation,
    donee_is_minor: bool = False,
    year: int | date | str | None = None,
    prior_gifts_won: int = 0,
    marriage_birth_deduction_won: int = 0,
    filed_on_time: bool = True,
    *,
    prior_gift_tax_won: int | None = None,
    deduction_used_won: int = 0,
    donee_parent_deceased: bool = False,
    lateness: Lateness = ON_TIME,
) -> TaxComputation:
    """증여세 for one gift of 증여재산가액 `amount_won` from a donor who is `relationship` to the donee; an unknown age
    is not a minor's; year = gift date or year (None = latest tables). Readings: see the module docstring."""
    for name, value in (("amount_won", amount_won), ("prior_gifts_won", prior_gifts_won)):
        require_won(name, value)
    require_won("marriage_birth_deduction_won", marriage_birth_deduction_won)
    require_won("deduction_used_won", deduction_used_won)
    relation = donor_relation(relationship)
    lateness = lateness if filed_on_time else Lateness(**{**lateness.__dict__, "filed_on_time": False})
    schedule: RateSchedule = pick(INHERITANCE_GIFT_RATES, year)
    deductions: GiftDeductionTable = pick(GIFT_DEDUCTIONS, year)
    allowance = max(deductions.limit(relation, donee_is_minor) - deduction_used_won, 0)

    added = prior_gifts_won if prior_gifts_won >= AGGREGATION_THRESHOLD else 0
    if prior_gifts_won and not added:  # earlier small gifts were not added back but used the allowance first
        allowance -= min(allowance, prior_gifts_won)
    gross = amount_won + added  # 증여세 과세가액 (제47조②)
    relation_deduction = min(allowance, gross)
    marriage = _marriage_birth_deduction(marriage_birth_deduction_won, relation, year, gross - relation_deduction)
    base = gross - relation_deduction - marriage
    computed, lines = apply_schedule(base, schedule) if base >= MINIMUM_TAXABLE_BASE else (0, [])
    surcharge_pct = _surcharge_pct(relation, donee_is_minor, donee_parent_deceased, amount_won, gross, year)
    surcharge = computed * surcharge_pct // 100

    prepaid = _prepaid_tax_credit(
        added,
        allowance,
        schedule,
        computed + surcharge,
        base,
        prior_gift_tax_won,
        (relation, donee_is_minor, donee_parent_deceased, year),
    )

    filing_pct = pick(FILING_CREDIT_PCT, year) if lateness.filed_on_time else 0
    filing_credit = pct_of(computed + surcharge - prepaid, filing_pct)
    tax_due = computed + surcharge - prepaid - filing_credit
    window = deadline_window(year, gift_deadline) if lateness.is_late else None
    nonfiling, late_payment, penalty_steps, penalty_articles = late_penalties(tax_due, lateness, window)
    payable = tax_due + nonfiling + late_payment

    facts = _GiftFigures(amount_won, added, gross, relation_deduction, marriage, base, computed, surcharge, prepaid)
    text = _explanation(facts, relation, donee_is_minor, lines, surcharge_pct, filing_pct, filing_credit)
    if penalty_steps:
        text += " " + _penalty_sentence(nonfiling, late_payment, lateness)
    inputs = {"amount_won": amount_won, "relationship": relation.value, "donee_is_minor": donee_is_minor}
    inputs |= {"year": year_of(year), "prior_gifts_won": prior_gifts_won, "filed_on_time": lateness.filed_on_time}
    return TaxComputation(
        kind="gift_tax",
        as_of=as_of_field(year),
        inputs=inputs | {"marriage_birth_deduction_won": marriage_birth_deduction_won, "days_late": lateness.days_late},
        deduction=relation_deduction + marriage,
        taxable_base=base,
        computed_tax=computed,
        prepaid_tax_credit=prepaid,
        filing_credit=filing_credit,
        payable=payable,
        brackets=lines,
        articles=_articles(facts, marriage_birth_deduction_won, lateness.filed_on_time) + penalty_articles,
        explanation=text + f" 납부할 세액은 {format_won(payable)}입니다.",
        gross_value=gross,
        surcharge=surcharge,
        penalty_tax=nonfiling + late_payment,
        payable_with_local_tax=payable,
        steps=_steps(facts, relation, filing_credit) + penalty_steps + [_payable_step(payable)],
    )


@dataclass(frozen=True)
class _GiftFigures:
    """The figures from the gift to the tax, shared by the steps, the articles and the explanation."""

    amount: int
    added: int
    gross: int
    relation_deduction: int
    marriage: int
    base: int
    computed: int
    surcharge: int
    prepaid: int


def _prepaid_tax_credit(
    added: int,
    allowance: int,
    schedule: RateSchedule,
    tax_with_surcharge: int,
    base: int,
    prior_tax: int | None,
    surcharge_facts: tuple[DonorRelation, bool, bool, int | date | str | None],
) -> int:
    """제58조 기납부세액공제 for the added-back gifts, capped at 산출세액 × (their 과세표준 / the whole 과세표준)."""
    if not added:
        return 0
    prior_base = added - min(allowance, added)
    if prior_tax is None:
        relation, minor, parent_deceased, year = surcharge_facts
        recomputed = apply_schedule(prior_base, schedule)[0] if prior_base >= MINIMUM_TAXABLE_BASE else 0
        pct = _surcharge_pct(relation, minor, parent_deceased, added, added, year)
        prior_tax = recomputed + recomputed * pct // 100
    require_won("prior_gift_tax_won", prior_tax)
    return min(prior_tax, tax_with_surcharge * prior_base // base) if base else 0


def _marriage_birth_deduction(claimed: int, relation: DonorRelation, year: int | date | str | None, room: int) -> int:
    """제53조의2: only from a 직계존속, capped (1억원), and never more than what is left after the 제53조 공제."""
    if not claimed:
        return 0
    if relation not in _ASCENDANTS:
        raise ValueError("혼인·출산 증여재산공제 (제53조의2) applies only to gifts from a 직계존속")
    cap = pick(MARRIAGE_BIRTH_DEDUCTION_LIMIT, year)
    if claimed > cap:
        raise ValueError(f"혼인·출산 증여재산공제 is capped at {format_won(cap)}")
    return min(claimed, room)


def _surcharge_pct(
    relation: DonorRelation, minor: bool, parent_deceased: bool, amount: int, gross: int, year: int | date | str | None
) -> int:
    """제57조: 30%, or 40% for a minor donee over the threshold; none for a 직계존속 other than a grandparent, and none
    when the donee's parent (the donor's child) has died (제57조① 단서)."""
    if relation is not DonorRelation.GRANDPARENT or parent_deceased:
        return 0
    rule: GenerationSkipSurcharge = pick(GENERATION_SKIP_SURCHARGE, year)
    if not minor or rule.minor_threshold is None or rule.minor_pct is None:
        return rule.pct
    if (amount > rule.minor_threshold) != (gross > rule.minor_threshold):
        raise UnsupportedCase(
            "제57조② 20억원 기준: the present gift and the aggregated 과세가액 fall on different sides; unverified reading"
        )
    return rule.minor_pct if gross > rule.minor_threshold else rule.pct


def _articles(f: _GiftFigures, marriage_claimed: int, filed_on_time: bool) -> list[str]:
    names = ["제47조"] if f.added else []
    names += ["제26조", "제56조", "제53조"] + (["제53조의2"] if marriage_claimed else []) + ["제55조"]
    names += (["제57조"] if f.surcharge else []) + (["제58조"] if f.added else [])
    names += ["제69조"] if filed_on_time else []
    return [gift_article(name) for name in names]


def _steps(f: _GiftFigures, relation: DonorRelation, filing_credit: int) -> list[Step]:
    steps = [Step(key="gross_value", label="증여세 과세가액", won=f.gross, article=gift_article("제47조"))]
    steps.append(
        Step(key="deduction_item", label="증여재산공제", won=f.relation_deduction, article=gift_article("제53조"))
    )
    if f.marriage:
        steps.append(
            Step(
                key="deduction_item", label="혼인·출산 증여재산공제", won=f.marriage, article=gift_article("제53조의2")
            )
        )
    steps.append(
        Step(key="deduction", label="공제 합계", won=f.relation_deduction + f.marriage, article=gift_article("제55조"))
    )
    steps.append(Step(key="taxable_base", label="과세표준", won=f.base, article=gift_article("제55조")))
    steps.append(Step(key="computed_tax", label="산출세액", won=f.computed, article=gift_article("제56조")))
    if f.surcharge:
        steps.append(Step(key="surcharge", label="세대생략 할증", won=f.surcharge, article=gift_article("제57조")))
    if f.prepaid:
        steps.append(
            Step(key="prepaid_tax_credit", label="기납부세액공제", won=f.prepaid, article=gift_article("제58조"))
        )
    if filing_credit:
        steps.append(Step(key="filing_credit", label="신고세액공제", won=filing_credit, article=gift_article("제69조")))
    return steps


def _payable_step(payable: int) -> Step:
    return Step(key="payable", label="납부할 세액", won=payable, article=gift_article("제70조"))


def _explanation(
    f: _GiftFigures,
    relation: DonorRelation,
    minor: bool,
    lines: list[BracketLine],
    surcharge_pct: int,
    filing_pct: int,
    filing_credit: int,
) -> str:
    label = RELATION_LABELS[relation]
    if relation in _ASCENDANTS:
        label += "→" + ("미성년" if minor else "성년") + " 수증자"
    head = f"증여재산가액 {format_won(f.amount)}"
    if f.added:
        head += f"에 10년 내 동일인 증여 {format_won(f.added)}을 합산한 과세가액 {format_won(f.gross)}(제47조②)"
    if f.relation_deduction or f.marriage:
        subtracted = f"증여재산공제 {format_won(f.relation_deduction)}({label}, 제53조)"
        if f.marriage:
            subtracted += f"과 혼인·출산 증여재산공제 {format_won(f.marriage)}(제53조의2)"
        sentences = [f"{head}에서 {subtracted}을 빼면 과세표준은 {format_won(f.base)}입니다."]
    else:
        sentences = [f"{head}에 대해 증여재산공제가 없으므로({label}) 과세표준은 {format_won(f.base)}입니다."]
    sentences.append(_tax_sentence(f.computed, lines))
    if f.surcharge:
        sentences.append(f"세대생략 할증 {surcharge_pct}% {format_won(f.surcharge)}을 더합니다(제57조).")
    if f.prepaid:
        sentences.append(f"기납부세액공제 {format_won(f.prepaid)}(제58조)을 뺍니다.")
    if filing_credit:
        sentences.append(f"신고세액공제 {filing_pct}% {format_won(filing_credit)}(제69조)을 뺍니다.")
    return " ".join(sentences)


def _tax_sentence(computed: int, lines: list[BracketLine]) -> str:
    if not lines:
        return "과세표준이 50만원 미만이므로 증여세를 부과하지 않습니다(제55조②)."
    return f"제56조에 따라 제26조 세율을 적용한 산출세액은 {format_won(computed)}({lines_text(lines)})입니다."
