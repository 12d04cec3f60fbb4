"""The facts a question states in words, read for the arithmetic check: which tax it asks about, whether it asks for an
amount, every amount with the role its words give it (과세표준, 양도가액, 증여 …), the dates and what each dates
(증여일, 양도일, 귀속연도 …), holding and residence years, and late filing.

Deliberately literal: a fact counts only when the question says it; what it does not say stays unknown, and the
readings (question_readings.py) either try every value the law could take or leave the pair unverified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from slm_datagen.taxlaw.amounts import AmountMention, find_amounts

# Words that name one tax inside another's question are masked before the tax asked about is read: "소득세" inside
# "지방소득세" is a different tax; the law's name "상속세 및 증여세법" names both; an inheritance question's
# "증여세액공제" (상증법 제28조: the gift tax already paid on gifts added back) asks nothing about a gift.
_LOCAL_TAX = re.compile(r"지방\s*소득세|상속세\s*및\s*증여세법|상증법|증여세액\s*공제")
_TAX_WORDS: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("gift_tax", re.compile(r"증여")),
    ("inheritance_tax", re.compile(r"상속")),
    ("capital_gains_tax", re.compile(r"양도|팔았|매도|처분")),
    ("corporate_tax", re.compile(r"법인세")),
    ("vat", re.compile(r"부가가치세|부가세|매출세액|매입세액|간이과세")),
    ("income_tax", re.compile(r"종합소득세|(?<![가-힣])소득세|소득세\s*(?:는|은|가|를)")),
)
_ASKS_AMOUNT = re.compile(
    r"얼마|계산|산출|몇\s*원|금액(?:은|이)|(?:세액|세금|세)(?:은|는|이)?\s*\?|내야|납부해야|나오나요|부담해야|되나요\?"
)
_SENTENCE = re.compile(r"[.?!\n]")
_CLAUSE = re.compile(r"[.?!\n,]|고\s|며\s|는데\s")
_YEAR_DATE = re.compile(
    r"((?:19|20)\d{2})\s*(?:년|\.|-|/)\s*(?:(\d{1,2})\s*(?:월|\.|-|/)\s*(?:(\d{1,2})\s*일?)?)?(?![\d%])"
)
# What a date dates, from the words right after it (or, for 귀속/사업연도, right before it).
_DATE_ROLES: tuple[tuple[str, re.Pattern[str]], ...] = (
    ("tax_year", re.compile(r"^[^.,\n]{0,6}?(?:귀속|과세기간|사업연도|과세연도|소득|제?\s*[12]\s*기)")),
    ("acquisition", re.compile(r"^[^.,\n]{0,12}?(?:취득|샀|사서|구입|매입|분양받|산\s)")),
    ("transfer", re.compile(r"^[^.,\n]{0,12}?(?:양도|팔|매도|처분|매각)")),
    ("gift", re.compile(r"^[^.,\n]{0,15}?증여")),
    ("death", re.compile(r"^[^.,\n]{0,15}?(?:사망|돌아가|별세|상속\s*개시|상속이\s*개시)")),
    ("filing", re.compile(r"^[^.,\n]{0,12}?(?:신고|납부)")),
)
_DATE_ROLE_BEFORE = re.compile(r"(?:사업연도|과세기간|귀속(?:연도)?|과세연도)\s*(?:는|은|:)?\s*$")
_LATE = re.compile(
    r"기한\s*(?:이|을)?\s*(?:지나|지난|넘겨|넘긴|넘어|경과|놓)|기한\s*후\s*신고|기한후\s*신고|무신고|"
    r"신고(?:를|는)?\s*(?:하지|못|안\s*하)|늦게\s*신고|신고(?:를|가)?\s*늦"
)
_LATE_RETURN = re.compile(
    r"기한\s*후\s*신고|기한후\s*신고|늦게\s*신고|(?:지나|넘겨|넘어|경과\s*후|뒤늦게)[가-힣]{0,2}\s*신고"
)
_LATE_DAYS = re.compile(r"(\d+)\s*일\s*(?:이\s*)?(?:늦게|지나|지난|넘겨|넘긴|넘어|경과|후에|뒤에|늦은|초과|만에)")
_LATE_MONTHS = re.compile(r"(\d+)\s*(?:개월|달)\s*(?:이\s*)?(?:늦게|지나|지난|넘겨|넘긴|넘어|경과|후에|뒤에|늦은|만에)")
_FRAUD = re.compile(r"부정행위|허위|은닉|이중장부")
# "(부정행위 없음)", "부정행위는 없었습니다", "허위 신고가 아닙니다": the fact denied, not stated.
_FRAUD_DENIED = re.compile(
    r"\s*(?:한\s*)?(?:행위|사실)?\s*(?:은|는|이|가|도|를)?\s*(?:전혀\s*)?(?:없|아니|아님|하지\s*않|한\s*적\s*(?:이|은)?\s*없)"
)
_HOLDING = (
    re.compile(
        r"(\d+)\s*년\s*(?:(\d+)\s*개월\s*)?(?:\([^)]{0,20}\)\s*)?(?:간|동안|이상)?\s*(?:을\s*)?(?:보유|소유|갖고|가지고)"
    ),
    re.compile(
        r"보유\s*(?:기간)?\s*(?:은|이|:)?\s*(\d+)\s*년(?:\s*(\d+)\s*개월)?(?!\s*(?:\d+\s*개월\s*)?(?:미만|이상|초과|이하|이내))"
    ),
    re.compile(
        r"(\d+)\s*년\s*(?:(\d+)\s*개월\s*)?전에?\s*(?:[^.,\n]|(?<=\d),(?=\d)){0,20}?(?:취득|샀|사서|구입|매입|분양받|에\s*산(?=\s))"
    ),
)
_HOLDING_MONTHS = re.compile(
    r"(?<![년\d])\s(\d+)\s*개월\s*(?:\([^)]{0,20}\)\s*)?(?:간|동안|만에|만|보유|소유|갖고|가지고)|보유\s*(?:기간)?\s*(?:은|이|:)?\s*(\d+)\s*개월"
)
_RESIDENCE = (
    re.compile(r"(\d+)\s*년\s*(?:간|동안|이상)?\s*(?:을\s*)?(?:거주|실거주|살았|살고)"),
    re.compile(r"거주\s*(?:기간)?\s*(?:은|이|:)?\s*(\d+)\s*년"),
)
_RESIDED_THROUGHOUT = re.compile(r"(?:계속|줄곧|쭉|내내|보유\s*기간\s*동안)\s*(?:직접\s*)?(?:거주|살)")


@dataclass(frozen=True)
class DatedMention:
    role: str | None  # tax_year, acquisition, transfer, gift, death, filing, or None
    year: int
    month: int | None
    day: int | None
    start: int

    def value(self) -> int | str:
        """An ISO date when the day is known, else the year (a month alone does not pick a table version)."""
        if self.month and self.day:
            try:
                return date(self.year, self.month, self.day).isoformat()
            except ValueError:
                return self.year
        return self.year


@dataclass(frozen=True)
class Lateness:
    late: bool
    return_filed: bool  # a 기한후신고 was (eventually) filed
    days: int | None  # days after the deadline, when the question says
    fraudulent: bool


@dataclass(frozen=True)
class RoledAmount:
    role: str | None
    mention: AmountMention
    sentence: str  # the sentence the amount stands in


def taxes_asked(question: str) -> list[str]:
    """The taxes the question is about, in the order of _TAX_WORDS; 지방소득세 alone is none of them."""
    text = _LOCAL_TAX.sub("", question)
    found = [kind for kind, pattern in _TAX_WORDS if pattern.search(text)]
    if "income_tax" in found and ("capital_gains_tax" in found or "corporate_tax" in found):
        found.remove("income_tax")  # 양도소득세 / 법인세 questions say 소득 too
    if "capital_gains_tax" in found and "양도소득" not in text and ("gift_tax" in found or "inheritance_tax" in found):
        found.remove("capital_gains_tax")  # "증여받은 아파트를 팔면" asks about the sale only when it says 양도소득
    return found


_DENIED = re.compile(r"아니|아닙|아닌|아님|않|없")


def unmodelled_fact(pattern: re.Pattern[str], question: str) -> str | None:
    """The first fact the calculator does not model that the question really states: "비과세·감면과 중과 대상이
    아닙니다" or "감면은 없습니다" rule the fact out (a negation later in its sentence) instead of stating it."""
    for match in pattern.finditer(question):
        rest = _SENTENCE.split(question[match.end() :], maxsplit=1)[0]
        if not _DENIED.search(rest):
            return match.group(0)
    return None


