"""The named quality rules of `slm build`, each with planted failures and planted passes."""

from __future__ import annotations

from collections import Counter

import pytest

from slm_datagen.dataset.arithmetic import check_arithmetic
from slm_datagen.dataset.contamination import find_contamination, load_benchmark_questions
from slm_datagen.dataset.content import check_content, truncation_reason
from slm_datagen.dataset.duplicates import find_duplicates
from slm_datagen.dataset.grounding import build_statute_index, check_grounding, paragraphs_of
from slm_datagen.dataset.question_readings import read_question
from slm_datagen.dataset.rules import RULES, Finding
from slm_datagen.taxlaw.inputs import DonorRelation
from slm_forest.config import BuildConfig
from slm_forest.errors import SlmError
from slm_forest.records import Calculation, Chunk, Document, QAPair

# The seed project's sample answer: 증여세 on 20억원 with the brackets up to 5억원 only, no 증여재산공제.
SEED_QUESTION = "성인 자녀가 아버지로부터 현금 20억원을 증여받았습니다. 증여세는 얼마인가요?"
SEED_WRONG_ANSWER = (
    "증여세는 과세표준에 누진세율을 적용하여 계산합니다. 1억원 이하는 10%, 1억원 초과 5억원 이하는 20%입니다. "
    "따라서 20억원에 대한 증여세는 1,000만원 + 8,000만원 = 9,000만원입니다. "
    "부모로부터 받은 증여는 공제가 적용되지 않습니다."
)
CORRECT_ANSWER = (
    "성년 자녀가 부모에게 받은 증여에는 5,000만원의 증여재산공제가 적용되어 과세표준은 19억 5,000만원입니다. "
    "세율 40%와 누진공제 1억 6,000만원을 적용한 산출세액은 6억 2,000만원이며, 신고세액공제 3%를 빼면 "
    "납부할 세액은 6억 140만원입니다(상속세 및 증여세법 제53조, 제56조)."
)


def make_pair(question: str, answer: str, **fields) -> QAPair:
    base = dict(
        id=fields.pop("id", "qa-test"),
        chunk_id="chunk-x",
        doc_id="doc-x",
        kind="interpretation",
        question=question,
        answer=answer,
        audience="expert",
        teacher="openai",
        model="gpt-test",
        prompt_version="v1",
        request_key="rk",
    )
    base.update(fields)
    return QAPair(**base)


def rules_of(findings: list[Finding]) -> list[str]:
    return [f.rule for f in findings]


# --------------------------------------------------------------------------------------------------------- content
CFG = BuildConfig()
GOOD_ANSWER = "소득세법 제12조에 따라 공익신탁의 이익은 소득세를 과세하지 않는 비과세소득에 해당합니다."


def test_content_passes_a_plain_good_answer():
    assert check_content(make_pair("공익신탁의 이익은 과세되나요?", GOOD_ANSWER), CFG) == []


