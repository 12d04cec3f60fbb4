"""Small, pure Korean text helpers used by the offline teacher and the reply checks.

Hangul syllables are composed as 0xAC00 + (initial * 21 + medial) * 28 + final, so the final consonant (받침) of a
syllable is `(code - 0xAC00) % 28`. That is enough to pick particles (은/는, 이/가, 을/를) and to turn the plain
statute style ("…한다.", "…아니한다.") and the casebook's nominal style ("…임", "…않음", "…해당함") into the polite
style of an answer ("…합니다", "…않습니다", "…해당합니다").
"""

from __future__ import annotations

import re

from slm_datagen.hangul import SYLLABLE_FIRST as _HANGUL_FIRST
from slm_datagen.hangul import is_hangul_syllable as is_hangul

FINAL_NONE, FINAL_N, FINAL_L, FINAL_M, FINAL_B = 0, 4, 8, 16, 17


def final_consonant(ch: str) -> int | None:
    """The 받침 index of a Hangul syllable (0 = none), None for anything else."""
    if not is_hangul(ch):
        return None
    return (ord(ch) - _HANGUL_FIRST) % 28


def with_final(ch: str, final: int) -> str:
    """The same syllable with another 받침 (한 -> 합 with FINAL_B)."""
    base = ord(ch) - (ord(ch) - _HANGUL_FIRST) % 28
    return chr(base + final)


def _last_syllable(word: str) -> str | None:
    word = word.rstrip()
    while word.endswith(")") and "(" in word:  # '제12조(비과세소득)' takes the particle of '제12조'
        word = word[: word.rindex("(")].rstrip()
    for ch in reversed(word.rstrip(" ”’\"'」』")):
        if is_hangul(ch):
            return ch
        if ch.isdigit():
            # 1(일) 3(삼) 6(육) 7(칠) 8(팔) 0(영/십) end in a consonant; 2 4 5 9 do not.
            return "일" if ch in "136780" else "이"
        if ch.isalpha():
            return None
    return None


def particle(word: str, with_final_form: str, without_final_form: str) -> str:
    """Pick the particle form that fits `word`: particle('소득', '은', '는') -> '은'. ㄹ-final words take 로 for 으로."""
    last = _last_syllable(word)
    if last is None:
        return f"{with_final_form}({without_final_form})" if with_final_form != "으로" else "(으)로"
    final = final_consonant(last)
    if with_final_form == "으로" and final == FINAL_L:
        return without_final_form
    return with_final_form if final else without_final_form


def topic(word: str) -> str:
    return word + particle(word, "은", "는")


def subject(word: str) -> str:
    return word + particle(word, "이", "가")


def obj(word: str) -> str:
    return word + particle(word, "을", "를")


_TRAILING_PUNCT = ".。 \t"


def polite_from_plain(sentence: str) -> str:
    """Statute/plain style -> polite: '과세하지 아니한다.' -> '과세하지 아니합니다.'; '…이다.' -> '…입니다.'.

    Rules on the syllable before the final 다: 는다 -> 습니다 (받는다 -> 받습니다), a ㄴ-final syllable swaps ㄴ for ㅂ
    (한다 -> 합니다, 본다 -> 봅니다), an open syllable takes ㅂ (이다 -> 입니다, 아니다 -> 아닙니다), any other
    받침 takes 습니다 (있다 -> 있습니다, 없다 -> 없습니다, 하였다 -> 하였습니다). Text that does not end in 다 is returned
    unchanged (with its full stop).
    """
    body = sentence.rstrip(_TRAILING_PUNCT)
    if len(body) < 2 or not body.endswith("다"):
        return sentence
    stem, before = body[:-2], body[-2]
    final = final_consonant(before)
    if final is None:
        return sentence
    if before == "는" and stem and is_hangul(stem[-1]):
        out = stem + "습니다"
    elif final == FINAL_N:
        out = stem + with_final(before, FINAL_B) + "니다"
    elif final == FINAL_NONE:
        out = stem + with_final(before, FINAL_B) + "니다"
    else:
        out = stem + before + "습니다"
    return out + "."


