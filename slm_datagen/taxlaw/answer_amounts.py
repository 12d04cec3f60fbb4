"""Checking the amounts a free-text answer states: `labelled_amounts` reads (label, amount) pairs from the text, and
`check_answer_amounts` judges the final stated tax and the stated 과세표준 against a TaxComputation.
"""

from __future__ import annotations

import re

from slm_datagen.taxlaw.amounts import AmountMention, find_amounts, format_won
from slm_datagen.taxlaw.computation import TaxComputation
from slm_datagen.taxlaw.verdict import matches

# Words that label the amount after them. Longest first so "신고세액공제" is not read as "세액".
_LABELS: dict[str, str] = {
    # the amount is a deduction, base or value, not a tax
    "신고세액공제": "other",
    "기납부세액공제": "other",
    "기납부세액": "other",
    "세액공제": "other",
    "누진공제": "other",
    "증여재산공제": "other",
    "공제액": "other",
    "공제": "other",
    "과세표준": "other",
    "과세가액": "other",
    "재산가액": "other",
    "증여재산": "other",
    "상속재산": "other",
    "소득금액": "other",
    "양도차익": "other",
    "양도가액": "other",
    "취득가액": "other",
    "증여액": "other",
    "증여한": "other",
    "증여받은": "other",
    # labels the step checks of answer_steps.py read; here they only keep the nearest-label rule honest
    "지방소득세": "local",
    "양도소득금액": "other",
    "장기보유특별공제": "other",
    "기본공제": "other",
    "기초공제": "other",
    "일괄공제": "other",
    "인적공제": "other",
    "상속공제": "other",
    "매출세액": "other",
    "매입세액": "other",
    "공급가액": "other",
    "공급대가": "other",
    "필요경비": "other",
    "세대생략 할증": "other",
    "할증": "other",
    "무신고가산세": "other",
    "납부지연가산세": "other",
    "가산세": "other",
    "환급세액": "other",
    "합계": "total",
    "합한": "total",
    "합하면": "total",
    "더한": "total",
    "더하면": "total",
    "포함하면": "total",
    "포함한": "total",
    "포함": "total",
    "총 세액": "total",
    "총 부담": "total",
    "총 납부": "total",
    "법인세": "tax",
    "부가가치세": "tax",
    "부가세": "tax",
    # the amount after 신고세액공제
    "납부할 세액": "payable",
    "납부할 증여세": "payable",
    "납부할 상속세": "payable",
    "납부할 세금": "payable",
    "납부세액": "payable",
    "납부할": "payable",
    # 산출세액 (before credits)
    "산출세액": "computed",
    # a tax amount that could be either
    "결정세액": "tax",
    "최종 세액": "tax",
    "양도소득세": "tax",
    "종합소득세": "tax",
    "증여세": "tax",
    "상속세": "tax",
    "소득세": "tax",
    "세액": "tax",
    "세금": "tax",
}
# Looked up with all whitespace removed, so "납부할세액" and "납부할  세액" both count.
_LABEL_KIND: dict[str, str] = {label.replace(" ", ""): kind for label, kind in _LABELS.items()}
_LABEL_RE = re.compile("|".join(sorted((label.replace(" ", r"\s*") for label in _LABELS), key=len, reverse=True)))
# Clause ends: a sentence end, a line break, or ", " (a digit group comma has no space after it: "1,000만원").
_SENTENCE_BREAK = re.compile(r"[.!?。](?=\s|$)|\n|[,，](?=\s)")
_OPERATORS = "×x*+−-/÷"
_RESULT_MARKS = ("=", "→", "⇒")
# Subtraction written out in words: "20억원에서 증여재산공제 5,000만원을 뺀 19억 5,000만원", "20억원에서 5천만원을
# 공제하면 과세표준은 19억 5천만원". The minuend ("…에서") and the subtrahend ("…을/를 뺀/차감한/공제한/제외한", also
# -하면/-하고/-하여) are operands; the figure the clause goes on to state is the result. A short parenthetical may sit
# between amount and particle ("5,000만원(증여재산공제)을 뺀"). 공제받은/공제받을 is not a subtraction: it states a deduction.
_PAREN_NOTE = r"(?:\s*\([^()\n]{0,30}\))?"
_SUBTRACT_VERB = r"[을를]\s*(?:뺀|빼[가-힣]*|(?:차감|공제|제외)(?:한|하[가-힣]*))"
# The minuend swallows a subtrahend named without an amount, whose label would otherwise pass to the result
# ("증여세는 6억 2,000만원에서 신고세액공제를 빼면 6억 140만원": 증여세, not 신고세액공제).
_MINUEND_RE = re.compile(_PAREN_NOTE + rf"\s*에서(?:\s*[가-힣][가-힣 ]{{0,20}}?{_SUBTRACT_VERB})?")
_SUBTRAHEND_RE = re.compile(_PAREN_NOTE + rf"\s*{_SUBTRACT_VERB}")
# A label directly in front of an operand, with only spaces or a colon between, names that operand ("증여재산 20억원에서"),
# not the result; one followed by a particle is the topic of the clause ("과세표준은 20억원에서 …").
_ATTACHED_GAP = re.compile(r"[\s:：]*")