@pytest.mark.parametrize(
    ("question", "answer", "rule"),
    [
        ("공익신탁의 이익은 과세되나요?", "   ", "empty"),
        ("  ", GOOD_ANSWER, "empty"),
        ("공익신탁의 이익은 과세되나요?", "비과세입니다.", "too_short"),
        ("공익신탁의 이익은 과세되나요?", "비과세입니다. " * 700, "too_long"),
        (
            "Is the income taxable?",
            "The income from a public interest trust is not taxable under the act.",
            "not_korean",
        ),
        (
            "공익신탁의 이익은 과세되나요?",
            "죄송하지만 구체적인 세무 상담에는 답변드릴 수 없습니다. 세무서에 문의하세요.",
            "refusal",
        ),
        (
            "공익신탁의 이익은 과세되나요?",
            "저는 AI 언어 모델로서 법률 자문을 할 수 없으나 일반적으로는 비과세입니다.",
            "refusal",
        ),
        (
            "공익신탁의 이익은 과세되나요?",
            "소득세법 제12조에 따라 공익신탁의 이익은 소득세를 과세하지 아니하",
            "truncated",
        ),
        (
            "공익신탁의 이익은 과세되나요?",
            "공익신탁의 이익은 비과세소득입니다(소득세법 제12조 제1호 참조.",
            "truncated",
        ),
        ("공익신탁의 이익은 과세되나요?", "비과세 요건은 다음과 같습니다.\n```\n1. 공익신탁법에 따른", "truncated"),
        ("공익신탁의 이익은 과세되나요?", "비과세소득에는 공익신탁의 이익, 사업소득 중 일부,", "truncated"),
        (
            "소득세법상 공익신탁의 이익은 비과세소득인가요?",
            "소득세법상 공익신탁의 이익은 비과세소득인가요",
            "repeats_question",
        ),
        (
            "소득세법상 공익신탁의 이익은 과세하지 않는 비과세소득에 해당하나요?",
            "네, 소득세법상 공익신탁의 이익은 과세하지 않는 비과세소득에 해당합니다.",
            "repeats_question",
        ),
    ],
)
def test_content_rules_catch_planted_failures(question, answer, rule):
    findings = check_content(make_pair(question, answer), CFG)
    assert rule in rules_of(findings), findings
    assert all(f.action == "reject" for f in findings)


def test_finish_reason_length_is_truncation_even_when_the_text_looks_finished():
    pair = make_pair("공익신탁의 이익은 과세되나요?", GOOD_ANSWER, meta={"finish_reason": "length"})
    assert rules_of(check_content(pair, CFG)) == ["truncated"]


@pytest.mark.parametrize(
    "answer",
    [
        "공익신탁의 이익은 비과세됩니다.",
        "해당 주거이전비는 납세증명서 제출대상에 해당하지 않음",  # the casebook's nominal style
        "비과세소득은 다음과 같습니다.\n- 공익신탁의 이익\n- 농지 대여소득",
        "계산 결과는 다음과 같습니다.\n산출세액: 6억 2,000만원",
        "산출세액 = 19억 5,000만원 × 40% − 1억 6,000만원 = 6억 2,000만원",
        "자세한 내용은 「소득세법」 제12조를 참고하세요!",
        "| 구분 | 세율 |\n| --- | --- |\n| 1억원 이하 | 10% |",
    ],
)
def test_finished_answers_are_not_truncated(answer):
    assert truncation_reason(answer) is None


def test_hangul_share_threshold_comes_from_the_config():
    pair = make_pair("VAT 신고는?", "VAT return filing: 매 과세기간 종료 후 25일 이내 신고합니다.")
    assert check_korean_rules(pair, 0.3) == []
    assert check_korean_rules(pair, 0.9) == ["not_korean"]


def check_korean_rules(pair: QAPair, share: float) -> list[str]:
    return [r for r in rules_of(check_content(pair, BuildConfig(min_hangul_share=share))) if r == "not_korean"]


def test_every_rule_name_is_registered():
    with pytest.raises(ValueError):
        Finding("no_such_rule", "x")
    assert {"duplicate", "contamination", "citation_not_in_corpus", "calc_mismatch"} <= set(RULES)


# ------------------------------------------------------------------------------------------------------ duplicates
def test_exact_duplicates_ignore_spacing_and_punctuation_and_keep_the_first():
    pairs = [
        make_pair("증여세 신고기한은 언제인가요?", GOOD_ANSWER, id="a"),
        make_pair("증여세  신고 기한은 언제 인가요", GOOD_ANSWER, id="b"),
        make_pair("증여세 신고기한은 언제인가요?", GOOD_ANSWER, id="a"),  # the same pair written twice
    ]
    found = find_duplicates(pairs, threshold=0.85)
    assert set(found) == {1, 2}
    assert found[1].rule == "duplicate" and "pair a" in found[1].details


