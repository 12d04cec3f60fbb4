"""Per-pair content rules: empty, too short/long, not Korean, refusals and hedges, truncation, echoing the question.

Each function looks at one QAPair and returns Findings (see rules.py); none of them needs the rest of the dataset.
"""

from __future__ import annotations

import re

from slm_datagen.dataset.korean import char_ngrams, final_syllable_has_mieum, match_key
from slm_datagen.dataset.rules import Finding
from slm_datagen.hangul import hangul_share, is_hangul
from slm_forest.config import BuildConfig
from slm_forest.records import QAPair

# Phrases that mean the teacher declined or hedged instead of answering. Latin ones match case-insensitively.
REFUSAL_PHRASES: tuple[str, ...] = (
    "죄송하지만",
    "죄송합니다만",
    "답변드릴 수 없",
    "답변을 드릴 수 없",
    "답변해 드릴 수 없",
    "답변할 수 없",
    "답변하기 어렵",
    "답변을 드리기 어렵",
    "확답을 드리기 어렵",
    "도와드릴 수 없",
    "AI 언어 모델",
    "AI 언어모델",
    "인공지능 언어 모델",
    "언어 모델로서",
    "AI로서",
    "AI 모델로서",
    "법률 자문을 제공할 수 없",
    "I cannot",
    "I can't",
    "I can not",
    "I'm sorry",
    "I am sorry",
    "I'm unable",
    "I am unable",
    "As an AI",
    "as a language model",
)
_REFUSAL_RE = re.compile("|".join(re.escape(p).replace(r"\ ", r"\s*") for p in REFUSAL_PHRASES), re.IGNORECASE)

# How a finished Korean sentence ends: -다/-요/-까/-죠/-오, a nominal -ㅁ ending (음, 함, 임, 됨) or 개조식 "것".
_FINAL_SYLLABLES = set("다요까죠오것")
# 개조식 answers (the NTS casebook's style) also end in a predicate noun: "…적용 가능", "…과세대상에 해당", "…에서 제외".
_NOMINAL_PREDICATES = (
    "가능",
    "불가",
    "해당",
    "제외",
    "계산",
    "적용",
    "포함",
    "대상",
    "과세",
    "공제",
    "부과",
    "인정",
    "필요",
    "산입",
    "합산",
    "차감",
    "가산",
    "면제",
    "환급",
    "없음",
)
_TERMINAL_PUNCT = set(".!?。…)]」』》〉】\"'”’")
# Characters and words after which a text cannot have ended.
_DANGLING_ENDINGS = (
    ",",
    "·",
    "ㆍ",
    "(",
    "[",
    "「",
    "『",
    ":",
    ";",
    "-",
    "및",
    "또는",
    "그리고",
    "하며",
    "하고",
    "이며",
)
_BRACKETS = (("(", ")"), ("[", "]"), ("「", "」"), ("『", "』"), ("“", "”"), ("《", "》"), ("【", "】"))
# A last line of these shapes need not be a sentence: list items, table rows, headings ...
_STRUCTURED_LINE_RE = re.compile(r"^\s*(?:[-*•▪◦·]|\d+[.)]|[①-⑳]|[가나다라마바사아자차카타파하][.)]|\||#)")
# ... and short labelled values or formulas: "산출세액: 6억 2,000만원", "19.5억 × 40% - 1.6억 = 6.2억".
_LABEL_TAIL_RE = re.compile(r"(?:^[^:]{1,20}:|[=→])([^:=→]{1,30})$")
_TRUNCATING_FINISH = {"length", "max_tokens"}


def check_lengths(pair: QAPair, cfg: BuildConfig) -> list[Finding]:
    question, answer = pair.question.strip(), pair.answer.strip()
    if not question or not answer:
        which = "question" if not question else "answer"
        return [Finding("empty", f"the {which} is empty")]
    if len(answer) < cfg.min_answer_chars:
        return [
            Finding(
                "too_short", f"answer has {len(answer)} characters, build.min_answer_chars is {cfg.min_answer_chars}"
            )
        ]
    if len(answer) > cfg.max_answer_chars:
        return [
            Finding(
                "too_long", f"answer has {len(answer)} characters, build.max_answer_chars is {cfg.max_answer_chars}"
            )
        ]
    return []


def check_korean(pair: QAPair, cfg: BuildConfig) -> list[Finding]:
    findings = []
    for field, text in (("question", pair.question), ("answer", pair.answer)):
        share = hangul_share(text)
        if share < cfg.min_hangul_share:
            findings.append(
                Finding(
                    "not_korean", f"{field} Hangul share {share:.2f} < build.min_hangul_share {cfg.min_hangul_share}"
                )
            )
    return findings[:1]


def check_refusal(pair: QAPair) -> list[Finding]:
    match = _REFUSAL_RE.search(pair.answer)
    if match:
        return [Finding("refusal", f"answer contains {match.group(0)!r}")]
    return []


def truncation_reason(answer: str) -> str | None:
    """Why `answer` looks cut off, or None when it ends like a finished text."""
    text = answer.strip()
    if text.count("```") % 2:
        return "an unclosed ``` code fence"
    if text.count("**") % 2:
        return "an unclosed ** emphasis"
    for opener, closer in _BRACKETS:
        if text.count(opener) > text.count(closer):
            return f"unbalanced {opener!r}: {text.count(opener)} opened, {text.count(closer)} closed"
    stripped = text.rstrip("*_~` \t")
    if not stripped:
        return "nothing but markup"
    for ending in _DANGLING_ENDINGS:
        if stripped.endswith(ending):
            return f"ends with {ending!r}"
    last_line = stripped.splitlines()[-1]
    if _STRUCTURED_LINE_RE.search(last_line) or _LABEL_TAIL_RE.search(last_line.strip()):
        return None  # a list item, table row, heading, label or formula may end with a noun or a number
    last = stripped[-1]
    if last in _TERMINAL_PUNCT:
        return None
    if is_hangul(last) and (last in _FINAL_SYLLABLES or final_syllable_has_mieum(last)):
        return None
    if stripped.endswith(_NOMINAL_PREDICATES):
        return None
    return f"ends mid-sentence ({stripped[-15:]!r})"


def check_truncation(pair: QAPair) -> list[Finding]:
    for key in ("finish_reason", "stop_reason"):
        value = pair.meta.get(key)
        if value in _TRUNCATING_FINISH:
            return [Finding("truncated", f"the teacher stopped at its token limit ({key}={value})")]
    reason = truncation_reason(pair.answer)
    return [Finding("truncated", f"answer {reason}")] if reason else []


def check_repeats_question(pair: QAPair, min_novel_share: float = 0.15) -> list[Finding]:
    """The answer echoes the question: it is contained in it, or under `min_novel_share` of its 3-grams are new."""
    q_key, a_key = match_key(pair.question), match_key(pair.answer)
    if not a_key or not q_key:
        return []
    if a_key in q_key:
        return [Finding("repeats_question", "the answer is contained in the question")]
    a_grams = char_ngrams(a_key, 3)
    novel = len(a_grams - char_ngrams(q_key, 3)) / len(a_grams)
    if novel < min_novel_share:
        return [
            Finding("repeats_question", f"only {novel:.0%} of the answer's character 3-grams are not in the question")
        ]
    return []


def check_content(pair: QAPair, cfg: BuildConfig) -> list[Finding]:
    """All content rules, cheapest first; an empty or mis-sized answer is not examined further."""
    findings = check_lengths(pair, cfg)
    if findings:
        return findings
    return check_korean(pair, cfg) + check_refusal(pair) + check_truncation(pair) + check_repeats_question(pair)