def asks_amount(question: str) -> bool:
    return _ASKS_AMOUNT.search(question) is not None


def sentence_around(text: str, start: int, end: int) -> str:
    """The clause around text[start:end]: between commas, sentence ends and the connectives 고/며/는데."""
    left = max((m.end() for m in _CLAUSE.finditer(text, 0, start)), default=0)
    right = _CLAUSE.search(text, end)
    return text[left : right.start() if right else len(text)]


def roled_amounts(question: str, roles: tuple[tuple[str, re.Pattern[str], re.Pattern[str] | None], ...]) -> list:
    """Each amount with the role of the nearest role word before it in its sentence (at most 30 characters back), or
    of a verb right after it ("15억원에 팔았습니다"). roles: (name, word before, words after or None)."""
    out: list[RoledAmount] = []
    for mention in find_amounts(question):
        if mention.qualifier:
            continue  # "12억원 초과": a threshold, not a fact
        after = question[mention.end : mention.end + 20]
        role = next((name for name, _, verb in roles if verb is not None and verb.match(after)), None)
        if role is None:
            window_start = max(
                max((m.end() for m in _SENTENCE.finditer(question, 0, mention.start)), default=0), mention.start - 30
            )
            window = question[window_start : mention.start]
            best: tuple[int, int, str] | None = None
            for name, word, _ in roles:
                for hit in word.finditer(window):
                    key = (hit.end(), hit.end() - hit.start(), name)
                    if best is None or key[:2] > best[:2]:
                        best = key
            role = best[2] if best else None
        out.append(RoledAmount(role, mention, sentence_around(question, mention.start, mention.end)))
    return out


