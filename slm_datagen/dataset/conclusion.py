"""The conclusion of an interpretation or ruling, and answers that state its opposite (`conclusion_contradicts_source`).

A 국세청 회신 (the casebook's 답변요지) ends in a conclusion: 해당함 / 해당하지 않음, 적용 가능 / 적용 불가, 과세되는 것임 /
면제되는 것임, 공제할 수 없는 것임 … A conclusion here is a `Claim`: the *axis* it decides (과세, 공제, 감면, 산입, 포함,
적용, 인정; the weak 해당/대상; a bare 가능/할 수 있; or a generic predicate) and its *polarity* (+1 / -1).

How a sentence's claim is read (on Kiwi morphemes, see morphemes.py):
* "A가 아니라 B" / "A뿐만 아니라 B" -> only B counts;
* the sentence is cut into clauses at 며/고/나/지만/는데 and "것이나"; past-tense clauses ("…하였으나") are background;
* in each clause only the predicate counts: the words after the last topic or subject particle (은/는/이/가), so
  "적용 배제되는 해외지주회사로부터 받는 배당금은 … 대상임" is about 대상, not 배제;
* polarity is the parity of the negative elements: 않/아니/없/못/안, and the negative words 불가, 비과세, 면제, 면세, 제외,
  배제 (and 불-/비- before a keyword): "불가능하지 않다" is +1, "공제받을 수 없는 것은 아닙니다" is +1;
* a keyword that only starts a compound noun (과세표준, 공제금) is not one;
* clauses that disagree ("면세되는 것이나 … 과세되는 것임"), or a predicate with no keyword and no negation
  ("…판단할 사항임", "…다음 날임"), give no conclusion. Undetermined never rejects.

Two claims are compared when they decide the same axis, or one of them is weak, modal or generic enough to answer
the other ("소멸시효가 중단되나요?" is answered by "중단 사유에 해당하지 않음"). A 해당 claim is not compared with a
specific axis ("배제되나요?" vs "…장기임대주택에 해당함"): the 해당 may be about a requirement, not the conclusion.

The answer's conclusion is its 네/아니요 lead (relative to the question: "공제받을 수 없나요?" + 네 is -1), else the first
of its first three sentences whose claim is comparable with the source's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from slm_datagen.dataset.morphemes import Morpheme, morphemes
from slm_datagen.dataset.rules import Finding
from slm_forest.records import Chunk, Document, QAPair

# keyword -> the axis it decides; the order of AXES is the order of precedence inside one predicate.
AXES = ("tax", "deduction", "relief", "income_inclusion", "inclusion", "application", "recognition", "weak", "modal")
KEYWORDS: dict[str, str] = {
    "과세": "tax",
    "비과세": "tax",
    "면제": "tax",
    "면세": "tax",
    "부과": "tax",
    "공제": "deduction",
    "불공제": "deduction",
    "세액공제": "deduction",
    "감면": "relief",
    "산입": "income_inclusion",
    "불산입": "income_inclusion",
    "포함": "inclusion",
    "불포함": "inclusion",
    "제외": "inclusion",
    "적용": "application",
    "배제": "application",
    "인정": "recognition",
    "해당": "weak",
    "대상": "weak",
    "가능": "modal",
    "불가": "modal",
    "불가능": "modal",
}
NEGATIVE_KEYWORDS = frozenset(
    {"비과세", "면제", "면세", "불공제", "불산입", "불포함", "제외", "배제", "불가", "불가능"}
)
NEGATORS: frozenset[Morpheme] = frozenset(
    {("않", "VX"), ("아니하", "VX"), ("아니", "VCN"), ("없", "VA"), ("못", "MAG"), ("안", "MAG"), ("못하", "VX")}
)
_NEGATIVE_PREFIXES = frozenset({"불", "비"})  # 불/XPN 공제, 비/XPN 과세, 불/NNG 산입
_PREDICATE_TAGS = frozenset({"VV", "VA", "VX", "XSV", "XSA", "VCP", "VCN", "EP", "VV-R", "VA-R", "VV-I", "VA-I"})
_CLAUSE_BREAKS = frozenset({"며", "으며", "고", "나", "으나", "지만", "는데", "은데"})
_COMPARE_ANYWAY = frozenset({"generic", "modal"})
_CONDITION_NOUNS = frozenset({"경우", "때", "시"})
_CONDITION_ENDINGS = frozenset(
    {"므로", "으므로", "면", "으면", "다면", "어도", "아도", "여도", "더라도", "라도", "니", "으니"}
)
_ACCORDING_VERBS = frozenset({"따르", "대하", "관하", "의하"})
_PARENTHESES_RE = re.compile(r"\([^()]*\)|（[^（）]*）")

_ANSWER_HEAD_CHARS = 600  # the conclusion comes first; analysing the whole answer would only cost time
_LEAD_RE = re.compile(
    r"^\s*(?:결론(?:부터|적으로)\s*(?:말씀드리면|말하면)?\s*[,:]?\s*)?"
    r"(?P<lead>네|예|맞습니다|그렇습니다|아니요|아니오|아닙니다|그렇지 않습니다)\s*(?=[.,!]|\s|$)"
)
_POSITIVE_LEADS = frozenset({"네", "예", "맞습니다", "그렇습니다"})
_WH_WORDS = re.compile(r"무엇|언제|어떻게|어떤|누구|누가|얼마|어디|몇|왜|어느")
_YES_NO_ENDINGS = ("나요?", "가요?", "까요?", "니까?", "는지요?", "나요", "가요")


@dataclass(frozen=True)
class Claim:
    axis: str  # one of AXES, or "generic"
    polarity: int  # +1 / -1


# A deduction or a relief that "applies" (적용) is granted: "세액공제가 적용되나요?" is answered by "공제받을 수 있음".
_SAME_QUESTION = frozenset({frozenset({"application", "deduction"}), frozenset({"application", "relief"})})


def comparable(a: Claim, b: Claim) -> bool:
    if a.axis == b.axis or a.axis in _COMPARE_ANYWAY or b.axis in _COMPARE_ANYWAY:
        return True
    return frozenset({a.axis, b.axis}) in _SAME_QUESTION


def contradicts(a: Claim, b: Claim) -> bool:
    return comparable(a, b) and a.polarity != b.polarity


# ------------------------------------------------------------------------------------------------ reading a claim
def _sentences(tokens: tuple[Morpheme, ...]) -> list[list[Morpheme]]:
    """Split at sentence-final endings (EF, also the nominal 임/함/음 of 개조식 answers) and final punctuation."""
    out: list[list[Morpheme]] = [[]]
    for index, token in enumerate(tokens):
        out[-1].append(token)
        following = tokens[index + 1] if index + 1 < len(tokens) else None
        if token[1] == "EF" and not (following and following[1] == "SF") or token[1] == "SF" and token[0] != ",":
            out.append([])
    return [s for s in out if s]


def _after_contrast(sentence: list[Morpheme]) -> list[Morpheme]:
    """'A가 아니라 B' -> B."""
    for index in range(len(sentence) - 2, -1, -1):
        if sentence[index] == ("아니", "VCN") and sentence[index + 1] in (("라", "EC"), ("고", "EC")):
            return sentence[index + 2 :]
    return sentence


def _clauses(sentence: list[Morpheme]) -> list[list[Morpheme]]:
    clauses: list[list[Morpheme]] = [[]]
    for index, (form, tag) in enumerate(sentence):
        clauses[-1].append((form, tag))
        previous = sentence[index - 1] if index else ("", "")
        ends_clause = (tag == "EC" and form in _CLAUSE_BREAKS and previous[1] in _PREDICATE_TAGS) or (
            tag == "JC" and form == "이나" and previous == ("것", "NNB")
        )
        if ends_clause:
            clauses.append([])
    return [c for c in clauses if c]


def _predicate(clause: list[Morpheme]) -> list[Morpheme]:
    """The words after the last boundary of the predicate: a topic/subject particle (not after 것: '…없는 것은
    아닙니다' stays whole), a condition ('…경우', '…때', '…시', '…면', '…더라도', '…므로') or a source ('…에 따른')."""
    for index in range(len(clause) - 1, 0, -1):
        form, tag = clause[index]
        subject = tag in ("JX", "JKS") and form in ("은", "는", "이", "가", "도") and clause[index - 1] != ("것", "NNB")
        condition = (tag in ("NNG", "NNB") and form in _CONDITION_NOUNS) or (tag == "EC" and form in _CONDITION_ENDINGS)
        according = tag == "VV" and form in _ACCORDING_VERBS and clause[index - 1][1] == "JKB"
        if subject or condition or according:
            return clause[index + 1 :]
    return clause


def _clause_claim(clause: list[Morpheme], *, generic_positive: bool) -> Claim | None:
    words = _predicate(clause)
    if any(tag == "EP" and form in ("었", "았", "였", "ᆻ") for form, tag in words):
        return None  # '…손금불산입 하였으나': background, not the conclusion
    negations = 0
    best: str | None = None
    for index, (form, tag) in enumerate(words):
        following = words[index + 1] if index + 1 < len(words) else ("", "")
        if (form, tag) in NEGATORS:
            negations += 1
            continue
        if form == "수" and tag == "NNB" and following in (("있", "VA"), ("없", "VA")):
            best = best if best is not None and AXES.index(best) < AXES.index("modal") else "modal"
            continue
        if tag not in ("NNG", "NNP", "XR") or form not in KEYWORDS or not _is_head(following):
            continue
        axis = KEYWORDS[form]
        previous = words[index - 1] if index else ("", "")
        if form in NEGATIVE_KEYWORDS:
            negations += 1
        if previous[0] in _NEGATIVE_PREFIXES and previous[1] in ("XPN", "NNG"):
            negations += 1
        if best is None or AXES.index(axis) < AXES.index(best):
            best = axis
    polarity = -1 if negations % 2 else 1
    if best is not None:
        return Claim(best, polarity)
    if negations or generic_positive:
        return Claim("generic", polarity)
    return None


def _is_head(following: Morpheme) -> bool:
    """Whether a keyword followed by `following` is the head of its phrase: not the start of a compound noun
    (과세표준, 공제금; but 과세 대상 and 적용 가능 are), not a modifier ('인정에 따른', '공제의'), and not followed by a
    keyword that heads the phrase instead ('불산입 적용')."""
    form, tag = following
    if tag in ("JKB", "JKG"):
        return False
    if tag == "NNG":
        return form in KEYWORDS and KEYWORDS[form] in ("weak", "modal")
    return True


def sentence_claim(sentence: list[Morpheme], *, generic_positive: bool = False) -> Claim | None:
    """The conclusion of one sentence, or None (no polar predicate, or clauses that disagree)."""
    clauses = _clauses(_after_contrast(sentence))
    claims = [_clause_claim(c, generic_positive=False) for c in clauses[:-1]]
    last = _clause_claim(clauses[-1], generic_positive=generic_positive) if clauses else None
    if last is None:
        return None
    if any(c is not None and contradicts(c, last) for c in claims):
        return None  # '면세되는 것이나 … 과세되는 것임': it depends
    return last


def text_conclusion(text: str) -> Claim | None:
    """The conclusion of an official answer: its first polar sentence, unless a later one says the opposite."""
    claims = [c for s in _sentences(morphemes(_plain(text))) if (c := sentence_claim(s)) is not None]
    if not claims:
        return None
    if any(contradicts(claims[0], other) for other in claims[1:]):
        return None
    return claims[0]


def _plain(text: str) -> str:
    """Without parenthesised asides ('(가산세와 이자 상당 가산액 제외)'), which are never the conclusion."""
    return " ".join(_PARENTHESES_RE.sub(" ", text).split())


def is_yes_no_question(question: str) -> bool:
    text = question.strip()
    return text.endswith(_YES_NO_ENDINGS) and not _WH_WORDS.search(text.rsplit(",", 1)[-1])


def question_claim(question: str) -> Claim | None:
    """What a yes/no question asks (its 네 means this claim holds); None for other questions."""
    if not is_yes_no_question(question):
        return None
    sentences = _sentences(morphemes(_plain(question)))
    return sentence_claim(sentences[-1], generic_positive=True) if sentences else None


def answer_conclusion(question: str, answer: str, source: Claim) -> Claim | None:
    """The answer's conclusion on the source's axis: its 네/아니요 lead, else its first comparable sentence."""
    lead = _LEAD_RE.match(answer)
    if lead is not None:
        asked = question_claim(question)
        if asked is not None and comparable(asked, source):
            sign = 1 if lead.group("lead") in _POSITIVE_LEADS else -1
            return Claim(asked.axis, asked.polarity * sign)
        answer = answer[lead.end() :].lstrip(" .,!")
    for sentence in _sentences(morphemes(_plain(answer)[:_ANSWER_HEAD_CHARS]))[:3]:
        claim = sentence_claim(sentence)
        if claim is not None and comparable(claim, source):
            return claim
    return None


def yes_no_lead(question: str, official_answer: str) -> str:
    """'네. ' / '아니요. ' when the official answer decides what the question asks, else ''."""
    asked = question_claim(question)
    source = text_conclusion(official_answer) if asked is not None else None
    if asked is None or source is None or not comparable(asked, source):
        return ""
    return "네. " if asked.polarity == source.polarity else "아니요. "


# ------------------------------------------------------------------------------------------------------ the rule
_CHECKED_KINDS = ("interpretation", "ruling")


def official_answer(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> str | None:
    """The 회신/답변요지 of the interpretation or ruling the pair was made from."""
    doc = documents.get(pair.doc_id)
    if doc is not None and doc.answer:
        return doc.answer
    chunk = chunks.get(pair.chunk_id)
    return chunk.answer if chunk is not None and chunk.answer else None


def check_conclusion(pair: QAPair, documents: dict[str, Document], chunks: dict[str, Chunk]) -> list[Finding]:
    if pair.kind not in _CHECKED_KINDS:
        return []
    official = official_answer(pair, documents, chunks)
    source = text_conclusion(official) if official else None
    if source is None:
        return []
    stated = answer_conclusion(pair.question, pair.answer, source)
    if stated is None or not contradicts(stated, source):
        return []
    said = "positive" if stated.polarity > 0 else "negative"
    official_said = "positive" if source.polarity > 0 else "negative"
    quoted = " ".join((official or "").split())[-80:]
    return [
        Finding(
            "conclusion_contradicts_source",
            f"the answer's conclusion is {said} ({stated.axis}) but the source's 회신 is {official_said}"
            f" ({source.axis}): …{quoted}",
        )
    ]
