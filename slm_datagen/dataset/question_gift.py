"""Who gave a gift to whom, read from the sentence (상속세 및 증여세법 제53조 is written from the donee's side).

"아버지로부터 받았다" → the father is the donor; "아들이 아버지에게 증여" → the son gives, the father receives (직계비속
→ 직계존속); "손자에게 증여하려 한다" → the speaker is the grandparent (세대생략). A person named with 로부터/에게서/한테서
(or as the subject of 주다/증여하다) is the donor, one named with 에게/한테 (or as the subject of 받다) the donee; an
unnamed side is the speaker. The relation is that of the two words to each other, so "성인 자녀가 아버지로부터" is a
parent's gift to his child.
"""

from __future__ import annotations

import re

from slm_datagen.taxlaw.inputs import DonorRelation

# Person words by what they are to the other party: P parent, G grandparent, C child, K grandchild, S spouse,
# R other relative (6촌 혈족, 4촌 인척), U unrelated.
_PEOPLE: dict[str, str] = {
    "외할아버지": "G",
    "외할머니": "G",
    "할아버지": "G",
    "할머니": "G",
    "외조부모": "G",
    "조부모": "G",
    "조부": "G",
    "조모": "G",
    "아버지": "P",
    "어머니": "P",
    "부모님": "P",
    "부모": "P",
    "부친": "P",
    "모친": "P",
    "아빠": "P",
    "엄마": "P",
    "손자녀": "K",
    "손자": "K",
    "손녀": "K",
    "손주": "K",
    "자녀": "C",
    "아들": "C",
    "딸": "C",
    "자식": "C",
    "남편": "S",
    "아내": "S",
    "배우자": "S",
    "부인": "S",
    "외삼촌": "R",
    # 3촌 blood relatives whose words end in 아버지/어머니: other relatives, not parents (longest word matches first)
    "큰아버지": "R",
    "작은아버지": "R",
    "큰어머니": "R",
    "작은어머니": "R",
    "외숙모": "R",
    "숙부": "R",
    "숙모": "R",
    "백부": "R",
    "이모부": "R",
    "고모부": "R",
    "사촌": "R",
    "삼촌": "R",
    "이모": "R",
    "고모": "R",
    "조카": "R",
    "형제": "R",
    "자매": "R",
    "동생": "R",
    "누나": "R",
    "언니": "R",
    "오빠": "R",
    "사위": "R",
    "며느리": "R",
    "장인": "R",
    "장모": "R",
    "시아버지": "R",
    "시어머니": "R",
    "친척": "R",
    "친구": "U",
    "지인": "U",
    "타인": "U",
}
_WORD = "|".join(sorted(_PEOPLE, key=len, reverse=True))
_DONOR = re.compile(rf"({_WORD})(?:님)?\s*(?:으로부터|로부터|에게서|한테서|께(?=[^.?!]{{0,12}}받))")
_DONEE = re.compile(rf"({_WORD})(?:님)?\s*(?:에게(?!서)|한테(?!서)|께(?!서)(?![^.?!]{{0,12}}받))")
_SUBJECT = re.compile(rf"({_WORD})(?:님)?\s*(?:께서|이|가|는|은)(?![가-힣])")
_DIED = re.compile(r"\s*(?:이미\s*|먼저\s*)?(?:돌아가|사망|별세)")
_GIVES = re.compile(r"증여(?:하|했|할|한)|주(?:었|셨|셔|려|고|면)|줬|물려주|넘겨주")
# Donor category -> donee category -> relation (the donee "SELF" is the speaker).
_RELATIONS: dict[tuple[str, str], DonorRelation] = {
    ("P", "C"): DonorRelation.LINEAL_ASCENDANT,
    ("P", "SELF"): DonorRelation.LINEAL_ASCENDANT,
    ("P", "K"): DonorRelation.GRANDPARENT,
    ("G", "K"): DonorRelation.GRANDPARENT,
    ("G", "C"): DonorRelation.GRANDPARENT,
    ("G", "SELF"): DonorRelation.GRANDPARENT,
    ("SELF", "C"): DonorRelation.LINEAL_ASCENDANT,
    ("SELF", "K"): DonorRelation.GRANDPARENT,
    ("C", "P"): DonorRelation.LINEAL_DESCENDANT,
    ("C", "SELF"): DonorRelation.LINEAL_DESCENDANT,
    ("K", "G"): DonorRelation.LINEAL_DESCENDANT,
    ("K", "SELF"): DonorRelation.LINEAL_DESCENDANT,
    ("SELF", "P"): DonorRelation.LINEAL_DESCENDANT,
    ("SELF", "G"): DonorRelation.LINEAL_DESCENDANT,
    ("P", "P"): DonorRelation.SPOUSE,  # "어머니가 아버지에게": the parents are each other's spouses
}


def _category(word: str | None) -> str:
    return "SELF" if word is None else _PEOPLE[word]


def gift_parties(text: str) -> tuple[str | None, str | None]:
    """(donor word, donee word); None = the speaker (or not said)."""
    donors = {m.group(1) for m in _DONOR.finditer(text)}
    donees = {m.group(1) for m in _DONEE.finditer(text)}
    subjects = [(m.group(1), m.end()) for m in _SUBJECT.finditer(text)]
    donor = next(iter(donors)) if len(donors) == 1 else None
    donee = next(iter(donees)) if len(donees) == 1 else None
    if len(donors) > 1 or len(donees) > 1:
        return "?", "?"
    for subject, at in subjects:
        if subject in (donor, donee) or _DIED.match(text, at):
            continue  # "아버지가 돌아가신 뒤 할아버지로부터": the subject of another verb
        if donor is None and (donee is not None or _GIVES.search(text)):
            donor = subject
        elif donee is None and donor is not None:
            donee = subject
    return donor, donee


def relation_of(donor: str | None, donee: str | None) -> DonorRelation | None:
    """The donor's relation to the donee, or None when the words do not settle it."""
    if donor == "?" or (donor is None and donee is None):
        return None
    cats = (_category(donor), _category(donee))
    if "S" in cats:
        return DonorRelation.SPOUSE if set(cats) <= {"S", "SELF", "P"} else None
    if "U" in cats:
        return DonorRelation.UNRELATED
    if "R" in cats:
        return DonorRelation.OTHER_RELATIVE
    return _RELATIONS.get(cats)


def donor_relation_in(text: str) -> DonorRelation | None:
    donor, donee = gift_parties(text)
    return relation_of(donor, donee)
