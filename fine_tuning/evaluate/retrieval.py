"""`slm evaluate` with retrieval: how well the index finds the source of each test question, and every answer metric
again with the top-k articles in the prompt.

`evaluate.retrieve` decides: `auto` (default) when the run has a finished `slm index` (k = `index.k`), a number k to
insist (no index is then an error naming `slm index CONFIG`), `false` for none. The articles are those in force on
`evaluate.as_of` (default: the day evaluate runs).

1. Retrieval quality: each test question (the first `evaluate.max_examples`, the ones answered) is searched with
   k = 10 and the rank of its source (the pair's `source_citation`: the article, or the ruling's number, the pair was
   made from) gives recall@1/5/10 and MRR, overall and per source kind (`kind:statute_article` is the goal's
   number). A question that already holds an article block (a RAFT pair) is searched by its question part.
   Examples without a source citation (imported pairs) are counted as `no_source` and left out.
2. Answers with retrieval: the same examples, the last user message replaced by
   `slm_datagen.index.context.question_with_context` (the layout of training pairs and `slm ask --retrieve`) unless
   it already holds a block, answered by base and tuned and scored exactly as without retrieval; plus, per model,
   the share of the answer's cited articles that were among the retrieved ones (`check_citations`), and the paired
   bootstrap of tuned-with-retrieval minus tuned-without for every answer metric.
No torch here: the caller hands in the answering function.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

from slm_datagen.index.context import article_from, check_citations, has_context, question_of, question_with_context
from slm_forest.errors import SlmError
from slm_forest.records import ChatMessage, SFTExample

RECALL_KS = (1, 5, 10)
SEARCH_K = max(RECALL_KS)


def open_evaluation_index(cfg: Any, run_dir: Path, notes: list[str]) -> tuple[Any, int] | None:
    """(index, k) when evaluate retrieves, None when it does not (with a note saying why, for `auto`)."""
    from slm_forest.manifest import read_manifest  # noqa: PLC0415

    setting = cfg.retrieve
    if setting is False:
        return None
    index_dir = run_dir / "index"
    manifest = read_manifest(index_dir) if index_dir.is_dir() else None
    if manifest is None or not manifest.complete or not (index_dir / "index.json").is_file():
        if setting == "auto":
            notes.append(
                "the run has no finished index: answers are evaluated without retrieval only "
                "(build one with `slm index CONFIG` to measure retrieval)"
            )
            return None
        raise SlmError(
            f"evaluate.retrieve: {setting} but {index_dir} holds no finished index",
            "run `slm index CONFIG` first, or set evaluate.retrieve: false",
        )
    from slm_datagen.index.search import load_index  # noqa: PLC0415 - bm25s and Kiwi only when retrieving

    index = load_index(index_dir)
    return index, int(index.meta["k"] if setting == "auto" else setting)


def user_question(example: SFTExample) -> str:
    """The last user message, without an article block it may already hold."""
    text = next((m.content for m in reversed(example.messages) if m.role == "user"), "")
    return question_of(text)


def retrieval_quality(index: Any, examples: list[SFTExample], as_of: str | None) -> dict[str, Any]:
    """recall@1/5/10 and MRR of each question's source, overall and per source kind (see the module docstring)."""
    from slm_datagen.index.metrics import retrieval_metrics, source_rank  # noqa: PLC0415
    from slm_datagen.index.search import search  # noqa: PLC0415
    from slm_datagen.index.versions import as_of_number, number_to_date  # noqa: PLC0415

    day = number_to_date(as_of_number(as_of))
    ranks: dict[str, list[int | None]] = defaultdict(list)
    no_source = 0
    for example in examples:
        source = example.meta.get("source_citation") or ""
        if not source:
            no_source += 1
            continue
        result = search(index, user_question(example), k=SEARCH_K, as_of=day)
        rank = source_rank(result.hits, source)
        for group in ("all", f"kind:{example.meta.get('kind') or '(unknown)'}"):
            ranks[group].append(rank)
    groups = {group: retrieval_metrics(r, ks=RECALL_KS) for group, r in sorted(ranks.items())}
    return {"as_of": day, "search_k": SEARCH_K, "no_source": no_source, "groups": groups}