def _clause_start(text: str, pos: int, max_back: int = 80) -> int:
    """Start of the clause holding `pos`: after the last sentence break, at most `max_back` characters back."""
    start = max(0, pos - max_back)
    breaks = [m.end() for m in _SENTENCE_BREAK.finditer(text, start, pos)]
    return breaks[-1] if breaks else start


def _last_label(text: str, start: int, end: int) -> str | None:
    labels = list(_LABEL_RE.finditer(text, start, end))
    return "".join(labels[-1].group(0).split()) if labels else None


def _operand_label_start(text: str, clause: int, operand_start: int) -> int:
    """Where the words naming an operand begin: at its own label when one sits right before it, else at the operand."""
    labels = list(_LABEL_RE.finditer(text, clause, operand_start))
    if labels and _ATTACHED_GAP.fullmatch(text, labels[-1].end(), operand_start):
        return labels[-1].start()
    return operand_start


def _statement_label(text: str, clause: int, end: int, chain: tuple[int, int, int, int] | None) -> str | None:
    """The last label in text[clause:end], looking past a worded subtraction the clause holds.

    chain = (clause start, start of the first operand's own label, start of the first operand, end of the run) for the
    run of operands before the amount ("증여재산 20억원에서 증여재산공제 5,000만원을 뺀"). Its labels describe the
    operands, so the result's label is one after the run ("…공제하면 과세표준은 19억 5천만원"), else the last one before
    it ("과세표준은 20억원에서 … 뺀 19억 5,000만원"), else the first operand's own ("과세표준 20억원에서 … 뺀 19억
    5,000만원", where nothing else names the figure).
    """
    if chain is None or chain[3] > end:
        return _last_label(text, clause, end)
    chain_clause, label_start, operand_start, chain_end = chain
    start = min(clause, chain_clause)
    return (
        _last_label(text, chain_end, end)
        or _last_label(text, start, label_start)
        or _last_label(text, start, operand_start)
    )


# A label right after the amount names it when the sentence ends there: "…19억 5,000만원이 과세표준입니다".
_LABEL_AFTER = re.compile(
    r"\s*(?:이|가|은|는)\s*("
    + _LABEL_RE.pattern
    + r")\s*(?:입니다|이다|이며|이고|이\s*됩니다|가\s*됩니다|이\s*되|가\s*되|에\s*해당)"
)


def _equation_label(
    text: str, clause: int, mark: int, chain: tuple[int, int, int, int] | None, stated: list
) -> str | None:
    """The label of "… = X": the left-hand side's, unless that label already named a figure stated before the
    equation ("과세표준 20억원은 … 20억원 × 45% − 6,594만원 = 8억 3,406만원": the result is not the 과세표준)."""
    labels = list(_LABEL_RE.finditer(text, clause, mark))
    if labels and any(labels[-1].end() <= m.start < mark for _, m in stated):
        return None
    return _statement_label(text, clause, mark, chain)


def labelled_amounts(answer_text: str) -> list[tuple[str, AmountMention]]:
    """(label, amount) for each stated amount, the label being the nearest known word before it in its clause
    (whitespace removed, e.g. "납부할세액", "과세표준", "증여세").

    An amount right after "=" takes the label of the left-hand side ("산출세액 = 19.5억 × 40% − 1.6억 = 6.2억").
    Operands of ×, +, −, ÷, of a subtraction in words ("20억원에서 5,000만원을 뺀 19억 5,000만원": the first two) and
    band limits ("1억원 이하") are not statements and are skipped, as are unlabelled ones.
    """
    return [(label, mention) for label, mention in stated_amounts(answer_text) if label is not None]