def dated_mentions(question: str) -> list[DatedMention]:
    out = []
    for match in _YEAR_DATE.finditer(question):
        year = int(match.group(1))
        month = int(match.group(2)) if match.group(2) else None
        day = int(match.group(3)) if match.group(3) else None
        after = question[match.end() : match.end() + 20]
        role = next((name for name, pattern in _DATE_ROLES if pattern.match(after)), None)
        if role is None and _DATE_ROLE_BEFORE.search(question[max(0, match.start() - 12) : match.start()]):
            role = "tax_year"
        out.append(DatedMention(role, year, month, day, match.start()))
    return out


def event_date(question: str, role: str) -> tuple[list[int | str], bool]:
    """(candidate dates, explicit): the dates the question gives for `role`; else every date with no role of its
    own (explicit False). [] when it gives none."""
    dates = dated_mentions(question)
    own = [d.value() for d in dates if d.role == role]
    if own:
        return sorted(set(own), key=str), True
    loose = [d.value() for d in dates if d.role is None]
    return sorted(set(loose), key=str), False


def lateness_in(question: str) -> Lateness:
    if not _LATE.search(question):
        return Lateness(False, False, None, False)
    days_match = _LATE_DAYS.search(question)
    days = int(days_match.group(1)) if days_match else None
    if days is None and not _LATE_MONTHS.search(question) and "당일" in question:
        days = 0
    return Lateness(True, _LATE_RETURN.search(question) is not None, days, fraud_stated(question))


