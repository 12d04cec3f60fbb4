"""Masking personal data in court decisions, rulings and interpretations (statutes hold none and are never touched).

What is masked, and the placeholder it becomes
- 주민등록번호 `800101-1234567`, also half-masked forms `800101-1******` (the birth date is still personal), and
  unhyphenated `8001011234567` when the 13 digits start with a valid date (YYMMDD) and a gender digit 1–4 and stand
  alone (not part of a longer number, not an amount in 원) → [주민등록번호]
- phone numbers: mobile `010-1234-5678`/`01012345678`, area codes `02-123-4567`, `(031) 123-4567`, international
  `+82-10-1234-5678` / `+82 (0)2 123 4567` → [전화번호]
- 사업자등록번호 `123-45-67890` → [사업자등록번호]
- bank accounts: 3–4 hyphenated digit groups with 10–16 digits in all, or digits right after 계좌/계좌번호 → [계좌번호]
- e-mail addresses → [이메일]
- personal names, only where the text marks them unmistakably → OOO (the customary Korean mask):
  a party header `【원고, 피상고인】 홍길동`, a label `성명: 홍길동`, `소송대리인 변호사 홍길동`, and a role word
  followed by a three-syllable name and then `(`, `,`, ` 외`, ` 및` or the end of the line (`원고 홍길동(이하…`);
  after a role word or party header, a *list* of names joined by `,`, `및`, `와`/`과` is masked name by name
  (`청구인 김철수, 이영희 및 박민수는` → `청구인 OOO, OOO 및 OOO는`): once two names stand in a list, the last may be
  followed by a particle.
  와/과 must agree with the name's last syllable (김철수와, 박민석과), as Korean grammar requires.

What must survive (look-alikes, each covered by tests/test_prepare_pii.py)
- amounts `1,500,000원`, `237,029,010원`; dates `2016. 7. 14.`, `2023-09-22`, `2023.9.22.`;
  사건번호 `2022두64143`, `2021누40876`; 문서번호 `서면-2023-법규기본-2039`; 조문 `제3조의2 제1항`;
  법률 번호 `법률 제14388호`; text that is already masked (甲, 乙, OOO, ○○○, 김○○, 소외 1).
- A date is at most 8 digits, so the 10-digit floor for hyphenated accounts keeps `2023-09-22` out; 사건번호 and
  문서번호 have Hangul between their digit groups, so no digit-group pattern can span them.

Names are deliberately conservative: `원고 주장은`, `원고 소유의 토지` must stay, and a role word followed by any
Hangul word would destroy the legal text. A lone name followed by a particle (`원고 홍길동은`) is therefore left
alone; court-published decisions already anonymise parties as 원고/소외 1, which is the common case.

`scrub_document` masks every free-text field that reaches a chunk or a later stage: the text, title, question,
answer, reasoning, holdings, summary and each `related_laws` entry.
"""

from __future__ import annotations

import re
from collections import Counter

from slm_forest.records import Document

PLACEHOLDERS = {
    "rrn": "[주민등록번호]",
    "phone": "[전화번호]",
    "business_no": "[사업자등록번호]",
    "account": "[계좌번호]",
    "email": "[이메일]",
    "name": "OOO",
}

# Number-shaped categories. Scanning all of a 400 MB corpus with this pattern runs at ~5 M chars/s in Python's
# regex engine (a lookbehind tried at every position), so `_CANDIDATE` first finds the few digit runs that could
# be one (a digit, "(" or "+" not preceded by a digit or hyphen, then 8+ digits/separators, ~35 M chars/s) and the
# precise pattern runs on those short spans only. The alternatives are tried in order at each position, so a
# mobile number is a phone before it can be an account, and 123-45-67890 is a 사업자등록번호.
_CANDIDATE = re.compile(r"[\d(+](?<![\d-][\d(])[\d*xX ().-]{8,}")
_NUMBERS = re.compile(
    r"(?<![\d-])(?:"
    r"(?P<rrn>\d{6} ?- ?[1-8*xX][\d*xX]{6}"
    # Unhyphenated: a valid YYMMDD and a gender digit 1-4, not an amount ("…원" is checked in code).
    r"|\d\d(?:0[1-9]|1[0-2])(?:0[1-9]|[12]\d|3[01])[1-4]\d{6})"
    # An area code in parentheses only when they close right after it: "(02) 123-4567", never "(010-…" (that "("
    # opens a remark such as "홍길동(010-1234-5678)" and stays).
    r"|(?P<phone>(?:\(0(?:1[016789]|2|[3-6][1-5]|70)\) ?|0(?:1[016789]|2|[3-6][1-5]|70)[-. ]?)\d{3,4}[-. ]\d{4}"
    r"|01[016789]\d{7,8}"
    # +82, the leading 0 of the area code dropped (sometimes kept as "(0)").
    r"|\+ ?82[-. ]?(?:\(0\)[-. ]?)?(?:1[016789]|2|[3-6][1-5]|70)[-. ]?\d{3,4}[-. ]?\d{4})"
    r"|(?P<business_no>\d{3}-\d{2}-\d{5})"
    r"|(?P<account>\d{2,6}(?:-\d{2,8}){2,3})"
    # Not followed by more digits, masks or hyphens (a longer number), nor by a decimal/thousands continuation.
    r")(?![\d*xX-]|[.,]\d)"
)
_EMAIL = re.compile(r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}")
_ACCOUNT_AFTER_KEYWORD = re.compile(r"((?:계좌|계좌번호|예금계좌)\s*[:：]?\s*)(\d{10,16})(?!\d)")

