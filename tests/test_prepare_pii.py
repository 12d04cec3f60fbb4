"""prepare/pii.py: planted personal data is masked and counted; planted look-alikes survive untouched."""

from __future__ import annotations

from collections import Counter

import pytest

from slm_datagen.prepare.pii import scrub_document, scrub_text
from slm_forest.records import Document


def _scrub(text: str) -> tuple[str, Counter[str]]:
    counts: Counter[str] = Counter()
    return scrub_text(text, counts), counts


@pytest.mark.parametrize(
    ("text", "expected", "kind"),
    [
        ("주민등록번호 800101-1234567 확인", "주민등록번호 [주민등록번호] 확인", "rrn"),
        ("원고(800101-1******)는", "원고([주민등록번호])는", "rrn"),
        ("생년 900230 - 2xxxxxx 인", "생년 [주민등록번호] 인", "rrn"),
        ("연락처 010-1234-5678로", "연락처 [전화번호]로", "phone"),
        ("휴대폰 01012345678.", "휴대폰 [전화번호].", "phone"),
        ("대표번호 02-123-4567 또는 (031) 234-5678", "대표번호 [전화번호] 또는 [전화번호]", "phone"),
        ("문의 044-204-3144~4", "문의 [전화번호]~4", "phone"),
        ("사업자등록번호 123-45-67890의", "사업자등록번호 [사업자등록번호]의", "business_no"),
        ("환급계좌 110-123-456789로 입금", "환급계좌 [계좌번호]로 입금", "account"),
        ("국민은행 123456-01-234567 예금", "국민은행 [계좌번호] 예금", "account"),
        ("계좌번호: 1002123456789 이다", "계좌번호: [계좌번호] 이다", "account"),
        ("메일 hong.gd@example.co.kr 로", "메일 [이메일] 로", "email"),
        (
            "【원고, 피상고인】 홍길동 (소송대리인 변호사 김철수)",
            "【원고, 피상고인】 OOO (소송대리인 변호사 OOO)",
            "name",
        ),
        ("원고 홍길동(이하 '원고'라 한다)은", "원고 OOO(이하 '원고'라 한다)은", "name"),
        ("원고 홍길동", "원고 OOO", "name"),
        ("피상속인 김영수, 상속인 박지민 외 2인", "피상속인 OOO, 상속인 OOO 외 2인", "name"),
        ("성명: 이순신", "성명: OOO", "name"),
    ],
)
def test_planted_personal_data_is_masked_and_counted(text, expected, kind):
    scrubbed, counts = _scrub(text)
    assert scrubbed == expected
    masks = expected.count("OOO") if kind == "name" else expected.count("[")
    assert counts == Counter({kind: masks})


@pytest.mark.parametrize(
    "text",
    [
        "양도가액 1,500,000원과 상속세 237,029,010원(가산세 포함)",
        "2016. 7. 14. 사망하였고 2018. 12. 5. 고지하였다",
        "회신일 2023.9.22. 시행일 2023-09-22, 2024-01-01부터 2024-12-31까지",
        "대법원 2024. 9. 12. 선고 2022두64143 판결, 서울고법 2021누40876",
        "문서번호 서면-2023-법규기본-2039, 사전-2024-법규소득-0123, 기준-2022-법규기본-0173",
        "구 상속세 및 증여세법 제3조의2 제1항, 제13조 제1항 제1호 가목",
        "법률 제14388호로 개정되기 전의 것, 대통령령 제33277호",
        "조심2023서1234, 국심 2005중1234 결정",
        "원고 甲과 피고 乙, 원고 OOO, 소외 ○○○, 김○○, 망 소외 1, 원고 1 외 2인",
        "원고 주장은 이유 없고 원고 소유의 토지와 원고 소유자, 원고 조합원 명의",
        "【원고, 피상고인】 원고\n【피고, 상고인】 서대문세무서장\n【원고】 학교법인 연세대학교",
        "대법관 엄상필(재판장) 이흥구(주심) 오석준 이숙연",
        "면적 123.45㎡, 비율 0.5%, 세율 10~50%, 1세대 1주택",
        "1588-1234 콜센터",
    ],
)
def test_look_alikes_survive(text):
    scrubbed, counts = _scrub(text)
    assert scrubbed == text
    assert counts == Counter()


def test_a_mixed_paragraph_masks_only_the_personal_data():
    text = (
        "원고 홍길동(800101-1234567, 010-9876-5432)은 2022. 3. 2. 서면-2023-법규기본-2039에 따라 1,500,000원을 "
        "계좌 110-123-456789로 환급받았다(대법원 2022두64143 참조)."
    )
    scrubbed, counts = _scrub(text)
    assert scrubbed == (
        "원고 OOO([주민등록번호], [전화번호])은 2022. 3. 2. 서면-2023-법규기본-2039에 따라 1,500,000원을 "
        "계좌 [계좌번호]로 환급받았다(대법원 2022두64143 참조)."
    )
    assert counts == Counter({"name": 1, "rrn": 1, "phone": 1, "account": 1})


