"""The one prompt layout for retrieved law (training pairs, ask/serve, evaluate share it)."""

from slm_datagen.index.context import (
    CONTEXT_HEADER,
    ContextArticle,
    check_citations,
    question_with_context,
    render_context,
)


def _article(citation: str = "소득세법 제55조", text: str = "① 거주자의 종합소득에 대한 소득세는") -> ContextArticle:
    return ContextArticle(citation=citation, title="세율", effective_date="2025-01-01", text=text)


def test_articles_come_first_and_the_question_last():
    prompt = question_with_context("세율은 얼마인가요?", [_article(), _article("법인세법 제55조")])
    assert prompt.startswith(CONTEXT_HEADER + "\n[1] 소득세법 제55조 (세율, 시행 2025-01-01)\n")
    assert "\n\n[2] 법인세법 제55조" in prompt
    assert prompt.endswith("\n\n질문: 세율은 얼마인가요?")


def test_no_articles_leaves_the_question_as_it_is():
    assert question_with_context("세율은?", []) == "세율은?"


def test_long_articles_are_cut_with_a_mark():
    block = render_context([_article(text="가" * 50)], max_chars=10)
    assert block.endswith("가" * 10 + " …")


def test_citations_are_compared_at_article_level():
    check = check_citations(
        "소득세법 제55조 제1항과 상속세 및 증여세법 제53조에 따라 계산합니다.", ["소득세법 제55조", "소득세법 제47조"]
    )
    assert check.cited_and_retrieved == ["소득세법 제55조"]
    assert check.cited_not_retrieved == ["상속세 및 증여세법 제53조"]
