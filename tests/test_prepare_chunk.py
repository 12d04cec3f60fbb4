"""prepare/chunk.py: cuts at 항/호 and section/paragraph boundaries, heading prefix, budget, record fields."""

from __future__ import annotations

import re

import pytest

from slm_datagen.prepare.chunk import chunk_document, is_deleted, split_text
from slm_forest.records import Document

CIRCLED = "①②③④⑤⑥⑦⑧⑨⑩⑪⑫"


def _hang(number: int) -> str:
    return (
        f"{CIRCLED[number - 1]} 거주자가 제{number}호의 요건을 갖춘 경우에는 해당 과세기간의 종합소득금액에서 대통령령으로 정하는 "
        f"금액을 공제한다. 이 경우 공제액의 계산 및 신청 절차에 필요한 사항은 대통령령으로 정한다."
    )


def _statute(text: str, **fields) -> Document:
    base = {"law_name": "소득세법", "article_no": 12, "article_title": "비과세소득", "effective_date": "2024-01-01"}
    return Document(
        id="law-1", kind="statute_article", title="소득세법 제12조", text=text, source="t", **{**base, **fields}
    )


def test_article_with_many_paragraphs_splits_at_hang_lines_with_the_heading_on_every_chunk():
    hangs = [_hang(n) for n in range(1, 13)]
    doc = _statute("제12조(비과세소득)\n" + "\n".join(hangs))
    texts = split_text(doc, 400)
    assert len(texts) > 3
    for text in texts:
        assert len(text) <= 400
        lines = text.split("\n")
        assert lines[0] == "제12조(비과세소득)"
        assert all(line in hangs for line in lines[1:])  # whole 항 lines only: no 항 is cut
    assert [line for text in texts for line in text.split("\n")[1:]] == hangs  # every 항 once, in order


def test_long_hang_splits_at_ho_lines_repeating_its_opening_line():
    lead = "③ 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다. <개정 2020.12.29>"
    items = [
        f"{n}. 「공익신탁법」에 따른 공익신탁의 이익으로서 대통령령으로 정하는 요건을 갖춘 제{n}종 소득"
        for n in range(1, 16)
    ]
    doc = _statute("\n".join(["제12조(비과세소득)", _hang(1), lead, *items, _hang(4)]))
    texts = split_text(doc, 300)
    assert all(len(text) <= 300 for text in texts)
    with_items = [text for text in texts if any(item in text for item in items)]
    assert len(with_items) > 1
    for text in with_items:
        # The repeated opening line drops the amendment tag; the first piece carries the original line itself.
        assert "③ 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다." in text
        assert text.startswith("제12조(비과세소득)\n")
    assert [item for item in items if not any(item in text for text in texts)] == []


def test_heading_is_built_from_fields_when_the_text_lacks_it():
    doc = _statute("\n".join(_hang(n) for n in range(1, 6)), article_branch=2)
    texts = split_text(doc, 300)
    assert len(texts) > 1
    assert all(text.startswith("제12조의2(비과세소득)\n") for text in texts)


def test_a_short_article_stays_one_chunk_exactly_as_written():
    text = "제1조(목적) 이 법은 개인의 소득에 대하여 소득의 성격과 납세자의 부담능력 등에 따라 적정하게 과세함을 목적으로 한다."
    assert split_text(_statute(text, article_no=1), 1500) == [text]


def _sentences(count: int, start: int = 0) -> list[str]:
    return [
        f"이 사건 처분의 근거가 된 제{n}차 세무조사에서 피고는 원고가 신고한 필요경비 중 일부를 부인하고 종합소득세를 경정하였다."
        for n in range(start, start + count)
    ]


def test_ruling_splits_at_sections_and_paragraphs_and_never_inside_a_sentence():
    paragraphs = [" ".join(_sentences(3, start)) for start in range(0, 30, 3)]
    text = "\n".join(["【질의요지】", paragraphs[0], "【회신】", *paragraphs[1:6], "【사실관계】", *paragraphs[6:]])
    doc = Document(id="r", kind="ruling", title="질의", text=text, source="t")
    texts = split_text(doc, 350)
    assert all(len(chunk) <= 350 for chunk in texts)
    every_sentence = set(_sentences(30))
    for chunk in texts:
        body = [line for line in chunk.split("\n") if not line.startswith("【")]
        pieces = [piece for line in body for piece in re.split(r"(?<=다\.) ", line)]
        assert set(pieces) <= every_sentence, chunk  # only whole sentences
    # Paragraphs that fit are not split: each such paragraph is a line of some chunk.
    assert all(any(p in chunk.split("\n") for chunk in texts) for p in paragraphs if len(p) < 300)
    # A chunk cut out of a section repeats the section's header line.
    assert all(chunk.startswith("【") for chunk in texts)