def polite_from_nominal(sentence: str) -> str:
    """The casebook's nominal style -> polite: '…에 해당하지 않음' -> '…에 해당하지 않습니다.'.

    음 -> 습니다 (않음, 없음, 있음), 임 -> 입니다, any other ㅁ-final syllable swaps ㅁ for ㅂ (함 -> 합니다, 봄 -> 봅니다,
    됨 -> 됩니다). Sentences already in the polite or plain style are converted by `polite_from_plain`; noun endings
    that close a summary ('…적용 가능', '…과세대상에 해당') take 합니다; a trailing parenthesis stays after the verb.
    """
    text = sentence.strip()
    tail = ""
    m = re.search(r"\s*(\([^()]*\))\s*\.?$", text)
    if m and m.start() > 0:
        tail, text = m.group(1), text[: m.start()]
    body = text.rstrip(_TRAILING_PUNCT)
    if not body:
        return sentence
    if body.endswith(("니다", "세요", "니까")):
        out = body
    elif body.endswith("다"):
        out = polite_from_plain(body + ".").rstrip(".")
    else:
        last = body[-1]
        final = final_consonant(last)
        if last == "음" and len(body) > 1 and is_hangul(body[-2]):
            out = body[:-1] + "습니다"
        elif last == "임":
            out = body[:-1] + "입니다"
        elif final == FINAL_M:
            out = body[:-1] + with_final(last, FINAL_B) + "니다"
        elif body.endswith(("가능", "불가", "해당", "계산", "산정", "판단", "합산")):
            out = body + "합니다"
        elif body.endswith(("포함", "제외", "적용", "과세", "부과", "공제", "환급")):
            # '…주택 수에서 제외' with an object ('…주택을') is active; '…과세대상에 포함' is passive.
            active = re.search(r"[을를]\s", body[-40:]) is not None
            out = body + ("합니다" if active else "됩니다")
        elif final is not None:
            out = body + particle(body, "입니다", "입니다")
        else:
            out = body
    if tail:
        return f"{out}{tail}."
    return out + "."


# ------------------------------------------------------------------------------------------ issue -> question
# A casebook 쟁점 is a noun phrase ("…의 과세 여부", "…기산일"); these rules turn it into the question a taxpayer
# would ask. Verbal nouns that close a "… 여부" issue, with how the question ends and which particle the phrase
# before them takes ("subject": 이/가, "object": 을/를, None: nothing).
_YESNO_VERBS: list[tuple[str, str, str | None]] = [
    ("손금산입", "손금에 산입할 수 있나요?", "object"),
    ("손금 산입", "손금에 산입할 수 있나요?", "object"),
    ("익금불산입", "익금에 산입하지 않나요?", "subject_topic"),
    ("적용가능", "적용할 수 있나요?", "object"),
    ("중복 적용", "중복하여 적용할 수 있나요?", "object"),
    ("가능", "가능한가요?", "subject"),
    ("반영", "반영하나요?", "object"),
    ("배제", "배제되나요?", "subject"),
    ("적용", "적용되나요?", "subject"),
    ("과세", "과세되나요?", "subject"),
    ("중단", "중단되나요?", "subject"),
    ("성립", "성립하나요?", "subject"),
    ("해당", "해당하나요?", None),
    ("포함", "포함되나요?", "subject"),
    ("산입", "산입되나요?", "subject"),
    ("공제", "공제받을 수 있나요?", "object"),
    ("감면", "감면받을 수 있나요?", "object"),
    ("면제", "면제되나요?", "subject"),
    ("인정", "인정되나요?", "subject"),
    ("제외", "제외되나요?", "subject"),
    ("대상", "대상인가요?", None),
    ("환급", "환급받을 수 있나요?", "object"),
    ("부과", "부과되나요?", "subject"),
    ("발생", "발생하나요?", "subject"),
    ("취소", "취소되나요?", "subject"),
    ("허용", "허용되나요?", "subject"),
]
_WHEN_NOUNS = ("기산일", "시기", "시점", "귀속시기", "납부기한", "신고기한")
_WHAT_NOUNS = ("범위", "의미", "기준", "소득구분", "구분", "요건", "정의", "대상", "주체", "납세의무자", "세율")
_HOW_NOUNS = ("방법", "산정방법", "계산방법", "평가방법", "판정", "계산", "산정", "평가", "절차")


def _strip_trailing(text: str, chars: str = " .?") -> str:
    return text.rstrip(chars).strip()


def _yes_no_from_clause(clause: str) -> str | None:
    """'…할 수 있는지' -> '…할 수 있나요?', '…과세대상인지' -> '…과세대상인가요?', '…가능한지' -> '…가능한가요?'."""
    clause = _strip_trailing(clause)
    if not clause.endswith("지") or len(clause) < 2:
        return None
    before = clause[-2]
    stem = clause[:-2]
    if before == "는":
        return stem + "나요?"
    if before in ("인", "한", "운", "은", "된", "난", "린", "른", "진", "간", "던"):
        if before == "인" and stem.endswith(("가 누구", "이 누구")):
            return stem[:-4] + particle(stem[:-4], "은", "는") + " 누구인가요?"
        return stem + before + "가요?"
    if final_consonant(before) == FINAL_L:  # '…할지' -> '…할까요?'
        return stem + before + "까요?"
    return None


def _drop_genitive(noun_phrase: str) -> str:
    noun_phrase = noun_phrase.rstrip()
    return noun_phrase[:-1] if noun_phrase.endswith("의") and len(noun_phrase) > 1 else noun_phrase