def test_statutes_are_never_scrubbed_but_rulings_fields_are():
    text = "① 전화 02-123-4567로 신고한다."
    statute = Document(id="s", kind="statute_article", title="t", text=text, source="t", law_name="법", article_no=1)
    counts: Counter[str] = Counter()
    assert scrub_document(statute, counts) is statute and counts == Counter()
    ruling = Document(
        id="r",
        kind="interpretation",
        title="질의",
        text="질의인 연락처 010-1234-5678",
        source="t",
        question="원고 홍길동의 양도소득 과세 여부, 문의 02-123-4567",
        answer="과세됨",
    )
    scrubbed = scrub_document(ruling, counts)
    assert scrubbed.text == "질의인 연락처 [전화번호]" and scrubbed.question.endswith("문의 [전화번호]")
    assert counts == Counter({"phone": 2})


def test_a_parenthesis_before_a_phone_number_is_kept():
    scrubbed, counts = _scrub("질의인 홍길동(010-2345-6789)은 양도하였다")
    assert scrubbed == "질의인 OOO([전화번호])은 양도하였다"
    assert counts == Counter({"name": 1, "phone": 1})


@pytest.mark.parametrize(
    ("text", "expected", "masks"),
    [
        ("청구인 김철수, 이영희", "청구인 OOO, OOO", {"name": 2}),
        ("청구인 김철수, 이영희, 박민수는 주택을 양도하였다", "청구인 OOO, OOO, OOO는 주택을 양도하였다", {"name": 3}),
        ("원고 김철수 및 이영희(이하 '원고들')", "원고 OOO 및 OOO(이하 '원고들')", {"name": 2}),
        ("원고 김철수와 이영희는 부부이다", "원고 OOO와 OOO는 부부이다", {"name": 2}),
        ("상속인 박민석과 최지우가 상속받은", "상속인 OOO과 OOO가 상속받은", {"name": 2}),
        ("피상속인 김영수, 상속인 박지민, 이수진 외 2인", "피상속인 OOO, 상속인 OOO, OOO 외 2인", {"name": 3}),
        ("원고 김철수, 피고 서대문세무서장", "원고 OOO, 피고 서대문세무서장", {"name": 1}),
        (
            "【원고, 피상고인】 홍길동, 김영희 (소송대리인 변호사 박철수)",
            "【원고, 피상고인】 OOO, OOO (소송대리인 변호사 OOO)",
            {"name": 3},
        ),
        ("주민번호 8001011234567 확인", "주민번호 [주민등록번호] 확인", {"rrn": 1}),
        ("(9912312345678)", "([주민등록번호])", {"rrn": 1}),
        ("연락처 +82-10-1234-5678", "연락처 [전화번호]", {"phone": 1}),
        ("Tel. +82 2 123 4567, +82 (0)31-234-5678", "Tel. [전화번호], [전화번호]", {"phone": 2}),
        ("+821012345678로 연락", "[전화번호]로 연락", {"phone": 1}),
    ],
)
def test_name_lists_unhyphenated_rrn_and_international_phones(text, expected, masks):
    scrubbed, counts = _scrub(text)
    assert scrubbed == expected
    assert counts == Counter(masks)


@pytest.mark.parametrize(
    "text",
    [
        "원고 소유권과 점유권은 각각 별개이다",  # 와/과 joins nouns, not names
        "원고 김철수와 피고 대한민국",  # a lone name before 와: not enough evidence
        "청구인 주장과 처분청 의견",
        "금액 8001011234567원, 합계 8001011234567 원",  # 13 digits that are amounts
        "코드 1234567890123, 일련번호 20230922123456, 2023092212345",  # no valid date + gender digit, or 14 digits
        "8001015234567, 80010112345678",  # gender digit 5 (not 1-4), 14 digits
        "판례 2022두64143, 문서번호 서면-2023-법규기본-2039, 사건 조심2023서1234",
        "소득세법 제12조 제3호 가목, 법률 제14388호, 2016. 7. 14., 1,500,000원",
        "비율 +82.5%, 증감 +8,200,000원",
    ],
)
def test_look_alikes_of_the_new_patterns_survive(text):
    scrubbed, counts = _scrub(text)
    assert scrubbed == text and counts == Counter()


def test_related_laws_and_every_text_field_are_scrubbed():
    doc = Document(
        id="i",
        kind="interpretation",
        title="질의",
        text="본문",
        source="t",
        question="질의인 김철수, 이영희의 문의 (010-1234-5678)",
        answer="회신: 청구인 박민수 외 1인",
        reasoning="연락처 +82-2-123-4567",
        related_laws=["소득세법 제12조", "관련 질의인 최지우(8001011234567)", "소득세법 시행령 제8조의2"],
    )
    counts: Counter[str] = Counter()
    scrubbed = scrub_document(doc, counts)
    assert scrubbed.question == "질의인 OOO, OOO의 문의 ([전화번호])"
    assert scrubbed.answer == "회신: 청구인 OOO 외 1인" and scrubbed.reasoning == "연락처 [전화번호]"
    assert scrubbed.related_laws == ["소득세법 제12조", "관련 질의인 OOO([주민등록번호])", "소득세법 시행령 제8조의2"]
    assert counts == Counter({"name": 4, "phone": 2, "rrn": 1})