def test_near_duplicates_are_caught_but_other_articles_and_numbers_are_not():
    long_q = "거주자가 국외에서 근무하고 받은 급여 중 월 100만원 이내의 금액은 소득세법상 비과세소득에 해당하는지 알려주세요."
    pairs = [
        make_pair(long_q, GOOD_ANSWER, id="first"),
        make_pair(long_q.replace("알려주세요", "알려 주시겠어요"), GOOD_ANSWER, id="reworded"),
        make_pair(long_q.replace("100만원", "300만원"), GOOD_ANSWER, id="other-amount"),
        make_pair(
            "소득세법 제12조 제3호의 비과세소득 요건과 적용 범위를 구체적으로 설명해 주세요.", GOOD_ANSWER, id="art12"
        ),
        make_pair(
            "소득세법 제14조 제3호의 비과세소득 요건과 적용 범위를 구체적으로 설명해 주세요.", GOOD_ANSWER, id="art14"
        ),
        make_pair(
            "법인세법 제12조 제3호의 비과세소득 요건과 적용 범위를 구체적으로 설명해 주세요.", GOOD_ANSWER, id="law2"
        ),
    ]
    found = find_duplicates(pairs, threshold=0.85)
    assert set(found) == {1}
    assert found[1].rule == "near_duplicate" and "pair first" in found[1].details


# ------------------------------------------------------------------------------------------------------- grounding
def statute(law: str, article: int, text: str, date: str, branch: int | None = None, **fields) -> Document:
    doc_id = f"doc-{law}-{article}-{branch}-{date}"
    source = fields.pop("source", "test")
    return Document(
        id=doc_id,
        kind="statute_article",
        title=f"{law} 제{article}조",
        text=text,
        source=source,
        law_name=law,
        article_no=article,
        article_branch=branch,
        effective_date=date,
        **fields,
    )


CORPUS = [
    statute(
        "소득세법",
        12,
        "제12조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.\n1. 공익신탁의 이익",
        "2024-01-01",
    ),
    statute(
        "상속세 및 증여세법",
        53,
        "제53조(증여재산 공제)\n① 거주자가 다음 각 호의 어느 하나에 해당하는 사람으로부터 증여를 받은 경우에는 …\n"
        "② 제1항을 적용할 때 수증자를 기준으로 그 증여를 받기 전 10년 이내에 공제받은 금액과 …",
        "2024-01-01",
    ),
    statute(
        "국세기본법", 26, "제26조의2(국세의 부과제척기간)\n① … 제45조의2에 따른 경정청구 …", "2020-01-01", branch=2
    ),
    statute(
        "국세기본법", 26, "제26조의2(국세의 부과제척기간)\n① … 제45조의2에 따른 경정청구 …\n② …", "2024-01-01", branch=2
    ),
    statute("법인세법", 99, "제99조 삭제 <2018.12.24>", "2024-01-01", deleted=True),
    statute("소득세법", 200, "제200조(새 조문)\n① 새로 생긴 조문이다.", "2025-01-01", amendments=["본조신설 2025.1.1"]),
]
DOCS = {doc.id: doc for doc in CORPUS}
INDEX = build_statute_index(CORPUS)
ART12 = CORPUS[0]


def ground(answer: str, *, doc: Document = ART12, citations=(), action: str = "reject") -> list[Finding]:
    pair = make_pair(
        "질문입니다?",
        answer,
        kind="statute_article",
        doc_id=doc.id,
        law_name=doc.law_name,
        citations=list(citations),
        source_citation=doc.citation(),
    )
    return check_grounding(pair, INDEX, DOCS, {}, action)


def test_a_citation_that_exists_passes():
    assert ground("소득세법 제12조 제1호에 따라 공익신탁의 이익은 비과세입니다.") == []


def test_an_article_missing_from_a_partly_collected_law_is_held_for_review():
    findings = ground("소득세법 제12조와 소득세법 제999조에 따라 비과세입니다.")
    assert [(f.rule, f.action) for f in findings] == [("citation_unverified", "review")]
    assert "소득세법 제999조" in findings[0].details and "add 소득세법 to collect" in findings[0].details


def test_citations_field_is_checked_too():
    findings = ground("소득세법 제12조에 따라 비과세입니다.", citations=["소득세법 제999조"])
    assert rules_of(findings) == ["citation_unverified"]