_ROLES = (
    "원고|피고|청구인|피청구인|신청인|피신청인|상고인|피상고인|항소인|피항소인|참가인|소외|망|질의인|피상속인|"
    "상속인|증여자|수증자|대표이사|예금주"
)
_PARTY_LABELS = "원고|피고|청구인|신청인|상고인|항소인|참가인|채권자|채무자|피해자"
_PARTY_LABEL = re.compile(_PARTY_LABELS)
# 【원고, 피상고인】 홍길동 — the header line names the party, optionally followed by `(…)` or `,`.
_HEADER_NAME = re.compile(r"^(【([^】\n]*)】 ?)([가-힣]{2,4})(?= ?[(,]| *$)", re.MULTILINE)
# A role word (or a party header 【원고, 피상고인】) followed by a three-syllable word: where a name or a list of names
# may start. The role word must not end a longer word (피고 in 항소피고); checked in code, a lookbehind here is 3×
# slower.
_ROLE_START = re.compile(rf"(?:{_ROLES}) +(?=[가-힣]{{3}})")
# Kept apart from _ROLE_START (and only run on texts with 【): one pattern for both scanned 2× slower.
_HEADER_START = re.compile(rf"^【[^】\n]*(?:{_PARTY_LABELS})[^】\n]*】 ?(?=[가-힣]{{3}})", re.MULTILINE)
_HANGUL3 = re.compile(r"[가-힣]{3}")
# What may follow a lone name: "(", ",", " 외", " 및 " or the end of the line.
_LONE_END = re.compile(r" ?[(,]| +외(?![가-힣])| +및 | *$", re.MULTILINE)
# Between the names of a list: ", ", " 및 ", or 와/과 glued to the name before.
_LIST_SEP = re.compile(r" ?, ?| +및 +|([와과]) +")
# After the last name of a list of two or more: a particle or nothing, then no more Hangul.
_LIST_END = re.compile(r"[은는이가을를의에도와과]?(?![가-힣])")
_LABEL_NAME = re.compile(r"((?:성 ?명|이 ?름)\s*[:：]\s*)([가-힣]{2,4})(?![가-힣])")
_COUNSEL_NAME = re.compile(r"(소송대리인[^)\n]{0,30}?변호사 +)([가-힣]{2,4})(?![가-힣])")

# A name starts with a surname. This list covers well over 95% of Korean people and keeps most common nouns
# (주장, 소유, 대리인 …) from being read as names; the stop words below catch the nouns that slip through.
_SURNAMES = frozenset(
    "김이박최정강조윤장임한오서신권황안송류유홍전고문양손배백허남심노하곽성차주우구민진나지엄채원천방공현함변염여"
    "추도소석선설마길연위표명기반왕금옥육인맹제모탁국어은편용예경봉사부가복태목형계피두감음빈동온호범좌팽승간상시"
    "갈단견당화창옹"
)
_NOT_NAMES = frozenset(
    "원고 피고 망인 소외인 상고인 청구인 신청인 참가인 대리인 소유자 명의자 대표자 사업자 거주자 납세자 상속인 배우자 "
    "조합원 주주들 임원들 직원들 본인 이사 대표 국가 정부 회사 법인 주식회사 유한회사 합자회사 재단법인 사단법인 "
    "학교법인 세무서장 세무서 국세청장 지방국세청장 시장 군수 구청장 장관 공사 조합 은행 성명 이름 동인 동녀 "
    "전부 일부 각자 공동 이외 이하 이상".split()
)
_PARTICLE_ENDINGS = tuple("은는이가을를의에와과도만로서")
_ORG_ENDINGS = (
    "서장",
    "청장",
    "법인",
    "회사",
    "공사",
    "조합",
    "은행",
    "학교",
    "대학",
    "시장",
    "군수",
    "장관",
    "세무서",
)


def _is_name(word: str) -> bool:
    return (
        word[0] in _SURNAMES
        and word not in _NOT_NAMES
        and not word.endswith(_PARTICLE_ENDINGS)
        and not word.endswith(_ORG_ENDINGS)
    )


def _joins_with(syllable: str) -> str:
    """와 after a syllable without a final consonant (김철수와), 과 after one with (박민석과)."""
    return "와" if (ord(syllable) - 0xAC00) % 28 == 0 else "과"


