"""`conclusion_contradicts_source`: an answer that says the opposite of its interpretation's 회신 is rejected."""

from __future__ import annotations

from functools import lru_cache

import pytest

from slm_datagen.collect.bundled import iter_bundled
from slm_datagen.dataset.conclusion import (
    Claim,
    check_conclusion,
    question_claim,
    text_conclusion,
    yes_no_lead,
)
from slm_datagen.distill.offline import offline_pair
from slm_datagen.prepare.chunk import chunk_document
from slm_forest.records import Chunk, Document, QAPair


@lru_cache(maxsize=1)
def bundled_rulings() -> tuple[tuple[Document, Chunk], ...]:
    docs = [d for _, ds in iter_bundled(["rulings"]) for d in ds]
    return tuple((doc, chunk) for doc in docs for chunk in chunk_document(doc, 1500, 20).chunks)


def pair_for(doc: Document, question: str, answer: str, kind: str = "interpretation") -> QAPair:
    return QAPair(
        id="qa",
        chunk_id="c",
        doc_id=doc.id,
        kind=kind,  # type: ignore[arg-type]
        question=question,
        answer=answer,
        audience="expert",
        teacher="openai",
        model="m",
        prompt_version="v",
        request_key="k",
    )


def ruling(answer: str) -> Document:
    return Document(id="doc-r", kind="interpretation", title="t", text="t", source="test", answer=answer)


def rejected(official: str, question: str, answer: str) -> bool:
    doc = ruling(official)
    return bool(check_conclusion(pair_for(doc, question, answer), {doc.id: doc}, {}))


@pytest.mark.parametrize(
    "text, claim",
    [
        ("납세증명서 제출대상에 해당하지 않음", Claim("weak", -1)),
        ("소득령§155② 특례 적용 불가함", Claim("application", -1)),
        ("부가가치세가 면제되는 것임", Claim("tax", -1)),
        ("국내에서 과세되지 않는 것임", Claim("tax", -1)),
        ("부가가치세 과세대상에 해당하지 아니하는 것임", Claim("tax", -1)),
        ("매출세액에서 공제할 수 없는 것임", Claim("deduction", -1)),
        ("영세율 적용 가능함", Claim("application", 1)),
        ("가산세 부과대상에서 제외되는 것임", Claim("tax", -1)),
        ("손금산입 할 수 없는 것임", Claim("income_inclusion", -1)),
        ("최대주주 할증평가 대상이 아님", Claim("weak", -1)),
        # negation scope: double negatives are positive, "A가 아니라 B" is B
        ("특례 적용이 불가능하지 않다", Claim("modal", 1)),
        ("매입세액은 공제받을 수 없는 것은 아닙니다", Claim("deduction", 1)),
        ("해당 금액은 과세되지 않는 것이 아니라 과세되는 것임", Claim("tax", 1)),
        ("비과세되는 것이 아니라 과세대상에 해당하지 않는 것임", Claim("tax", -1)),
        # a negation inside the subject or a condition is not the conclusion's
        ("국내사업장이 없는 외국법인으로부터 지급받는 경우 영세율 적용 가능함", Claim("application", 1)),
        (
            "유보소득 배당간주 적용 배제되는 해외지주회사로부터 받는 배당금은 익금불산입 적용 대상임",
            Claim("application", 1),
        ),
        ("특례적용신청서를 기한 내에 제출하지 않더라도 납부특례의 적용을 받을 수 있는 것임", Claim("application", 1)),
        ("손금불산입 하였으나 이후 사업연도에 손금에 산입할 수 있음", Claim("income_inclusion", 1)),
    ],
)
def test_the_conclusion_of_an_official_answer(text, claim):
    assert text_conclusion(text) == claim


@pytest.mark.parametrize(
    "text",
    [
        "NFT의 공급에 대해 부가가치세가 과세여부는 NFT의 유형･특성 등을 고려하여 판단할 사항임",  # decides nothing
        "기산일은 신고기한의 다음 날임",
        "포괄적으로 대행하는 경우 면세되는 것이나 단편적인 업무만을 대행하는 경우에는 과세되는 것임",  # it depends
        "전환사채의 실제 매입가액을 취득가액으로 봄",
    ],
)
def test_undetermined_conclusions(text):
    assert text_conclusion(text) is None