def whole_law(law: str, last: int, date: str, source: str = "lawgo:eflaw?MST=1") -> list[Document]:
    """A law as a whole-law response gives it: 제1조 to the last article, a repealed one as 삭제."""
    return [
        statute(
            law,
            n,
            f"제{n}조 삭제 <2020.1.1>" if n == 3 else f"제{n}조(조문 {n})\n① 본문 {n}.",
            date,
            source=source,
            deleted=n == 3,
        )
        for n in range(1, last + 1)
    ] + [statute(law, 2, "제2조의2(가지 조문)\n① 본문.", date, branch=2, source=source)]


def test_which_laws_are_held_in_full_comes_from_the_documents():
    corpus = whole_law("법인세법", 30, "2024-01-01") + CORPUS
    corpus += whole_law("부가가치세법", 10, "2024-01-01", source="bundled:lawgo/eflaw_JO_부가가치세법_제46조.json")
    corpus += [d for d in whole_law("종합부동산세법", 12, "2024-01-01") if d.article_no != 7]  # one article missing
    index = build_statute_index(corpus)
    assert index.whole_versions == {"법인세법": ["2024-01-01"]}  # JO= requests and gaps are not whole laws
    assert index.held_in_full("법인세법", "2023-05-01") and index.held_in_full("법인세법", None)
    assert not index.held_in_full("법인세법", "2025-03-01")  # a later source may cite an article added since
    assert not index.held_in_full("소득세법", None)


def test_an_article_missing_from_a_law_collected_in_full_is_rejected():
    corpus = whole_law("소득세법", 40, "2024-01-01")
    index, docs = build_statute_index(corpus), {doc.id: doc for doc in corpus}
    pair = make_pair("질문?", "소득세법 제12조와 소득세법 제999조 및 같은 법 제2조의2에 따라 비과세입니다.")
    pair = pair.model_copy(update={"doc_id": corpus[11].id, "kind": "statute_article", "law_name": "소득세법"})
    tally: Counter[str] = Counter()
    findings = check_grounding(pair, index, docs, {}, "reject", tally)
    assert [(f.rule, f.action) for f in findings] == [("citation_not_in_corpus", "reject")]
    assert "collected in full" in findings[0].details
    assert tally == Counter({"verified": 2, "not_in_full_law": 1})
    deleted = pair.model_copy(update={"answer": "소득세법 제12조와 소득세법 제3조에 따릅니다."})
    assert rules_of(check_grounding(deleted, index, docs, {}, "reject")) == ["citation_wrong_version"]


def test_paragraph_must_exist_in_the_article_text():
    base = "소득세법 제12조 외에 "
    assert ground(base + "상속세 및 증여세법 제53조 제2항을 봅니다.") == []
    findings = ground(base + "상속세 및 증여세법 제53조 제3항을 봅니다.")
    assert rules_of(findings) == ["citation_paragraph_missing"]
    assert paragraphs_of(ART12.text) == {1}


def test_a_catalogue_law_that_was_not_collected_is_held_for_review():
    answer = "소득세법 제12조와 조세특례제한법 제30조의5에 따라 과세특례가 적용됩니다."
    findings = ground(answer)
    assert [(f.rule, f.action) for f in findings] == [("citation_unverified", "review")]
    assert (
        "조세특례제한법 was not collected" in findings[0].details
        and "add 조세특례제한법 to collect" in findings[0].details
    )
    assert rules_of(ground("소득세법 제12조와 민법 제1000조에 따릅니다.")) == [
        "citation_unverified"
    ]  # tax texts cite 민법


def test_a_law_known_nowhere_is_unresolvable_and_the_policy_decides():
    answer = "소득세법 제12조와 「가상세금특별법」 제30조에 따라 과세특례가 적용됩니다."
    rejected = ground(answer)
    assert [(f.rule, f.action) for f in rejected] == [("citation_unresolvable", "reject")]
    flagged = ground(answer, action="flag")
    assert [(f.rule, f.action) for f in flagged] == [("citation_unresolvable", "flag")]


