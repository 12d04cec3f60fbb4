"""law.go.kr response parsing: real responses from ../shared and fixtures for every documented quirk."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from slm_datagen.collect.dates import iso_date
from slm_datagen.collect.lawgo_parse import parse_expc, parse_law, parse_prec
from slm_datagen.collect.lawgo_xml import xml_to_dict
from slm_datagen.collect.lawtext import clean_field, is_deleted_article
from slm_datagen.collect.problems import InputProblem
from slm_datagen.collect.references import parse_references, split_related_laws

FIXTURES = Path(__file__).parent / "fixtures" / "collect" / "lawgo"


def load(name: str) -> dict:
    return json.loads((FIXTURES / name).read_text(encoding="utf-8"))


def by_label(docs):
    return {d.citation(): d for d in docs}


# ------------------------------------------------------------------------------------------------ real responses
def test_real_income_tax_article_12(shared_dir):
    response = json.loads((shared_dir / "corpus/lawgo/eflaw_JO_소득세법_제12조.json").read_text(encoding="utf-8"))
    (doc,) = parse_law(response, source="t")
    assert doc.law_name == "소득세법" and doc.law_id == "001565"
    assert (doc.article_no, doc.article_branch, doc.article_title) == (12, None, "비과세소득")
    assert doc.effective_date == "2026-07-01" and doc.promulgation_date == "2025-12-23"
    # the two 전문 rows became headings, without their amendment tags
    assert doc.headings == ["제2장 거주자의 종합소득 및 퇴직소득에 대한 납세의무", "제1절 비과세"]
    lines = doc.text.split("\n")
    assert lines[0] == "제12조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다."
    assert lines[1] == "1. 「공익신탁법」에 따른 공익신탁의 이익"
    assert lines[3] == "  가. 논ㆍ밭을 작물 생산에 이용하게 함으로써 발생하는 소득"
    # 목내용 given as a list of lists: its sub-lines are kept, indented under the 목
    assert any(line.startswith("    1) ") for line in lines)
    assert "<개정" not in doc.text and "[전문개정" not in doc.text and "\u3000" not in doc.text
    assert "전문개정 2009.12.31" in doc.amendments
    assert doc.amendments[0].startswith("개정 2010.12.27, 2011.7.25")
    assert doc.title == "소득세법 제12조(비과세소득)" and not doc.deleted


def test_real_vat_article_46_keeps_deleted_subitems_and_brackets(shared_dir):
    response = json.loads((shared_dir / "corpus/lawgo/eflaw_JO_부가가치세법_제46조.json").read_text(encoding="utf-8"))
    (doc,) = parse_law(response, source="t")
    assert doc.headings == ["제4절 세액공제"]
    assert doc.text.startswith("제46조(신용카드 등의 사용에 따른 세액공제 등)\n① 제1호에 해당하는 사업자가")
    assert "  가. 삭제\n  나. 삭제" in doc.text  # a deleted 목 stays, its date moves to amendments
    assert "삭제 2020.12.22" in doc.amendments
    # square brackets that are statute text are not amendment tags
    assert "세액[제37조제2항에 따른 납부세액에서" in doc.text
    assert [line[0] for line in doc.text.split("\n") if line[:1] in "①②③④⑤"] == list("①②③④⑤")


def test_same_text_gives_same_id_and_an_amendment_a_new_one(shared_dir):
    response = json.loads((shared_dir / "corpus/lawgo/eflaw_JO_부가가치세법_제46조.json").read_text(encoding="utf-8"))
    (first,) = parse_law(response, source="a")
    (again,) = parse_law(response, source="b")
    assert first.id == again.id
    unit = response["법령"]["조문"]["조문단위"][1]
    unit["항"][3]["항내용"] = unit["항"][3]["항내용"].replace("지도할 수 있다", "지도하여야 한다")
    (amended,) = parse_law(response, source="a")
    assert amended.id != first.id
    response["법령"]["기본정보"]["시행일자"] = "20270101"
    (later,) = parse_law(response, source="a")
    assert later.id != amended.id and later.effective_date == "2027-01-01"


# ---------------------------------------------------------------------------------------------------- quirks
def test_quirks_fixture():
    docs = by_label(parse_law(load("law_quirks.json"), source="t"))
    assert list(docs) == [
        "조세특례제한법 제5조의2",
        "조세특례제한법 제6조",
        "조세특례제한법 제7조",
        "조세특례제한법 제8조",
    ]

    branch = docs["조세특례제한법 제5조의2"]
    assert (branch.article_no, branch.article_branch) == (5, 2)
    assert branch.headings == ["제2장 직접국세", "제1절 중소기업에 대한 조세특례"]
    # <br/> is a line break; full-width and no-break spaces are plain spaces; tags went to amendments
    assert branch.text == (
        "제5조의2(중소기업 특별세액감면의 특례)\n① 중소기업에 대해서는\n대통령령으로 정하는 바에 따라 세액을 감면한다.\n"
        "② 제1항에 따른 감면의 신청 절차는 대통령령으로 정한다."
    )
    assert branch.amendments == ["개정 2021.12.28, 2023.12.31", "신설 2022.12.31", "본조신설 2020.12.29"]

    deleted = docs["조세특례제한법 제6조"]
    assert deleted.deleted and deleted.text == "제6조 삭제" and deleted.amendments == ["삭제 2010.12.27"]

    regrouped = docs["조세특례제한법 제7조"]
    # a new 절 heading replaces the previous 절 under the same 장
    assert regrouped.headings == ["제2장 직접국세", "제2절 연구 및 인력개발에 대한 조세특례"]
    # 목 given beside 호 at 항 level: each run starting at 가. goes to the next 호 that introduces 목s
    assert regrouped.text.split("\n")[1:] == [
        "① 내국인이 다음 각 호의 비용을 지출한 경우에는 해당 금액을 공제한다.",
        "1. 연구개발비: 다음 각 목의 어느 하나에 해당하는 비용",
        "  가. 인건비",
        "  나. 재료비",
        "2. 인력개발비",
        "3. 시설투자비: 다음 각 목의 어느 하나에 해당하는 비용",
        "  가. 연구시설 투자비",
        "  나. 시험설비 투자비",
        "  다. 그 밖의 설비 투자비",
    ]

    table = docs["조세특례제한법 제8조"]
    assert "  [표]" in table.text.split("\n") and "<img" not in table.text
    assert table.meta["tables"] == 1 and "[표]" in table.meta["note"]
    assert table.text.endswith(
        "  가. 과세표준이 2억원 이하인 경우\n    1) 중소기업: 100분의 5\n    2) 그 밖의 기업: 100분의 10"
    )
    assert table.amendments == ["제목개정 2019.12.31"]


def test_single_dicts_instead_of_lists_and_date_spellings():
    (doc,) = parse_law(load("law_single_dict.json"), source="t")
    assert doc.text == (
        "제3조(과세문서 및 세액)\n① 인지세를 납부하여야 할 문서와 세액은 다음과 같다.\n"
        "1. 부동산의 소유권 이전에 관한 증서\n  가. 기재금액이 1천만원 초과 3천만원 이하인 경우: 2만원"
    )
    assert doc.effective_date == "2024-01-01" and doc.promulgation_date == "2023-12-31"


def test_xml_and_json_of_the_same_response_give_identical_documents():
    from_json = parse_law(load("law_pair.json"), source="t")
    from_xml = parse_law(xml_to_dict((FIXTURES / "law_pair.xml").read_text(encoding="utf-8")), source="t")
    assert [d.model_dump() for d in from_xml] == [d.model_dump() for d in from_json]
    assert from_json[0].meta["법령키"] == "0015652025122321221"  # an XML attribute, read like the JSON key
    assert from_json[1].deleted and from_json[1].article_branch == 2


def test_precedent_json_and_xml():
    doc = parse_prec(load("prec_detail.json"), source="t")
    xml_doc = parse_prec(xml_to_dict((FIXTURES / "prec_detail.xml").read_text(encoding="utf-8")), source="t")
    assert doc.model_dump() == xml_doc.model_dump()
    assert (doc.kind, doc.case_no, doc.court, doc.decision_date) == ("precedent", "2022두64143", "대법원", "2024-09-12")
    assert doc.meta["판례일련번호"] == "241591"  # detail's 판례정보일련번호
    assert doc.holdings.startswith("구 상속세 및 증여세법 제3조의2") and "<br/>" not in doc.text
    assert [r.label() for r in doc.references] == [
        "상속세 및 증여세법 제3조",
        "상속세 및 증여세법 제3조의2 제1항",
        "상속세 및 증여세법 제13조",
    ]


def test_precedent_list_style_id_and_dotted_date():
    body = load("prec_detail.json")["PrecService"]
    body["판례일련번호"] = body.pop("판례정보일련번호")
    body["선고일자"] = "2024.9.12."
    doc = parse_prec({"PrecService": body}, source="t")
    assert doc.meta["판례일련번호"] == "241591" and doc.decision_date == "2024-09-12"


def test_expc_question_answer_reasoning():
    doc = parse_expc(load("expc_detail.json"), source="t")
    xml_doc = parse_expc(xml_to_dict((FIXTURES / "expc_detail.xml").read_text(encoding="utf-8")), source="t")
    assert doc.model_dump() == xml_doc.model_dump()
    assert doc.kind == "interpretation" and doc.doc_no == "20-0512" and doc.decision_date == "2020-11-05"
    assert doc.question.endswith("육아휴직 급여가 포함되는지?") and doc.answer == "포함됩니다."
    assert doc.reasoning.startswith("「소득세법」 제12조제3호 마목은")
    assert "【질의요지】" in doc.text and "【회답】" in doc.text and "【이유】" in doc.text


@pytest.mark.parametrize(
    "response, message",
    [
        ({"법령": {"기본정보": {"시행일자": "20240101"}}}, "법령명_한글 is missing"),
        (
            {"법령": {"기본정보": {"법령명_한글": "소득세법"}, "조문": {"조문단위": [{"조문번호": "x"}]}}},
            "조문번호 is 'x'",
        ),
        ({"LawSearch": {}}, "no 법령 object"),
    ],
)
def test_malformed_law_responses_name_the_position(response, message):
    with pytest.raises(InputProblem) as info:
        parse_law(response, source="t")
    assert message in str(info.value)


def test_bad_article_number_names_the_unit():
    response = {"법령": {"기본정보": {"법령명_한글": "소득세법"}, "조문": {"조문단위": [{"조문번호": "x"}]}}}
    with pytest.raises(InputProblem) as info:
        parse_law(response, source="t")
    assert info.value.where == "법령.조문.조문단위[0]"


# ----------------------------------------------------------------------------------------------- text, dates, refs
def test_clean_field_moves_tags_and_keeps_words():
    cleaned = clean_field(
        "① 세액은　다음과 같다. <개정 2020. 12. 29.> [종전 제5조는 제6조로 이동 <2010.1.1>]<br/>2. 삭제 <2013.1.1>"
    )
    assert cleaned.lines == ["① 세액은 다음과 같다.", "2. 삭제"]
    assert cleaned.amendments == ["종전 제5조는 제6조로 이동 2010.1.1", "개정 2020. 12. 29.", "삭제 2013.1.1"]
    assert is_deleted_article("제5조(목적) 삭제") and not is_deleted_article("제5조(삭제된 조문의 효력) 삭제된 조문은")


def test_box_drawing_table_rows_get_their_line_breaks_back():
    cleaned = clean_field('1. 한도<img src="x.do?flSeq=1">┌──┐│ A : 1 ││ B : 2 │└──┘</img>')
    assert cleaned.lines == ["1. 한도", "[표]", "┌──┐", "│ A : 1 │", "│ B : 2 │", "└──┘"] and cleaned.tables == 1


@pytest.mark.parametrize(
    "raw, iso",
    [
        ("20240912", "2024-09-12"),
        ("2024.09.12", "2024-09-12"),
        ("2024.9.22.", "2024-09-22"),
        ("2024-09-12", "2024-09-12"),
        ("2024. 9. 12.", "2024-09-12"),
        ("42890525", "1956-05-25"),
        ("20240230", None),
        ("", None),
        ("미상", None),
    ],
)
def test_dates(raw, iso):
    assert iso_date(raw) == iso


def test_related_laws_and_references_from_a_casebook_entry():
    text = "국세기본법 제26조의2 【국세의 부과제척기간】 국세기본법 시행령 제12조의3 【국세 부과제척기간의 기산일】"
    assert split_related_laws(text) == ["국세기본법 제26조의2", "국세기본법 시행령 제12조의3"]
    assert [r.label() for r in parse_references(text)] == ["국세기본법 제26조의2", "국세기본법 시행령 제12조의3"]
    assert split_related_laws("형법 제35조 / [2] 소득세법 제94조") == ["형법 제35조", "소득세법 제94조"]


def _refs(text: str, default_law: str | None = None) -> list[tuple[str, bool]]:
    return [(r.label(), r.former) for r in parse_references(text, default_law)]


def test_a_note_in_parentheses_does_not_capture_the_provisions_after_it():
    assert _refs("소득세법 제2조 제1항(현행 제4조 제1항 참조), 제3항") == [
        ("소득세법 제2조 제1항", False),
        ("소득세법 제4조 제1항", False),  # the note's bare article belongs to the law just cited
        ("소득세법 제2조 제3항", False),  # continues 제2조, not the 제4조 inside the note
    ]
    assert _refs("제2조 제1항(현행 제4조 제1항 참조), 제3항", default_law="소득세법")[2] == (
        "소득세법 제2조 제3항",
        False,
    )
    # NTS shorthand keeps its (n) = 제n호; a title in parentheses cites nothing.
    assert _refs("법인령§81③(2)나, 소득세법 제3조(정의) 제2항") == [
        ("법인세법 시행령 제81조 제3항 제2호 나목", False),
        ("소득세법 제3조 제2항", False),
    ]


def test_former_texts_are_kept_and_marked():
    assert _refs("소득세법 제1조, 구법 제41조 제2항") == [("소득세법 제1조", False), ("소득세법 제41조 제2항", True)]
    assert _refs("구법 제41조 제2항", default_law="법인세법") == [("법인세법 제41조 제2항", True)]
    assert _refs("구법 제41조 제2항") == [("구법 제41조 제2항", True)]  # no law in context: kept as written
    text = (
        "[1] 구 소득세법(2009. 12. 31. 법률 제9897호로 개정되기 전의 것) 제94조 제1항 제1호(현행 제94조 제1항 제1호 참조),"
        " 제3항 / [2] 소득세법 제1조, 같은 법 제2조"
    )
    assert _refs(text) == [
        ("소득세법 제94조 제1항 제1호", True),
        ("소득세법 제94조 제1항 제1호", False),  # 현행: the current text of the same provision
        ("소득세법 제94조 제3항", True),
        ("소득세법 제1조", False),
        ("소득세법 제2조", False),
    ]
    assert _refs("소득세법 제3조(2016. 12. 20. 개정되기 전의 것), 제4조") == [
        ("소득세법 제3조", True),
        ("소득세법 제4조", True),
    ]
    assert _refs("「구 소득세법」 제3조, 동법 제4조, 법인세법 제5조") == [
        ("소득세법 제3조", True),
        ("소득세법 제4조", True),
        ("법인세법 제5조", False),
    ]


def test_precedent_references_mark_the_former_law():
    doc = parse_prec(load("prec_detail.json"), source="t")
    assert all(r.former for r in doc.references)  # "구 상속세 및 증여세법(…) 제3조, 제3조의2 제1항, 제13조"