def test_questions_ask_a_claim_and_other_questions_ask_none():
    assert question_claim("부가가치세가 과세되나요?") == Claim("tax", 1)
    assert question_claim("부가가치세가 면제되나요?") == Claim("tax", -1)
    assert question_claim("매입세액을 공제받을 수 없나요?") == Claim("deduction", -1)
    assert question_claim("기산일은 언제인가요?") is None
    assert question_claim("세액은 어떻게 계산하나요?") is None


def test_the_offline_lead_follows_the_conclusion_not_the_wording():
    # the reported bug: "네 … 적용 불가합니다" for a source that says 불가
    q = "’20.12.31. 전 취득한 분양권으로 취득한 신축주택에 대해 개정된 소득령§155② 적용이 가능한가요?"
    assert yes_no_lead(q, "신축주택을 양도하는 경우 소득령§155② 특례 적용 불가함") == "아니요. "
    # 면제 answers a question about 과세: no negation word, still 아니요
    assert yes_no_lead("용도변경 후 양도한 경우 부가가치세가 과세되나요?", "부가 가치세가 면제되는 것임") == "아니요. "
    assert yes_no_lead("부가가치세가 면제되나요?", "면세되는 것이나 … 경우에는 과세되는 것임") == ""
    assert yes_no_lead("과세대상인가요?", "고려하여 판단할 사항임") == ""


def test_every_offline_pair_of_the_bundled_corpus_agrees_with_its_source():
    docs = {doc.id: doc for doc, _ in bundled_rulings()}
    chunks = {chunk.id: chunk for _, chunk in bundled_rulings()}
    checked = led = 0
    for doc, chunk in bundled_rulings():
        for audience in ("expert", "layperson"):
            draft = offline_pair(chunk, audience)
            assert draft is not None
            pair = pair_for(doc, draft.question, draft.answer).model_copy(update={"chunk_id": chunk.id})
            assert check_conclusion(pair, docs, chunks) == [], (doc.doc_no, draft.answer[:120])
            checked += text_conclusion(doc.answer or "") is not None
            led += draft.answer.startswith(("네. ", "아니요. ", "결론부터 말씀드리면 네", "결론부터 말씀드리면 아니요"))
    assert checked >= 2 * 60 and led >= 2 * 40  # most rulings state a conclusion, and most answers lead with it


def _flipped(answer: str) -> str | None:
    for lead, other in (("네. ", "아니요. "), ("아니요. ", "네. ")):
        if answer.startswith(lead):
            return other + answer[len(lead) :]
    for lead, other in (
        ("결론부터 말씀드리면 네.", "결론부터 말씀드리면 아니요."),
        ("결론부터 말씀드리면 아니요.", "결론부터 말씀드리면 네."),
    ):
        if answer.startswith(lead):
            return other + answer[len(lead) :]
    return None


def test_every_offline_answer_with_its_lead_flipped_is_rejected():
    docs = {doc.id: doc for doc, _ in bundled_rulings()}
    flipped = 0
    for doc, chunk in bundled_rulings():
        for audience in ("expert", "layperson"):
            draft = offline_pair(chunk, audience)
            wrong = _flipped(draft.answer) if draft else None
            if draft is None or wrong is None:
                continue
            findings = check_conclusion(pair_for(doc, draft.question, wrong), docs, {})
            assert [f.rule for f in findings] == ["conclusion_contradicts_source"], (doc.doc_no, wrong[:100])
            flipped += 1
    assert flipped >= 80