def test_a_law_named_by_a_collected_document_exists():
    ruling = Document(
        id="doc-ruling",
        kind="interpretation",
        title="t",
        text="t",
        source="test",
        related_laws=["｢가상자산 이용자 보호 등에 관한 법률｣ 제2조"],
    )
    index = build_statute_index([*CORPUS, ruling])
    pair = make_pair(
        "질문?",
        "소득세법 제12조와 「가상자산 이용자 보호 등에 관한 법률」 제7조에 따릅니다.",
        kind="statute_article",
        doc_id=ART12.id,
        law_name="소득세법",
    )
    assert rules_of(check_grounding(pair, index, DOCS, {}, "reject")) == ["citation_unverified"]


def test_a_pair_from_an_article_must_cite_it():
    findings = ground("상속세 및 증여세법 제53조 제1항에 따른 공제가 적용됩니다.")
    assert rules_of(findings) == ["source_not_cited"]


def test_cross_references_of_the_source_article_are_grounded():
    source = CORPUS[3]  # 국세기본법 제26조의2 mentions 제45조의2, which was not collected
    assert ground("국세기본법 제26조의2와 국세기본법 제45조의2에 따라 경정청구를 할 수 있습니다.", doc=source) == []
    findings = ground("국세기본법 제26조의2와 국세기본법 제46조에 따릅니다.", doc=source)
    assert rules_of(findings) == ["citation_unverified"]  # 국세기본법 is collected only in part


def test_version_rules_deleted_and_not_yet_created_articles():
    deleted = ground("소득세법 제12조와 법인세법 제99조에 따릅니다.")
    assert rules_of(deleted) == ["citation_wrong_version"] and "삭제" in deleted[0].details
    too_new = ground("소득세법 제12조와 소득세법 제200조에 따릅니다.")  # source in force 2024-01-01, article added 2025
    assert rules_of(too_new) == ["citation_wrong_version"] and "2025-01-01" in too_new[0].details
    later_source = statute("소득세법", 12, ART12.text, "2025-06-01")
    docs = DOCS | {later_source.id: later_source}
    pair = make_pair(
        "질문?",
        "소득세법 제12조와 소득세법 제200조 제1항에 따릅니다.",
        kind="statute_article",
        doc_id=later_source.id,
        law_name="소득세법",
    )
    assert check_grounding(pair, INDEX, docs, {}, "reject") == []


def test_chunk_metadata_stands_in_for_a_missing_document():
    chunk = Chunk(
        id="chunk-x",
        doc_id="gone",
        kind="statute_article",
        title="t",
        text="제12조 …",
        citation="소득세법 제12조",
        law_name="소득세법",
        article_no=12,
        effective_date="2024-01-01",
    )
    pair = make_pair("질문?", "상속세 및 증여세법 제53조에 따릅니다.", kind="statute_article", doc_id="gone")
    assert rules_of(check_grounding(pair, INDEX, {}, {"chunk-x": chunk}, "reject")) == ["source_not_cited"]


# ------------------------------------------------------------------------------------------------------ arithmetic
def test_seed_wrong_gift_tax_sample_is_rejected_for_amount_and_denied_deduction():
    findings = check_arithmetic(make_pair(SEED_QUESTION, SEED_WRONG_ANSWER))
    assert rules_of(findings) == ["calc_answer_mismatch", "deduction_denied"]
    assert "9,000만원" in findings[0].details and "6억 2,000만원" in findings[0].details
    assert "5,000만원" in findings[1].details


def test_correct_gift_tax_computation_passes():
    assert check_arithmetic(make_pair(SEED_QUESTION, CORRECT_ANSWER)) == []


def test_gift_facts_are_recovered_from_the_question():
    facts = read_question(SEED_QUESTION)
    assert facts is not None and facts.tax == "gift_tax" and len(facts.readings) == 1
    inputs = facts.readings[0].inputs
    assert (inputs["amount_won"], inputs["relationship"], inputs["donee_is_minor"]) == (
        2_000_000_000,
        DonorRelation.LINEAL_ASCENDANT.value,
        False,
    )
    grandparent = read_question("할아버지로부터 20억원을 증여받았습니다. 증여세는?")
    assert grandparent is not None and grandparent.readings[0].inputs["relationship"] == "grandparent"
    twice = read_question("10년 이내에 아버지로부터 두 번 20억원을 증여받았습니다. 증여세는 얼마인가요?")
    assert twice is not None and twice.unverified


