"""Recall of the source article on the bundled corpus (goal: recall@5 ≥ 0.9 for questions made from a statute
article), through the real collect → prepare → index stages.

Three kinds of questions, each scored on its own:
- title: "소득세법의 '비과세소득' 규정은 어떤 내용인가요?" — the article's title, no citation, so BM25 alone;
- content: a line of the chunk that no other chunk of its article has (a 항 or 호 in the middle of a long article),
  its citations and provision numbers removed, asked as "… 에 대해 알려 주세요";
- teacher (slow): the offline teacher's statute questions from `slm distill`, as written (they cite the article:
  the exact look-up) and with every citation removed (BM25 alone).
"""

from __future__ import annotations

import re
from collections import defaultdict

import pytest

from slm_datagen.index import load_index, search
from slm_datagen.index.metrics import retrieval_metrics, source_rank
from slm_datagen.taxlaw.citations import find_citations
from slm_forest.config import load_config
from slm_forest.files import read_jsonl
from slm_forest.pipeline import run_stage
from slm_forest.records import Chunk

AS_OF = "2026-12-04"  # after every 시행일 of the bundled articles, so each is in force


@pytest.fixture(scope="module")
def bundled(tmp_path_factory):
    runs = tmp_path_factory.mktemp("recall")
    cfg = load_config(None, ["run_name=recall", f"runs_dir={runs}", "prepare.max_chunk_chars=1200"])
    for stage in ("collect", "prepare", "index"):
        run_stage(cfg, stage)
    chunks = [Chunk.model_validate(row) for row in read_jsonl(cfg.run_dir() / "prepare" / "chunks.jsonl")]
    index = load_index(cfg.run_dir() / "index")
    yield cfg, chunks, index
    index.close()


def strip_citations(text: str) -> str:
    for citation in sorted(find_citations(text), key=lambda c: -c.span[0]):
        text = text[: citation.span[0]] + text[citation.span[1] :]
    text = re.sub(r"제\d+(?:조|항|호)(?:의\d+)?|[가-하]목|부터|까지|\(\s*(?:및\s*)?\)", " ", text)
    return " ".join(text.split())


def title_question(chunk: Chunk) -> str:
    title = chunk.title.split("(", 1)[1].rstrip(")") if "(" in chunk.title else chunk.title
    return f"{chunk.law_name}의 '{title}' 규정은 어떤 내용인가요?"


def content_question(chunk: Chunk, siblings: list[Chunk]) -> str:
    shared = {line for other in siblings if other.id != chunk.id for line in other.text.splitlines()}
    lines = [line for line in chunk.text.splitlines()[1:] if len(line) > 20 and line not in shared]
    line = re.sub(r"^[①-⑳\d가-하]+\.?\s*", "", lines[0] if lines else chunk.text)
    return " ".join(strip_citations(line).split()[:10]) + "에 대해 알려 주세요"


def score(index, questions: list[tuple[str, str]]) -> dict[str, float]:
    ranks = [source_rank(search(index, q, k=5, as_of=AS_OF).hits, gold) for q, gold in questions]
    return retrieval_metrics(ranks, ks=(1, 5))


def test_recall_of_questions_made_from_statute_articles(bundled):
    _, chunks, index = bundled
    statutes = [c for c in chunks if c.kind == "statute_article"]
    assert len({c.citation for c in statutes}) >= 20
    by_doc: dict[str, list[Chunk]] = defaultdict(list)
    for chunk in statutes:
        by_doc[chunk.doc_id].append(chunk)
    titles = score(index, [(title_question(c), c.citation) for c in statutes if c.position == 0])
    contents = score(index, [(content_question(c, by_doc[c.doc_id]), c.citation) for c in statutes])
    print(f"title questions: {titles}\ncontent questions: {contents}")
    assert titles["recall@5"] >= 0.9 and contents["recall@5"] >= 0.9
    assert titles["mrr"] >= 0.7 and contents["mrr"] >= 0.7


@pytest.mark.slow
def test_recall_of_the_offline_teachers_statute_questions(bundled):
    cfg, chunks, index = bundled
    run_stage(cfg, "distill")
    citation_of = {c.id: c.citation for c in chunks}
    pairs = [p for p in read_jsonl(cfg.run_dir() / "distill" / "qa_pairs.jsonl") if p["kind"] == "statute_article"]
    assert len(pairs) >= 40
    as_written = score(index, [(p["question"], citation_of[p["chunk_id"]]) for p in pairs])
    uncited = score(index, [(strip_citations(p["question"]), citation_of[p["chunk_id"]]) for p in pairs])
    print(f"teacher questions as written: {as_written}\nteacher questions without citations: {uncited}")
    assert as_written["recall@1"] == 1.0  # every one cites its article: the exact look-up puts it first
    # Issue 19's goal: 0.9. BM25 alone gave 0.86 on the 60-article corpus (상증법 제18조–제27조 and friends share most of
    # their words); with the title-subject and law-name lifts (slm_datagen.index.search) it is 0.95 (expert 0.96,
    # layperson 0.95), recall@1 0.90.
    assert uncited["recall@5"] >= 0.9


def test_the_metrics_count_misses_as_zero():
    assert retrieval_metrics([1, 2, None, 6], ks=(1, 5)) == {"n": 4, "recall@1": 0.25, "recall@5": 0.5, "mrr": 0.4167}