def test_a_single_sentence_longer_than_the_budget_is_cut_to_fit():
    sentence = "가" * 250 + " " + "나" * 250 + "다."
    doc = Document(id="r", kind="ruling", title="t", text=sentence, source="t")
    texts = split_text(doc, 200)
    assert all(len(chunk) <= 200 for chunk in texts)
    assert "".join(texts).replace(" ", "") == sentence.replace(" ", "")


def test_chunk_records_carry_provenance_and_official_question_answer():
    doc = Document(
        id="intp-1",
        kind="interpretation",
        title="주거이전비의 납세증명서 제출대상 여부",
        text="쟁점\n주거이전비 및 이사비의 납세증명서 제출 대상 여부\n답변요지\n납세증명서 제출대상에 해당하지 않음",
        source="bundled:casebook",
        doc_no="서면-2023-법규기본-2039",
        question="주거이전비 및 이사비의 납세증명서 제출 대상 여부",
        answer="납세증명서 제출대상에 해당하지 않음",
        related_laws=["국세징수법 제107조"],
    )
    [chunk] = chunk_document(doc, 1500, 20).chunks
    assert chunk.citation == "서면-2023-법규기본-2039"
    assert (chunk.question, chunk.answer, chunk.related_laws) == (doc.question, doc.answer, ["국세징수법 제107조"])
    assert chunk.n_chars == len(chunk.text) and chunk.n_tokens_est == -(-len(chunk.text) * 2 // 3)
    assert chunk.meta["doc_no"] == "서면-2023-법규기본-2039" and chunk.meta["source"] == "bundled:casebook"
    assert chunk_document(doc, 1500, 20).chunks[0].id == chunk.id  # content-derived, stable


def test_statute_chunks_carry_article_fields_and_ids_change_with_content():
    doc = _statute("제12조(비과세소득)\n" + "\n".join(_hang(n) for n in range(1, 9)), article_branch=None)
    chunks = chunk_document(doc, 400, 20).chunks
    assert [c.position for c in chunks] == list(range(len(chunks)))
    assert {(c.citation, c.law_name, c.article_no, c.effective_date) for c in chunks} == {
        ("소득세법 제12조", "소득세법", 12, "2024-01-01")
    }
    assert len({c.id for c in chunks}) == len(chunks)
    amended = doc.model_copy(update={"text": doc.text.replace("공제한다", "공제할 수 있다", 1)})
    assert chunk_document(amended, 400, 20).chunks[0].id != chunks[0].id


def test_short_chunks_are_skipped_and_counted():
    doc = Document(id="r", kind="ruling", title="t", text="회신 없음", source="t")
    result = chunk_document(doc, 1500, 20)
    assert result.chunks == [] and result.too_short == 1


def test_deleted_articles_are_recognised():
    assert is_deleted(_statute("제7조 삭제 <2010.12.27>"))
    assert is_deleted(_statute("제7조\n삭제"))
    assert is_deleted(_statute("제7조(과세기간)\n① 과세기간은 1월 1일부터 12월 31일까지로 한다.", deleted=True))
    assert not is_deleted(
        _statute("제7조(과세기간)\n① 과세기간은 1월 1일부터 12월 31일까지로 한다.\n② 삭제 <2013.1.1>")
    )
    assert not is_deleted(Document(id="r", kind="ruling", title="t", text="삭제", source="t"))


def test_a_token_budget_sets_the_character_budget_and_the_token_estimate():
    from slm_forest.config import PrepareConfig

    assert PrepareConfig().chunk_budget_chars == 1500  # max_chunk_chars when no token budget is set
    assert PrepareConfig(max_chunk_chars=900).chunk_budget_chars == 900
    cfg = PrepareConfig(max_chunk_chars=5000, max_chunk_tokens=160, chars_per_token=2.5)
    assert cfg.chunk_budget_chars == 400  # the token budget overrides max_chunk_chars
    doc = _statute("제12조(비과세소득)\n" + "\n".join(_hang(n) for n in range(1, 13)))
    chunks = chunk_document(doc, cfg.chunk_budget_chars, 20, cfg.chars_per_token).chunks
    assert len(chunks) > 3 and all(c.n_chars <= 400 for c in chunks)
    assert all(c.n_tokens_est == -(-c.n_chars * 2 // 5) <= 160 for c in chunks)  # ceil(chars / 2.5)
    with pytest.raises(ValueError, match="at least 100"):
        PrepareConfig(max_chunk_tokens=60)  # 90 characters
