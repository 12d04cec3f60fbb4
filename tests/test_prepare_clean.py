"""prepare/clean.py: NFC, whitespace of every width, leftover markup; the line structure survives."""

from __future__ import annotations

import unicodedata

from slm_datagen.prepare.clean import clean_document, clean_text
from slm_forest.records import Document


def test_decomposed_hangul_becomes_nfc():
    decomposed = unicodedata.normalize("NFD", "비과세소득")
    assert len(decomposed) > len("비과세소득")  # the fixture really is decomposed (jamo)
    assert clean_text(decomposed) == "비과세소득"


def test_full_width_spaces_nbsp_tabs_and_runs_become_one_space():
    text = "제12조(비과세소득)\u3000다음\u00a0각 호의\t소득에   대해서는 \u3000 소득세를 과세하지 아니한다.   "
    assert clean_text(text) == "제12조(비과세소득) 다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다."


def test_line_structure_is_kept_and_edges_trimmed():
    text = "  제12조(비과세소득)  \n\u3000① 다음 각 호의 소득\n    1. 공익신탁의 이익 \n\n\n\n② 삭제"
    assert clean_text(text) == "제12조(비과세소득)\n① 다음 각 호의 소득\n1. 공익신탁의 이익\n\n② 삭제"


def test_markup_becomes_breaks_and_entities_text_but_amendment_tags_stay():
    text = (
        "① 과세한다.<br/>1. 이자소득<BR>2. 배당소득 &amp; 사업소득 <b>중요</b> &lt;개정 2020.12.29&gt; <개정 2021.1.1>"
    )
    assert clean_text(text) == "① 과세한다.\n1. 이자소득\n2. 배당소득 & 사업소득 중요 <개정 2020.12.29> <개정 2021.1.1>"


def test_invisible_characters_and_crlf():
    assert clean_text("납세\u200b의무자\ufeff는\r\n신고한다.\r") == "납세의무자는\n신고한다."


def test_cleaning_is_idempotent():
    messy = "제1조(목적)\u3000이 법은<br/>  과세를 &nbsp;정한다.  \n\n\n② 끝"
    once = clean_text(messy)
    assert clean_text(once) == once


def test_clean_document_cleans_every_field_chunks_use():
    doc = Document(
        id="d",
        kind="interpretation",
        title="쟁점\u3000제목",
        text="본문<br/>둘째 줄",
        source="t",
        question="질의\u00a0요지 ",
        answer=" 답변&amp;요지",
        related_laws=["소득세법\u3000제12조", "  "],
    )
    cleaned = clean_document(doc)
    assert (cleaned.title, cleaned.text, cleaned.question, cleaned.answer) == (
        "쟁점 제목",
        "본문\n둘째 줄",
        "질의 요지",
        "답변&요지",
    )
    assert cleaned.related_laws == ["소득세법 제12조"]
    assert doc.text == "본문<br/>둘째 줄"  # the input record is not modified