def _name_list(text: str, pos: int) -> list[tuple[int, int]]:
    """Spans of the names listed at `pos`, right after a role word; [] when what follows is not names."""
    names: list[tuple[int, int]] = []
    while True:
        word = text[pos : pos + 3]
        if not _HANGUL3.fullmatch(word) or not _is_name(word):
            break
        end = pos + 3
        sep = _LIST_SEP.match(text, end)
        if sep and _HANGUL3.match(text, sep.end()) and sep.group(1) in (None, _joins_with(word[-1])):
            names.append((pos, end))  # another word follows: decided below whether the list goes on
            pos = sep.end()
            continue
        if _LONE_END.match(text, end) or (names and _LIST_END.match(text, end)):
            names.append((pos, end))
            return names
        break
    # The list stopped at a word that is not a name: two names before it are a list; one stands only when what
    # follows it is a lone name's end ("원고 김철수, 피고 …"), not 와/과 ("원고 소유권과 점유권" stays).
    if len(names) >= 2 or (names and _LONE_END.match(text, names[0][1])):
        return names
    return []


def _mask_role_names(text: str, counts: Counter[str]) -> str:
    pieces: list[str] = []
    last = 0
    starts = list(_ROLE_START.finditer(text))
    if "【" in text:
        starts = sorted(starts + list(_HEADER_START.finditer(text)), key=lambda match: match.start())
    for match in starts:
        start = match.start()
        if start < last or (start and "가" <= text[start - 1] <= "힣"):
            continue  # inside a list already masked, or the role word is the tail of a longer word
        for name_start, name_end in _name_list(text, match.end()):
            pieces += [text[last:name_start], PLACEHOLDERS["name"]]
            last = name_end
            counts["name"] += 1
    if not pieces:
        return text
    pieces.append(text[last:])
    return "".join(pieces)


def scrub_text(text: str, counts: Counter[str]) -> str:
    """Mask personal data in `text`; adds one count per replacement to `counts` (by category)."""
    if not text:
        return text

    outer: list[re.Match[str]] = []  # the candidate span being scanned (one closure for all of them: ~45,000 in 8 MB)

    def numbers(found: re.Match[str]) -> str:
        kind = found.lastgroup or ""
        value = found.group(0)
        if kind == "account" and not 10 <= sum(ch.isdigit() for ch in value) <= 16:
            return value  # too short or long for an account: a date, a range, a code
        if kind == "rrn" and value.isdigit():  # 13 digits without a hyphen: the context decides
            span = outer[0]
            following = span.group(0)[found.end() :] + span.string[span.end() : span.end() + 3]
            if following.lstrip().startswith("원"):
                return value  # an amount
            if "계좌" in span.string[max(0, span.start() - 12) : span.start()]:
                kind = "account"
        counts[kind] += 1
        return PLACEHOLDERS[kind]

    def candidate(match: re.Match[str]) -> str:
        outer[:] = [match]
        return _NUMBERS.sub(numbers, match.group(0))

    def email(match: re.Match[str]) -> str:
        counts["email"] += 1
        return PLACEHOLDERS["email"]

    def keyword_account(match: re.Match[str]) -> str:
        counts["account"] += 1
        return match.group(1) + PLACEHOLDERS["account"]

    def header(match: re.Match[str]) -> str:
        if not _PARTY_LABEL.search(match.group(2)) or not _is_name(match.group(3)):
            return match.group(0)
        counts["name"] += 1
        return match.group(1) + PLACEHOLDERS["name"]

    def prefixed(match: re.Match[str]) -> str:
        if not _is_name(match.group(2)):
            return match.group(0)
        counts["name"] += 1
        return match.group(1) + PLACEHOLDERS["name"]

    if "@" in text:
        text = _EMAIL.sub(email, text)
    text = _CANDIDATE.sub(candidate, text)
    if "계좌" in text:
        text = _ACCOUNT_AFTER_KEYWORD.sub(keyword_account, text)
    text = _mask_role_names(text, counts)  # before the header pass: it reads lists after a header too
    if "【" in text:
        text = _HEADER_NAME.sub(header, text)
    if "명" in text or "름" in text:
        text = _LABEL_NAME.sub(prefixed, text)
    if "소송대리인" in text:
        text = _COUNSEL_NAME.sub(prefixed, text)
    return text


_TEXT_FIELDS = ("question", "answer", "reasoning", "holdings", "summary")


def scrub_document(doc: Document, counts: Counter[str]) -> Document:
    """Mask every free-text field (they end up in chunks or later stages). Statutes are returned unchanged (public
    text, no personal data)."""
    if doc.kind == "statute_article":
        return doc
    update: dict[str, object] = {"text": scrub_text(doc.text, counts), "title": scrub_text(doc.title, counts)}
    for name in _TEXT_FIELDS:
        value = getattr(doc, name)
        if value:
            update[name] = scrub_text(value, counts)
    if doc.related_laws:
        update["related_laws"] = [scrub_text(law, counts) for law in doc.related_laws]
    return doc.model_copy(update=update)
