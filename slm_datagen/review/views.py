"""What the page's JSON API returns: the filtered list, one pair in full, the filter choices and the progress."""

from __future__ import annotations

from collections import Counter
from typing import Any

from slm_datagen.dataset.grounding import pair_citations
from slm_datagen.review.decisions import DecisionLog
from slm_datagen.review.state import REJECT_REASONS, PairRow, ReviewState, decision_state, refresh_outcomes
from slm_datagen.review.teacher_checks import teacher_checks
from slm_datagen.taxlaw.citations import normalize_law_name

FILTERS = ("queue", "rule", "law", "article", "kind", "split", "teacher", "audience", "status", "q")
LIST_LIMIT = 500


def _matches(row: PairRow, state: str, filters: dict[str, str]) -> bool:
    pair = row.pair
    checks = {
        "queue": lambda v: v != "1" or (row.status == "review" and state != "decided"),
        "rule": lambda v: v in {f["rule"] for f in row.findings},
        "law": lambda v: v == row.law,
        "article": lambda v: any(v in label for label in row.articles),
        "kind": lambda v: v == pair.kind,
        "split": lambda v: v == row.status,
        "teacher": lambda v: v == f"{pair.teacher}/{pair.model}",
        "audience": lambda v: v == pair.audience,
        "status": lambda v: v == state,
        "q": lambda v: v.lower() in f"{pair.question}\n{pair.answer}\n{pair.id}".lower(),
    }
    return all(checks[key](value) for key, value in filters.items() if value and key in checks)


def list_pairs(state: ReviewState, filters: dict[str, str]) -> dict[str, Any]:
    """The pairs matching every filter, in run order (at most LIST_LIMIT rows, with the total)."""
    refresh_outcomes(state)
    log = state.log()
    rows: list[dict[str, Any]] = []
    total = 0
    for pair_id in state.order:
        row = state.rows[pair_id]
        decided, decision = decision_state(row, log)
        if not _matches(row, decided, filters):
            continue
        total += 1
        if len(rows) < LIST_LIMIT:
            rows.append(
                {
                    "id": pair_id,
                    "question": row.pair.question[:160],
                    "status": row.status,
                    "rule": row.rule,
                    "state": decided,
                    "decision": decision.decision if decision else None,
                    "law": row.law,
                    "kind": row.pair.kind,
                }
            )
    return {"total": total, "rows": rows, "limit": LIST_LIMIT}


def facets(state: ReviewState) -> dict[str, list[str]]:
    """The values each filter can take in this run, most common first."""
    counts: dict[str, Counter[str]] = {name: Counter() for name in ("rule", "law", "kind", "split", "teacher")}
    counts["audience"] = Counter()
    for row in state.rows.values():
        for finding in row.findings:
            counts["rule"][finding["rule"]] += 1
        counts["law"][row.law or ""] += 1
        counts["kind"][row.pair.kind] += 1
        counts["split"][row.status] += 1
        counts["teacher"][f"{row.pair.teacher}/{row.pair.model}"] += 1
        counts["audience"][row.pair.audience] += 1
    out = {name: [v for v, _ in c.most_common() if v] for name, c in counts.items()}
    return out | {"status": ["waiting", "decided", "stale"], "reasons": list(REJECT_REASONS)}


def _cited_articles(state: ReviewState, row: PairRow) -> list[dict[str, Any]]:
    """Each cited article with its text from the collected corpus (None when the corpus does not have it)."""
    out = []
    for citation in pair_citations(row.pair, row.pair.law_name):
        law = normalize_law_name(citation.law)
        doc = state.articles.get((law, citation.article, citation.branch or 0)) or state.articles.get(
            (citation.law, citation.article, citation.branch or 0)
        )
        span = list(citation.span) if row.pair.answer[citation.span[0] : citation.span[1]] else None
        out.append(
            {
                "label": citation.label,
                "article": f"제{citation.article}조" + (f"의{citation.branch}" if citation.branch else ""),
                "answer_span": span,
                "text": doc.text if doc else None,
                "effective_date": doc.effective_date if doc else None,
            }
        )
    return out


def _calculator(row: PairRow) -> dict[str, Any] | None:
    """The stated calculation recomputed: claimed vs computed and the calculator's steps."""
    if row.pair.calculation is None:
        return None
    from slm_datagen.taxlaw.verdict import check_calculation  # noqa: PLC0415 - only for calculation pairs

    verdict = check_calculation(row.pair.calculation.model_dump(mode="json"))
    computation = verdict.computation
    return {
        "status": verdict.status,
        "reason": verdict.reason,
        "result_field": verdict.result_field,
        "stated_won": verdict.claimed_won,
        "computed_won": verdict.expected_won,
        "inputs": row.pair.calculation.inputs,
        "steps": [step.model_dump(mode="json") for step in computation.steps] if computation else [],
    }


def _history(log: DecisionLog, pair_id: str) -> list[dict[str, Any]]:
    return [d.__dict__ for d in log.decisions if d.pair_id == pair_id]


def pair_detail(state: ReviewState, pair_id: str) -> dict[str, Any]:
    refresh_outcomes(state)
    row = state.rows.get(pair_id)
    if row is None:
        raise LookupError(f"no pair {pair_id} in this run")
    log = state.log()
    decided, decision = decision_state(row, log)
    chunk = state.chunks.get(row.pair.chunk_id)
    return {
        "pair": row.pair.model_dump(mode="json"),
        "sha256": row.sha256,
        "status": row.status,
        "rule": row.rule,
        "findings": row.findings,
        "law": row.law,
        "state": decided,
        "decision": decision.__dict__ if decision else None,
        "history": _history(log, pair_id),
        "source": {"citation": chunk.citation, "title": chunk.title, "text": chunk.text} if chunk else None,
        "cited": _cited_articles(state, row),
        "calculator": _calculator(row),
        "teacher_checks": teacher_checks(state.build_dir, state.cfg.build, row.pair, chunk),
        "can_approve": row.status != "rejected",
    }


def summary(state: ReviewState) -> dict[str, Any]:
    refresh_outcomes(state)
    return {
        "run": state.cfg.run_name,
        "reviewer": state.reviewer,
        "progress": state.progress(),
        "facets": facets(state),
        "tear": state.tear,
        "pairs": len(state.order),
    }