def question_from_issue(issue: str) -> str:
    """Turn a 쟁점 noun phrase into a natural Korean question (pure; deterministic).

    '…징수권 소멸시효 중단 여부' -> '…징수권 소멸시효가 중단되나요?'; '…함께 할 수 있는지 여부' -> '…함께 할 수 있나요?';
    '…국세환급가산금 기산일' -> '…국세환급가산금 기산일은 언제인가요?'; '…취득가액 산정 방법' -> '…취득가액 산정 방법은
    어떻게 되나요?'. Issues already phrased as questions are kept.
    """
    text = re.sub(r"\s+", " ", issue).strip()
    text = re.sub(r"\((?:소극|적극|한정\s*적극)\)\s*$", "", text).strip()
    if text.endswith("?"):
        return text
    text = _strip_trailing(text)
    text = re.sub(r"지\s*여부\s*및\s+", "지, 그리고 ", text)
    if text.endswith("여부"):
        return _yes_no_question(_strip_trailing(text[: -len("여부")]))
    return _clause_or_noun_question(text)


def _yes_no_question(clause: str) -> str:
    """'…여부' with the 여부 removed -> a yes/no question."""
    as_clause = _yes_no_from_clause(clause)
    if as_clause:
        return as_clause
    for verb, ending, takes in _YESNO_VERBS:
        if clause.endswith(verb):
            return _yes_no_with_verb(clause, verb, ending, takes)
    return (
        f"{subject(clause)} 인정되나요?" if clause.endswith(("특례", "감면", "비과세")) else f"{clause}에 해당하나요?"
    )


def _yes_no_with_verb(clause: str, verb: str, ending: str, takes: str | None) -> str:
    """'… 과세', '… 공제', '… 포함' + 여부: the particle depends on the verb and on how the noun is written."""
    head = clause[: -len(verb)]
    spaced = head.endswith(" ")
    head = head.rstrip()
    if not head:
        return clause + " " + ending if takes is None else ending
    if not spaced and takes is not None and verb in ("공제", "감면", "환급"):
        # '매입세액공제 여부' -> '매입세액공제를 받을 수 있나요?'
        return obj(clause) + " " + ending.replace(verb, "").lstrip()
    if not spaced and takes is not None:
        # '과세여부' written without a space: keep the compound and add the particle to the whole.
        compound_head = head.rsplit(" ", 1)
        head = compound_head[0] if len(compound_head) == 2 else ""
        word = (compound_head[-1] + verb) if len(compound_head) == 2 else clause
        if verb in ("과세", "적용", "포함", "산입", "면제", "부과", "중단", "성립", "인정", "제외", "발생"):
            noun = _drop_genitive(compound_head[-1]) if len(compound_head) == 2 else ""
            if noun:
                prefix = (head + " ") if head else ""
                return prefix + subject(noun) + " " + ending
        return (head + " " if head else "") + subject(word) + " 가능한가요?"
    if takes is None:
        joiner = "에 " if verb == "해당" else " "
        return head + joiner + ending
    noun = _drop_genitive(head)
    if verb == "포함" and "의 " in head:
        # '…부동산의 상속 재산 포함 여부' -> '…부동산이 상속 재산에 포함되나요?'
        owner, _, container = head.rpartition("의 ")
        if container and container.count(" ") <= 1:
            return f"{subject(owner)} {container}에 {ending}"
    if takes == "subject":
        return subject(noun) + " " + ending
    if takes == "object":
        return obj(noun) + " " + ending
    if takes == "subject_topic":
        return topic(noun) + " " + ending
    return (
        f"{subject(clause)} 인정되나요?" if clause.endswith(("특례", "감면", "비과세")) else f"{clause}에 해당하나요?"
    )


def _clause_or_noun_question(text: str) -> str:
    """An issue without 여부: a clause ('…할 수 있는지') or a noun phrase ending in 기산일 / 방법 / 범위 …"""
    as_clause = _yes_no_from_clause(text)
    if as_clause:
        return as_clause
    last_word = text.rsplit(" ", 1)[-1]
    if any(last_word.endswith(n) for n in _WHEN_NOUNS):
        return f"{topic(text)} 언제인가요?"
    if last_word.endswith("판정"):
        head = _drop_genitive(text[: -len("판정")].rstrip())
        return f"{topic(head)} 어떻게 판정하나요?"
    if any(last_word.endswith(n) for n in _HOW_NOUNS):
        return f"{topic(text)} 어떻게 되나요?"
    if any(last_word.endswith(n) for n in _WHAT_NOUNS):
        if (
            " " in text
            and last_word in ("의미", "범위", "정의")
            and not text[: -len(last_word)].rstrip().endswith("의")
        ):
            head = text[: -len(last_word)].rstrip()
            text = f"{head}의 {last_word}"
        return f"{topic(text)} 무엇인가요?"
    return f"{topic(text)} 무엇인가요?"


def split_sentences(text: str) -> list[str]:
    """Split after '다.' only outside parentheses, so '(…포함한다. 이하 …)' stays inside its sentence."""
    out: list[str] = []
    depth, start = 0, 0
    for index, ch in enumerate(text):
        if ch in "(（「":
            depth += 1
        elif ch in ")）」":
            depth = max(0, depth - 1)
        elif ch == "." and depth == 0 and index > 0 and text[index - 1] == "다":
            out.append(text[start : index + 1].strip())
            start = index + 1
    rest = text[start:].strip()
    if rest:
        out.append(rest)
    return [s for s in out if s]