def fraud_stated(question: str) -> bool:
    """부정행위 (fraud: the 40 % penalty) said of this filing, and not denied ("부정행위 없음")."""
    return any(not _FRAUD_DENIED.match(question, m.end()) for m in _FRAUD.finditer(question))


def holding_years_in(question: str) -> int | None:
    """Whole years held (제95조④), when the question says; months alone count as 0 years when under 12."""
    for pattern in _HOLDING:
        found = {int(m.group(1)) for m in pattern.finditer(question)}
        if len(found) == 1:
            return found.pop()
    months = {int(m.group(1) or m.group(2)) for m in _HOLDING_MONTHS.finditer(question)}
    if len(months) == 1:
        return months.pop() // 12
    return None


def residence_years_in(question: str, holding_years: int | None) -> int | None:
    for pattern in _RESIDENCE:
        found = {int(m.group(1)) for m in pattern.finditer(question)}
        if len(found) == 1:
            return found.pop()
    if holding_years is not None and _RESIDED_THROUGHOUT.search(question):
        return holding_years
    return None


@dataclass(frozen=True)
class Reading:
    """One way the law applies to what a question says: the calculator's kind, date and inputs."""

    kind: str  # a key of taxlaw.kinds.INPUT_TYPES
    year: int | str | None  # as the question dates it (year or ISO date); None = not dated
    inputs: dict[str, Any]
    assumption: str = ""  # what this reading assumes beyond the question ("미성년 가정")


@dataclass(frozen=True)
class QuestionFacts:
    """What a calculation question states: its readings, or why it has none, and the facts said in so many words."""

    tax: str  # the tax asked about: gift_tax, inheritance_tax, income_tax, capital_gains_tax, corporate_tax, vat
    lateness: Lateness
    readings: tuple[Reading, ...] = ()
    unverified: str | None = None  # why there is no reading
    stated: dict[str, Any] = field(default_factory=dict)
    question_amounts: frozenset[int] = frozenset()


def late_inputs(lateness: Lateness) -> list[dict[str, Any]]:
    """The lateness inputs to try: none when on time; the stated days, else 0 days with and without a 기한후신고."""
    if not lateness.late:
        return [{}]
    base: dict[str, Any] = {"filed_on_time": False, "fraudulent": lateness.fraudulent}
    if lateness.days is not None:
        return [base | {"days_late": lateness.days, "late_return_filed": lateness.return_filed}]
    variants = [base | {"days_late": 0, "late_return_filed": lateness.return_filed}]
    if lateness.return_filed:
        variants.append(base | {"days_late": 0, "late_return_filed": False})
    return variants


def tax_date(question: str, role: str) -> tuple[int | str | None, str | None]:
    """(the date that picks the tables, None) or (None, why) when the question gives several candidates."""
    dates, _ = event_date(question, role)
    if len(dates) > 1:
        return None, f"여러 날짜({', '.join(map(str, dates))}) 중 어느 것이 과세 기준일인지 불분명 / several dates"
    return (dates[0] if dates else None), None


def stated_late(lateness: Lateness) -> dict[str, Any]:
    if not lateness.late:
        return {}
    return {"filed_on_time": False} | ({"days_late": lateness.days} if lateness.days is not None else {})


def unverified_facts(facts: QuestionFacts, why: str) -> QuestionFacts:
    return QuestionFacts(facts.tax, facts.lateness, (), why, {}, facts.question_amounts)


def with_readings(
    facts: QuestionFacts, readings: list[Reading], stated: dict[str, Any], year: int | str | None
) -> QuestionFacts:
    if year is not None:
        stated = stated | {"year": int(str(year)[:4])}
    return QuestionFacts(facts.tax, facts.lateness, tuple(readings), None, stated, facts.question_amounts)