def grounded_examples(
    index: Any, examples: list[SFTExample], k: int, as_of: str | None
) -> tuple[list[SFTExample], list[list[str]]]:
    """The examples with the top-k articles before their last question, and the citations retrieved for each."""
    from slm_datagen.index.search import search  # noqa: PLC0415

    out: list[SFTExample] = []
    retrieved: list[list[str]] = []
    for example in examples:
        last_user = max(i for i, m in enumerate(example.messages) if m.role == "user")
        question = example.messages[last_user].content
        if has_context(question):  # a RAFT pair brings its own articles: never a second block
            out.append(example)
            retrieved.append([])
            continue
        hits = search(index, question, k=k, as_of=as_of).hits
        messages = list(example.messages)
        messages[last_user] = ChatMessage(
            role="user", content=question_with_context(question, [article_from(h) for h in hits])
        )
        out.append(example.model_copy(update={"messages": messages}))
        retrieved.append([h.citation for h in hits])
    return out, retrieved


def grounding_shares(rows: list[dict[str, Any]], retrieved: list[list[str]]) -> dict[str, Any]:
    """Per model: of the articles the answers cite, how many were retrieved (the rest came from the model's memory)."""
    out: dict[str, Any] = {}
    for which in ("base", "tuned"):
        inside = outside = 0
        for row, citations in zip(rows, retrieved):
            check = check_citations(row[which]["answer"], citations)
            row[which]["citation_check"] = check.model_dump()
            inside += len(check.cited_and_retrieved)
            outside += len(check.cited_not_retrieved)
        cited = inside + outside
        out[which] = {
            "cited_articles": cited,
            "cited_and_retrieved": inside,
            "retrieved_share": round(inside / cited, 4) if cited else None,
        }
    return out


def retrieval_gain(
    without: list[dict[str, Any]], with_retrieval: list[dict[str, Any]], resamples: int, seed: int
) -> dict[str, Any]:
    """Paired bootstrap of tuned-with-retrieval − tuned-without for every answer metric (same questions)."""
    from fine_tuning.evaluate.metrics import answer_deltas  # noqa: PLC0415

    paired = [
        {"reference": a["reference"], "base": a["tuned"], "tuned": b["tuned"]} for a, b in zip(without, with_retrieval)
    ]
    return answer_deltas(paired, resamples, seed)


def evaluate_with_retrieval(
    opened: tuple[Any, int],
    examples: list[SFTExample],
    answer: Callable[[list[SFTExample]], list[dict[str, Any]]],
    plain_rows: list[dict[str, Any]],
    cfg: Any,
    seed: int,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """metrics["retrieval"] and the rows of predictions_retrieval.jsonl; `answer` generates and scores examples."""
    from fine_tuning.evaluate.answers import aggregate  # noqa: PLC0415
    from fine_tuning.evaluate.metrics import answer_deltas  # noqa: PLC0415

    index, k = opened
    quality = retrieval_quality(index, examples, cfg.as_of)
    grounded, retrieved = grounded_examples(index, examples, k, quality["as_of"])  # one date for both
    rows = answer(grounded)
    for row, example, citations in zip(rows, examples, retrieved):
        row["question"] = user_question(example)  # as asked; the block is in `retrieved`
        row["retrieved"] = citations
    metrics = {
        "k": k,
        "as_of": quality["as_of"],
        "index": str(index.path),
        "quality": quality,
        "generation": aggregate(rows, examples) | {"delta": answer_deltas(rows, cfg.bootstrap_resamples, seed)},
        "grounding": grounding_shares(rows, retrieved),
        "gain_tuned": retrieval_gain(plain_rows, rows, cfg.bootstrap_resamples, seed),
    }
    return metrics, rows
