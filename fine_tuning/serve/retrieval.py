"""`--retrieve K` for `slm ask`, `slm chat` and `slm serve`: the top-k articles of the run's index in the user message,
and the answer's citations checked against them.

    retriever = open_retriever(source, index=None, k=5, as_of=None)    # runs/<run>/index, law in force today
    messages, retrieved = retrieve(retriever, [{"role": "user", "content": "소득세 세율은?"}])
    ...generate with `messages`...
    retrieved.checked(answer).citation_check.cited_not_retrieved     # what the model cited from its own memory

Only the last user message gets the articles (laid out by `slm_datagen.index.context.question_with_context`, the one
layout training pairs use too); earlier turns stay as the user wrote them, so a long chat does not carry every
turn's articles. A message that already holds an article block (a RAFT-style prompt) is sent as it is. Works the
same for every engine (transformers, llama.cpp, vLLM): it only rewrites the messages. No torch here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict

from slm_datagen.index.context import CitationCheck, article_from, check_citations, has_context, question_with_context
from slm_datagen.taxlaw.citations import find_citations
from slm_forest.errors import SlmError


class RetrievedArticle(BaseModel):
    """What the user is shown of one retrieved article (the prompt holds its text too)."""

    model_config = ConfigDict(extra="forbid")

    rank: int
    citation: str
    title: str
    effective_date: str | None  # 시행일자 of the version put in the prompt
    in_force: bool | None  # False: the only version held starts after as_of
    match: str  # "citation" (the question cites it) or "bm25"


class Retrieved(BaseModel):
    """The retrieval of one question: what went into the prompt, and after the answer, the citation check."""

    model_config = ConfigDict(extra="forbid")

    as_of: str
    articles: list[RetrievedArticle]
    missing: list[str] = []  # articles the question cites that the index does not hold
    citation_check: CitationCheck | None = None

    def checked(self, answer: str) -> Retrieved:
        return self.model_copy(update={"citation_check": check_citations(answer, [a.citation for a in self.articles])})


@dataclass
class Retriever:
    index: Any  # slm_datagen.index.search.RetrievalIndex (thread-safe for searches)
    k: int
    as_of: str | None = None  # None: the law in force on the day of each question

    def close(self) -> None:
        self.index.close()


def index_dir_for(source: Any, index: str | Path | None) -> Path:
    """`--index DIR` when given, else the index of the run the model came from (runs/<run>/index)."""
    if index is not None:
        return Path(index)
    run_dir = getattr(source, "run_dir", None)
    if run_dir is None:
        raise SlmError(
            f"--retrieve: {source.describe()} belongs to no run, so there is no index to search",
            "pass --index runs/<run>/index (built by `slm index CONFIG`), or --run NAME",
        )
    return Path(run_dir) / "index"


def open_index(index_dir: Path) -> Any:
    """The index in `index_dir`, refusing one whose `slm index` stage did not finish."""
    from slm_datagen.index.search import load_index  # noqa: PLC0415 - bm25s/Kiwi only when retrieval is used
    from slm_forest.manifest import read_manifest  # noqa: PLC0415

    manifest = read_manifest(index_dir) if index_dir.is_dir() else None
    if manifest is None or not manifest.complete or not (index_dir / "index.json").is_file():
        raise SlmError(f"--retrieve: no finished index in {index_dir}", "run `slm index CONFIG` first")
    return load_index(index_dir)


def open_retriever(source: Any, index: str | Path | None, k: int, as_of: str | None) -> Retriever:
    from slm_datagen.index.versions import as_of_number  # noqa: PLC0415

    if as_of is not None:
        as_of_number(as_of)  # a bad --as-of fails before the model loads
    return Retriever(open_index(index_dir_for(source, index)), k=k, as_of=as_of)


def law_in_context(messages: list[dict[str, str]]) -> str | None:
    """The law the conversation last cited by name, for a follow-up's "법 제55조" or bare "제55조"."""
    for message in reversed(messages):
        citations = find_citations(message.get("content") or "")
        if citations:
            return citations[-1].law
    return None


def retrieve(
    retriever: Retriever, messages: list[dict[str, str]], k: int | None = None, as_of: str | None = None
) -> tuple[list[dict[str, str]], Retrieved]:
    """The messages with the top-k articles put before the last user question, and what was retrieved."""
    from slm_datagen.index.search import search  # noqa: PLC0415
    from slm_datagen.index.versions import as_of_number, number_to_date  # noqa: PLC0415

    question = messages[-1]["content"]
    if has_context(question):  # the caller brought the articles (a RAFT-style prompt): never a second block
        return list(messages), Retrieved(as_of=number_to_date(as_of_number(as_of or retriever.as_of)), articles=[])
    result = search(
        retriever.index, question, k=k or retriever.k, as_of=as_of or retriever.as_of, law=law_in_context(messages)
    )
    content = question_with_context(question, [article_from(hit) for hit in result.hits])
    articles = [
        RetrievedArticle(
            rank=hit.rank,
            citation=hit.citation,
            title=hit.title,
            effective_date=hit.effective_date,
            in_force=hit.in_force,
            match=hit.match,
        )
        for hit in result.hits
    ]
    sent = [*messages[:-1], {**messages[-1], "content": content}]
    return sent, Retrieved(as_of=result.as_of, articles=articles, missing=result.missing)


def print_retrieved(retrieved: Retrieved) -> None:
    """The articles put in the prompt, on stderr (the answer alone goes to stdout)."""
    from rich.markup import escape  # noqa: PLC0415

    from slm_forest.progress import console  # noqa: PLC0415

    if not retrieved.articles:
        console.print(f"[dim]retrieved: nothing matched in the law in force on {retrieved.as_of}[/dim]")
    else:
        console.print(f"[dim]retrieved (law in force on {retrieved.as_of}):[/dim]")
    for article in retrieved.articles:
        when = f"시행 {article.effective_date}" if article.effective_date else ""
        if article.in_force is False:
            when += " (not yet in force)"
        console.print(f"[dim]  [{article.rank}] {escape(article.citation)} {escape(article.title)}  {when}[/dim]")
    if retrieved.missing:
        console.print(f"[yellow]cited but not in the index: {escape(', '.join(retrieved.missing))}[/yellow]")


def print_check(check: CitationCheck | None) -> None:
    """After the answer: which of its citations came from the retrieved law, and which the model supplied itself."""
    from rich.markup import escape  # noqa: PLC0415

    from slm_forest.progress import console  # noqa: PLC0415

    if check is None:
        return
    if not check.cited_and_retrieved and not check.cited_not_retrieved:
        console.print("[dim]citations: the answer cites no article[/dim]")
        return
    if check.cited_and_retrieved:
        console.print(f"[green]cited and retrieved:[/green] {escape(', '.join(check.cited_and_retrieved))}")
    if check.cited_not_retrieved:
        console.print(
            f"[yellow]cited, not retrieved (check these against the law):[/yellow] "
            f"{escape(', '.join(check.cited_not_retrieved))}"
        )