def stated_amounts(answer_text: str) -> list[tuple[str | None, AmountMention]]:
    """Every stated amount (not an operand, not a band limit) with its label as in `labelled_amounts`, or None when
    nothing in its clause names it ("9,000만원을 내시면 됩니다")."""
    out: list[tuple[str | None, AmountMention]] = []
    chain: tuple[int, int, int, int] | None = None  # the worded subtraction in progress, see _statement_label
    for mention in find_amounts(answer_text):
        if mention.qualifier:
            continue
        # Only spaces on the same line: a "- " bullet on the next line is not a subtraction of this amount.
        before = answer_text[: mention.start].rstrip(" \t")
        after = answer_text[mention.end :].lstrip(" \t")
        if (before and before[-1] in _OPERATORS) or (after and after[0] in _OPERATORS):
            continue
        clause = _clause_start(answer_text, mention.start)
        if chain is not None and _SENTENCE_BREAK.search(answer_text, chain[3], mention.start):
            chain = None  # a subtraction does not carry its result into the next clause
        minuend = _MINUEND_RE.match(answer_text, mention.end)
        operand = minuend or _SUBTRAHEND_RE.match(answer_text, mention.end)
        if operand is not None:
            if chain is None:
                label_start = _operand_label_start(answer_text, clause, mention.start)
                # A run that opens with what is subtracted ("신고세액공제 1,860만원을 빼면 6억 140만원"): that label
                # names the subtrahend, never the result, so it must not be the fallback.
                chain = (clause, label_start, mention.start if minuend else label_start, operand.end())
            else:
                chain = (*chain[:3], operand.end())
            continue
        label = None
        after_label = _LABEL_AFTER.match(answer_text, mention.end)
        if after_label is not None:  # "19억 5,000만원이 과세표준입니다"
            label = "".join(after_label.group(1).split())
        elif before and before[-1] in _RESULT_MARKS:
            marks = [i for i in (answer_text.find(mark, clause, mention.start) for mark in _RESULT_MARKS) if i >= 0]
            if marks:
                label = _equation_label(answer_text, clause, min(marks), chain, out)
                if label is None:
                    out.append((None, mention))
                    chain = None
                    continue
        if label is None:
            label = _statement_label(answer_text, clause, mention.start, chain)
        chain = None  # the result closes the subtraction
        out.append((label, mention))
    return out


_APPROX_BEFORE = re.compile(r"(?:약|대략|어림잡아)\s*$")
_APPROX_AFTER = re.compile(r"^\s*(?:정도|가량|내외|안팎)")
_UNIT_STATED = {"천원 단위": 1_000, "천원단위": 1_000, "만원 단위": 10_000, "만원단위": 10_000}


def stated_unit(answer_text: str, mention: AmountMention) -> int:
    """The rounding an answer states for an amount: "천원 단위"/"만원 단위" anywhere in the answer, or "약 X"/"X 정도"
    (the place of X's last non-zero digit); 1 (exact) when it states none."""
    unit = max((value for phrase, value in _UNIT_STATED.items() if phrase in answer_text), default=1)
    before, after = answer_text[: mention.start], answer_text[mention.end :]
    if _APPROX_BEFORE.search(before) or _APPROX_AFTER.search(after):
        won, place = mention.won, 1
        while won and won % (place * 10) == 0:
            place *= 10
        unit = max(unit, place)
    return unit


def check_answer_amounts(
    answer_text: str,
    computation: TaxComputation,
) -> list[str]:
    """Problems with the amounts a free-text answer states, judged against `computation`; [] when it agrees.

    Flags (1) the final stated tax — the last amount labelled by 세액/증여세/상속세/산출세액/납부할 … — when it matches
    neither the computed figure it names (산출세액 → computed_tax, 납부할 세액 → payable, a bare 증여세/세액 → either),
    (2) an answer with no stated tax at all, (3) the last stated 과세표준 when it differs from the computed base.
    """
    problems: list[str] = []
    stated = labelled_amounts(answer_text)
    taxes = [(_LABEL_KIND[label], m) for label, m in stated if _LABEL_KIND[label] in ("tax", "computed", "payable")]
    if not taxes:
        problems.append("답변에 최종 세액이 없음 / no final tax amount stated in the answer")
    else:
        kind, mention = taxes[-1]
        claimed, unit = mention.won, stated_unit(answer_text, mention)
        targets = {
            "computed": [("산출세액", computation.computed_tax)],
            "payable": [("납부할 세액", computation.payable)],
            "tax": [("산출세액", computation.computed_tax), ("납부할 세액", computation.payable)],
        }[kind]
        within = [matches(claimed, value, "payable", unit) for _, value in targets]
        if not any(within):
            expected_ko = ", ".join(f"{name} {format_won(value)}" for name, value in targets)
            expected_en = " or ".join(f"{value:,}" for _, value in targets)
            problems.append(
                f"최종 세액 {format_won(claimed)}이 계산과 다름({expected_ko}) / "
                f"final stated tax {claimed:,} won does not match the computation ({expected_en} won)"
            )
    bases = [m for label, m in stated if label == "과세표준"]
    if bases:
        claimed_base, expected_base = bases[-1].won, computation.taxable_base
        if not matches(claimed_base, expected_base, "taxable_base", stated_unit(answer_text, bases[-1])):
            problems.append(
                f"과세표준 {format_won(claimed_base)}이 계산과 다름(계산 {format_won(expected_base)}) / "
                f"stated taxable base {claimed_base:,} won differs from the computed {expected_base:,} won"
            )
    return problems