def test_unstated_age_accepts_either_deduction_and_spouse_gifts_use_six_hundred_million():
    question = "아버지로부터 20억원을 증여받으면 증여세 산출세액은 얼마인가요?"
    minor = "미성년자는 2,000만원을 공제하여 과세표준은 19억 8,000만원이고 산출세액은 6억 3,200만원입니다."
    assert check_arithmetic(make_pair(question, minor)) == []
    spouse_q = "남편이 아내에게 10억원을 증여하면 증여세는 얼마인가요?"
    assert (
        check_arithmetic(make_pair(spouse_q, "배우자공제 6억원을 빼면 과세표준은 4억원이고 증여세는 7,000만원입니다."))
        == []
    )
    wrong = check_arithmetic(make_pair(spouse_q, "배우자 간 증여도 과세되며 증여세는 2억 4,000만원입니다."))
    assert rules_of(wrong) == ["calc_answer_mismatch"]


def test_inheritance_tax_from_a_stated_base():
    question = "상속세 과세표준이 15억원이면 상속세 산출세액은 얼마인가요?"
    assert (
        check_arithmetic(make_pair(question, "15억원 × 40% − 1억 6,000만원으로 산출세액은 4억 4,000만원입니다.")) == []
    )
    assert rules_of(check_arithmetic(make_pair(question, "상속세 산출세액은 3억원입니다."))) == ["calc_answer_mismatch"]


def gift_calc(result_won, **inputs) -> Calculation:
    return Calculation(kind="gift_tax", year=2024, inputs=inputs, result_won=result_won, result_field="computed_tax")


def test_calculation_payloads_are_recomputed():
    inputs = {"amount_won": 2_000_000_000, "relationship": "직계존속"}
    ok = make_pair(SEED_QUESTION, CORRECT_ANSWER, style="calculation", calculation=gift_calc(620_000_000, **inputs))
    assert check_arithmetic(ok) == []
    wrong = make_pair(SEED_QUESTION, CORRECT_ANSWER, style="calculation", calculation=gift_calc(90_000_000, **inputs))
    assert rules_of(check_arithmetic(wrong)) == ["calc_mismatch"]
    broken = make_pair(SEED_QUESTION, CORRECT_ANSWER, calculation=gift_calc(620_000_000, relationship="직계존속"))
    assert rules_of(check_arithmetic(broken)) == ["calc_bad_payload"]
    old = Calculation(kind="gift_tax", year=2001, inputs=inputs, result_won=620_000_000)
    unverified = check_arithmetic(make_pair(SEED_QUESTION, CORRECT_ANSWER, calculation=old))
    assert [(f.rule, f.action) for f in unverified] == [("calc_unverified", "review")]  # build.unverified_calculations
    kept = check_arithmetic(make_pair(SEED_QUESTION, CORRECT_ANSWER, calculation=old), policy="keep")
    assert [(f.rule, f.action) for f in kept] == [("calc_unverified", "flag")]


def test_payload_right_but_answer_text_wrong_is_rejected():
    pair = make_pair(
        SEED_QUESTION,
        SEED_WRONG_ANSWER,
        calculation=gift_calc(620_000_000, amount_won=2_000_000_000, relationship="직계존속"),
    )
    assert rules_of(check_arithmetic(pair)) == ["calc_answer_mismatch"]


def test_other_deductions_may_be_denied():
    answer = CORRECT_ANSWER + " 기한 후 신고라면 신고세액공제는 적용되지 않고, 혼인공제는 받을 수 없습니다."
    assert check_arithmetic(make_pair(SEED_QUESTION, answer)) == []


