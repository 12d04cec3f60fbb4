"""How retrieved law goes into a prompt, and how an answer's citations are checked against it.

One layout for every place a model sees retrieved articles: RAFT-style training pairs (`distill.context`),
`slm ask/chat/serve --retrieve`, and `slm evaluate` with retrieval. A model tuned on one layout and asked in another
loses what it learned, so nothing else may format context. The articles come first and the question last, so the
stable part of the prompt is a prefix (cacheable by providers, identical between training and answering).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from pydantic import BaseModel, ConfigDict

from slm_datagen.taxlaw.citations import Citation, find_citations, format_citation

CONTEXT_HEADER = "참고 법령:"
QUESTION_HEADER = "질문:"
DEFAULT_MAX_CHARS = 600  # per article: a tiny model's max_length of ~1k tokens holds the question and ~3 articles


class ContextArticle(BaseModel):
    """One article (or ruling) as a prompt shows it."""

    model_config = ConfigDict(extra="forbid")

    citation: str  # "소득세법 제55조", or a ruling's document number
    title: str = ""
    effective_date: str | None = None  # 시행일자 of the version shown
    text: str


class CitationCheck(BaseModel):
    """An answer's article citations split by whether retrieval supplied them (compared at 법령 + 조 level)."""

    model_config = ConfigDict(extra="forbid")

    cited_and_retrieved: list[str]
    cited_not_retrieved: list[str]


def article_from(hit: object) -> ContextArticle:
    """A ContextArticle from anything with citation/title/text/effective_date attributes (an index Hit, a Chunk)."""
    return ContextArticle(
        citation=str(getattr(hit, "citation", "")),
        title=str(getattr(hit, "title", "") or ""),
        effective_date=getattr(hit, "effective_date", None),
        text=str(getattr(hit, "text", "")),
    )


def render_context(articles: Sequence[ContextArticle], max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The numbered article block: '[1] 소득세법 제55조 (세율, 시행 2025-01-01)' then the text, cut at max_chars."""
    blocks: list[str] = []
    for number, article in enumerate(articles, start=1):
        details = [part for part in (article.title.strip(), _effective(article.effective_date)) if part]
        heading = f"[{number}] {article.citation}" + (f" ({', '.join(details)})" if details else "")
        text = article.text.strip()
        if len(text) > max_chars:
            text = text[:max_chars].rstrip() + " …"
        blocks.append(f"{heading}\n{text}")
    return CONTEXT_HEADER + "\n" + "\n\n".join(blocks)


def question_with_context(question: str, articles: Sequence[ContextArticle], max_chars: int = DEFAULT_MAX_CHARS) -> str:
    """The user message: the article block, then the question. No articles: the question alone (as without RAG)."""
    if not articles:
        return question
    return f"{render_context(articles, max_chars)}\n\n{QUESTION_HEADER} {question.strip()}"


def has_context(text: str) -> bool:
    """True when the message already opens with an article block (a RAFT pair, a prompt built elsewhere with this
    layout): retrieval must not put a second one before it."""
    return text.lstrip().startswith(CONTEXT_HEADER + "\n")


def question_of(text: str) -> str:
    """The question part of a user message that holds an article block; any other message as it is."""
    if not has_context(text):
        return text
    marker = f"\n\n{QUESTION_HEADER} "
    return text.rsplit(marker, 1)[1].strip() if marker in text else text


def check_citations(answer: str, retrieved: Iterable[str]) -> CitationCheck:
    """Which article citations of the answer were in the retrieved set, and which the model brought itself."""
    supplied = {_article_level(c) for text in retrieved for c in _articles(text)}
    inside: list[str] = []
    outside: list[str] = []
    for label in dict.fromkeys(_article_level(c) for c in _articles(answer)):
        (inside if label in supplied else outside).append(label)
    return CitationCheck(cited_and_retrieved=inside, cited_not_retrieved=outside)


def _articles(text: str) -> list[Citation]:
    return find_citations(text)


def _article_level(citation: Citation) -> str:
    return format_citation(
        citation.model_copy(update={"paragraph": None, "item": None, "item_branch": None, "subitem": None})
    )


def _effective(day: str | None) -> str:
    return f"시행 {day}" if day else ""