OFFICIAL_NOT_APPLICABLE = (
    "’20.12.31. 전 취득한 분양권에 의하여 취득한 신축주택을 양도하는 경우 소득령§155② 특례 적용 불가함"
)
Q_APPLICABLE = (
    "2020년 이전에 취득한 분양권으로 받은 신축주택에도 개정된 소득세법 시행령 제155조 제2항을 적용할 수 있나요?"
)
OFFICIAL_EXEMPT = "주택임대사업과 관련하여 일시적으로 공급되는 재화에 해당하므로 부가가치세가 면제되는 것임"
Q_TAXED = "임대하던 단독주택을 근린생활시설로 바꾼 뒤 팔면 부가가치세가 과세되나요?"
OFFICIAL_NO_DEDUCTION = (
    "1년이 지난 후 세금계산서를 발급받은 경우 해당 세금계산서상의 매입세액은 매출세액에서 공제할 수 없는 것임"
)
Q_DEDUCTION = "판결 후 1년이 지나 세금계산서를 받았는데 매입세액공제를 받을 수 있나요?"


@pytest.mark.parametrize(
    "official, question, answer, wrong",
    [
        (OFFICIAL_NOT_APPLICABLE, Q_APPLICABLE, "네, 적용할 수 있습니다. 신축주택에도 특례가 적용됩니다.", True),
        (
            OFFICIAL_NOT_APPLICABLE,
            Q_APPLICABLE,
            "아니요. 해당 신축주택에는 소득령 제155조 제2항 특례를 적용할 수 없습니다.",
            False,
        ),
        (OFFICIAL_NOT_APPLICABLE, Q_APPLICABLE, "해당 신축주택을 양도하는 경우 특례 적용이 가능합니다.", True),
        (OFFICIAL_NOT_APPLICABLE, Q_APPLICABLE, "이 경우 특례 적용은 불가능합니다.", False),
        (OFFICIAL_EXEMPT, Q_TAXED, "네, 부가가치세가 과세됩니다.", True),
        (OFFICIAL_EXEMPT, Q_TAXED, "아니요, 부가가치세가 면제됩니다.", False),
        (OFFICIAL_EXEMPT, Q_TAXED, "부가가치세가 과세되지 않습니다. 일시적으로 공급되는 재화이기 때문입니다.", False),
        (OFFICIAL_EXEMPT, Q_TAXED, "부가가치세가 면제되지 않고 과세됩니다.", True),
        (OFFICIAL_NO_DEDUCTION, Q_DEDUCTION, "네, 매출세액에서 공제받을 수 있습니다.", True),
        (
            OFFICIAL_NO_DEDUCTION,
            Q_DEDUCTION,
            "아닙니다. 확정신고기한 다음 날부터 1년이 지나 발급받았다면 공제할 수 없습니다.",
            False,
        ),
        (OFFICIAL_NO_DEDUCTION, Q_DEDUCTION, "매입세액은 매출세액에서 공제되지 않습니다.", False),
        (OFFICIAL_NO_DEDUCTION, Q_DEDUCTION, "공제받을 수 없는 것은 아닙니다. 판결이 있으면 공제됩니다.", True),
        # a negative question: 네 means the negative
        (OFFICIAL_NO_DEDUCTION, "그 매입세액은 공제받을 수 없나요?", "네, 공제받을 수 없습니다.", False),
        (OFFICIAL_NO_DEDUCTION, "그 매입세액은 공제받을 수 없나요?", "아니요, 공제받을 수 있습니다.", True),
        # undetermined on either side: never rejected
        (
            "NFT의 유형, 용도 및 거래형태 등을 고려하여 판단할 사항임",
            "NFT 공급은 과세대상인가요?",
            "네, 과세됩니다.",
            False,
        ),
        (OFFICIAL_EXEMPT, Q_TAXED, "사실관계에 따라 달라지므로 관할 세무서에 확인하세요.", False),
    ],
)
def test_planted_contradictions_and_their_correct_counterparts(official, question, answer, wrong):
    assert rejected(official, question, answer) is wrong


def test_statute_pairs_and_sources_without_an_answer_are_not_checked():
    doc = ruling("")
    assert check_conclusion(pair_for(doc, Q_TAXED, "네, 과세됩니다."), {doc.id: doc}, {}) == []
    doc = ruling(OFFICIAL_EXEMPT)
    pair = pair_for(doc, Q_TAXED, "네, 과세됩니다.", kind="statute_article")
    assert check_conclusion(pair, {doc.id: doc}, {}) == []