def test_answers_without_a_computation_are_left_alone():
    assert (
        check_arithmetic(
            make_pair("증여세 신고기한은 언제인가요?", "증여받은 날이 속하는 달의 말일부터 3개월 이내입니다.")
        )
        == []
    )


# --------------------------------------------------------------------------------------------------- contamination
def test_planted_kmmlu_question_is_found(shared_dir):
    path = shared_dir / "benchmarks" / "kmmlu" / "Taxation-test.csv"
    if not path.exists():
        pytest.skip("KMMLU Taxation-test.csv is absent")
    benchmark = load_benchmark_questions([str(path)], 13)
    assert len(benchmark) >= 150
    planted = benchmark[1].question  # "국세기본법 의 규정이 … 우선하여 적용되는 것은?"
    pairs = [
        make_pair("공익신탁의 이익은 과세되나요?", GOOD_ANSWER),
        make_pair(planted.replace(" ", ""), "연대납세의무자에 대한 서류의 송달에 관한 규정이 우선 적용됩니다."),
        make_pair("다음 질문에 답하세요.", f"문제: {planted} 정답은 소급과세의 금지입니다."),
    ]
    hits = find_contamination(pairs, benchmark, 13, 0.3)
    assert set(hits) == {1, 2}
    share, item = hits[1]
    assert share == 1.0 and item.where == "Taxation-test.csv:3"


def test_contamination_file_errors_name_the_key_and_line(tmp_path):
    with pytest.raises(SlmError, match=r"build\.contamination_files\[0\]: .*missing\.csv not found"):
        load_benchmark_questions([str(tmp_path / "missing.csv")], 13)
    bad = tmp_path / "bad.csv"
    bad.write_text("text,label\n어떤 문장,1\n", encoding="utf-8")
    with pytest.raises(SlmError, match=r"bad\.csv:1: no 'question' column"):
        load_benchmark_questions([str(bad)], 13)


def _article(law: str, number: int, source: str, **meta) -> Document:
    return Document(
        id=f"doc-{law}-{number}-{source}",
        kind="statute_article",
        title=f"{law} 제{number}조",
        text="…",
        source=source,
        law_name=law,
        effective_date="2026-10-02",
        article_no=number,
        meta=meta,
    )


def test_a_source_that_declares_its_law_complete_or_an_excerpt_decides_over_the_article_numbers():
    from slm_datagen.dataset.grounding import whole_law_versions

    # a whole legalize-kr file whose deleted 제2조 was not kept: the gap does not make it partial
    whole = [_article("국세기본법", n, "legalize:kr/국세기본법/법률.md", complete_law=True) for n in (1, 3)]
    # an excerpt that happens to start at 제1조 and has no gap is still an excerpt
    excerpt = [_article("소득세법", n, "bundled:legalize/소득세법", complete_law=False) for n in (1, 2)]
    # no declaration: 제1조 to the last without a gap from one whole-law response counts as whole
    plain = [_article("법인세법", n, "lawgo:lawService?MST=1") for n in (1, 2)]
    assert whole_law_versions(whole + excerpt + plain) == {"국세기본법": ["2026-10-02"], "법인세법": ["2026-10-02"]}


def test_a_bare_paragraph_in_an_answer_from_a_statute_article_is_that_articles():
    from slm_datagen.dataset.grounding import pair_citations

    answer = "제55조제1항에 따른 세율을 적용하고, 제1항부터 제4항까지 및 제7항을 적용할 때 큰 세액으로 합니다."
    pair = make_pair("둘 이상 양도하면?", answer, law_name="소득세법")
    found = {(c.article, c.paragraph) for c in pair_citations(pair, "소득세법", ("소득세법", 104, 0))}
    assert found == {(55, 1), (104, 1), (104, 4), (104, 7)}
    # without a source article the chain rule still applies ("제55조제1항 및 제2항" is 제55조's)
    chained = make_pair("세율은?", "제55조제1항 및 제2항에 따릅니다.", law_name="소득세법")
    assert {(c.article, c.paragraph) for c in pair_citations(chained, "소득세법", ("소득세법", 104, 0))} == {
        (55, 1),
        (55, 2),
    }
