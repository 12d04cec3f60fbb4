"""How the offline teacher asks the layperson variant of a question: the person concerned telling their own
situation in plain words, then asking, rather than the expert question with a fixed sentence in front (which the
paraphrase rule, dataset/paraphrase.py, rightly rejects as the same question).

The situation is drawn from the source: a ruling's 분야 (법인, 상증, 양도 …) picks who is asking and what happened to
them, its 쟁점 is what they ask, with legal words said plainly (거주자 → 국내에 사는 사람, 피상속인 → 돌아가신 분 …);
a statute article's own items give the concrete case ('공익신탁의 이익을 받았는데 …'). The templates are chosen
with a hash of the chunk id, so the same chunk always gets the same wording. The question's last sentence keeps
what the expert question asks (its predicate), so the 네/아니요 lead of the answer means the same for both.
"""

from __future__ import annotations

import hashlib
import re

from slm_datagen.distill.korean import particle
from slm_forest.records import Chunk

# Who asks and what happened to them, per 분야 of the casebook (field_of_law); "" for a source without one.
_SITUATIONS: dict[str, tuple[str, ...]] = {
    "법인": (
        "작은 제조 회사를 운영하는 대표인데, 결산을 앞두고 회계 담당 직원과 세금 처리를 두고 의견이 갈렸습니다.",
        "가족끼리 세운 회사의 경리를 맡고 있는데, 올해 법인세 신고 준비를 하다가 막히는 부분이 생겼습니다.",
    ),
    "상증": (
        "부모님께 재산을 물려받는 문제로 형제들과 상의하고 있는데, 세금이 어떻게 되는지 서로 말이 다릅니다.",
        "가족 사이에 재산을 주고받을 일이 생겨 미리 세금을 알아보는 중입니다.",
    ),
    "부가": (
        "동네에서 작은 가게를 하는 개인사업자인데, 이번 부가세 신고 때 처리 방법을 몰라 고민입니다.",
        "혼자 쇼핑몰을 운영하는 사업자라 세금계산서와 부가세를 직접 챙기고 있습니다.",
    ),
    "소득": (
        "회사에 다니면서 부업으로 돈을 조금 버는데, 5월 종합소득세 신고를 앞두고 헷갈리는 게 있습니다.",
        "은퇴 후 연금과 이자로 생활하고 있는데, 제 소득에 세금이 어떻게 붙는지 궁금해졌습니다.",
    ),
    "양도": (
        "살던 집을 팔고 이사하려고 부동산에 내놓았는데, 팔고 나서 낼 세금이 걱정입니다.",
        "오래 갖고 있던 땅과 집을 정리하려는데, 양도세가 얼마나 나올지 미리 알아보고 있습니다.",
    ),
    "국기": (
        "세무서에서 세금 고지서와 안내문을 받았는데, 제가 어떻게 대응해야 할지 잘 모르겠습니다.",
        "지난번 세금 신고에서 실수를 발견해서 바로잡으려고 하는데, 절차를 처음 겪어 봅니다.",
    ),
    "종부": (
        "집을 두 채 가지고 있는데, 연말에 나오는 종합부동산세 고지서가 걱정됩니다.",
        "주택 몇 채를 임대하고 있어서 올해 종부세가 얼마나 나올지 걱정하고 있습니다.",
    ),
    "국조": (
        "해외 회사와 거래하거나 외국에서 번 돈이 있어서, 한국 세금은 어떻게 되는지 궁금합니다.",
        "외국에 있는 가족 회사와 돈이 오가는데, 국내에서 세금을 어떻게 처리해야 하는지 모르겠습니다.",
    ),
    "": ("세금 신고를 직접 해 보려는데, 이 부분이 어떻게 되는지 확실히 알고 싶습니다.",),
}
_BRIDGES = ("제 경우에 비추어 여쭤보면,", "그래서 여쭤보는데,", "쉽게 말해,")

# Legal words in the words of the person concerned (only in the subject part: the predicate is kept as asked).
_PLAIN_TERMS: tuple[tuple[str, str], ...] = (
    ("비거주자", "외국에 사는 사람"),
    ("거주자", "국내에 사는 사람"),
    ("내국법인", "국내 회사"),
    ("피상속인", "돌아가신 분"),
    ("상속인", "상속받는 가족"),
    ("수증자", "증여받는 사람"),
    ("증여자", "증여하는 사람"),
    ("납세의무자", "세금을 내야 하는 사람"),
    ("당해", "그"),
    ("동일한", "같은"),
    ("동일", "같은"),
    ("소재하는", "있는"),
    ("귀속되는", "돌아가는"),
)


def _pick(options: tuple[str, ...], chunk: Chunk, purpose: str) -> str:
    digest = hashlib.sha256(f"{chunk.id}\x1f{purpose}".encode()).digest()
    return options[int.from_bytes(digest[:4], "big") % len(options)]


# A particle right after a replaced word must follow the new word's last syllable (회사가, not 회사이).
_PARTICLE_PAIRS = {
    "이": ("이", "가"),
    "가": ("이", "가"),
    "은": ("은", "는"),
    "는": ("은", "는"),
    "을": ("을", "를"),
    "를": ("을", "를"),
    "과": ("과", "와"),
    "와": ("과", "와"),
    "으로": ("으로", "로"),
    "로": ("으로", "로"),
}
_PARTICLE_ALTERNATION = "|".join(sorted(_PARTICLE_PAIRS, key=len, reverse=True))


def plain_terms(text: str) -> str:
    for legal, plain in _PLAIN_TERMS:

        def swap(match: re.Match[str], plain: str = plain) -> str:
            after = match.group(1)
            return plain + (particle(plain, *_PARTICLE_PAIRS[after]) if after else "")

        text = re.sub(rf"(?<![가-힣]){legal}({_PARTICLE_ALTERNATION})?", swap, text)
    return text


def lay_ruling_question(chunk: Chunk, expert_question: str) -> str:
    """'{who I am and what happened}. {bridge} {the expert question in plain words}'."""
    field = str(chunk.meta.get("field_of_law") or "")
    situation = _pick(_SITUATIONS.get(field, _SITUATIONS[""]), chunk, "situation")
    bridge = _pick(_BRIDGES, chunk, "bridge")
    return f"{situation} {bridge} {plain_terms(expert_question)}"


def lay_statute_question(citation: str, title: str, span: str, example: str | None) -> str:
    """A concrete case from the article's own items when it has one, else what the rule means for a taxpayer."""
    name = title if title and title != citation else "이 조문"
    if example:
        return (
            f"제 상황이 '{example}'{particle(example, '과', '와')} 비슷합니다. {name}에 관한 {citation}{span} "
            "규정에 비추어 보면, 저 같은 경우는 어떻게 처리되나요?"
        )
    return (
        f"세금 신고를 혼자 준비하다가 {citation}{span}({name}) 규정을 보게 됐는데, 말이 어려워서 이해가 안 됩니다. "
        "평범한 납세자 입장에서는 무엇을 챙기면 되나요?"
    )
