"""The run as the review page sees it: every distilled pair with what build did to it, and the decisions since.

Loaded once when `slm review` starts (pairs, chunks, documents, build outputs); decisions are re-read from the log
on every request, so two tabs, two servers or a restart always show what is on disk.
"""

from __future__ import annotations

import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from slm_datagen.dataset.formats import pair_law
from slm_datagen.dataset.grounding import pair_citations
from slm_datagen.dataset.inputs import load_records
from slm_datagen.review.apply import check_edits, edit_refusal, edited_pair
from slm_datagen.review.decisions import (
    Decision,
    DecisionLog,
    append_decision,
    decisions_path,
    pair_sha256,
    read_decisions,
    repair_tear,
)
from slm_datagen.review.progress import review_progress
from slm_forest.config import RunConfig
from slm_forest.errors import SlmError
from slm_forest.files import read_jsonl
from slm_forest.records import Chunk, Document, QAPair
from slm_forest.redact import scrub

REJECT_REASONS = (
    "사실과 다름 (wrong facts)",
    "출처와 무관 (not supported by the source)",
    "계산 오류 (wrong amount)",
    "인용 조문 오류 (wrong article cited)",
    "질문이 불명확 (unclear question)",
    "중복 (duplicate)",
    "개인정보 (personal data)",
)
_ALSO = re.compile(r" \| also: ")


@dataclass
class PairRow:
    """One pair and its build outcome: status accepted (split) / rejected / review, the rule and the findings."""

    pair: QAPair
    sha256: str
    status: str  # train | val | test | rejected | review | not built
    rule: str | None
    findings: list[dict[str, str]]
    law: str | None
    articles: list[str]  # "소득세법 제12조", the cited articles


def parse_findings(rule: str, details: str, action: str) -> list[dict[str, str]]:
    """build's `details` string ("primary | also: rule: details; …") back into findings."""
    first, *rest = _ALSO.split(details, maxsplit=1)
    findings = [{"rule": rule, "details": first, "action": action}]
    for part in rest[0].split("; ") if rest else []:
        name, _, text = part.partition(": ")
        findings.append({"rule": name, "details": text, "action": "also"})
    return findings


def _build_outcomes(build_dir: Path) -> dict[str, tuple[str, str | None, list[dict[str, str]]]]:
    outcome: dict[str, tuple[str, str | None, list[dict[str, str]]]] = {}
    for split in ("train", "val", "test"):
        path = build_dir / f"{split}.jsonl"
        for row in read_jsonl(path) if path.exists() else []:
            meta = row.get("meta") or {}
            flags = [{"rule": f["rule"], "details": f["details"], "action": "flag"} for f in meta.get("flags") or []]
            outcome[meta.get("pair_id", "")] = (split, None, flags)
    for name, action in (("rejected", "reject"), ("review", "review")):
        path = build_dir / f"{name}.jsonl"
        for row in read_jsonl(path) if path.exists() else []:
            findings = parse_findings(row["rule"], row.get("details") or "", action)
            outcome[row["pair"]["id"]] = (name, row["rule"], findings)
    return outcome


@dataclass
class ReviewState:
    cfg: RunConfig
    reviewer: str
    rows: dict[str, PairRow] = field(default_factory=dict)
    order: list[str] = field(default_factory=list)
    documents: list[Document] = field(default_factory=list)
    chunks: dict[str, Chunk] = field(default_factory=dict)
    articles: dict[tuple[str, int, int], Document] = field(default_factory=dict)  # latest version of each article
    tear: str | None = None
    lock: threading.Lock = field(default_factory=threading.Lock)
    built_at: int = 0  # mtime_ns of build/manifest.json when the outcomes were read

    @property
    def run_dir(self) -> Path:
        return self.cfg.run_dir()

    @property
    def build_dir(self) -> Path:
        return self.run_dir / "build"

    @property
    def log_path(self) -> Path:
        return decisions_path(self.run_dir)

    def log(self) -> DecisionLog:
        return read_decisions(self.log_path, self.cfg.run_name)

    def progress(self) -> dict[str, Any]:
        return review_progress(self.build_dir)


def load_state(cfg: RunConfig, reviewer: str) -> ReviewState:
    """Everything the page needs from the run; refuses a run without a build (nothing was held for review yet)."""
    run_dir = cfg.run_dir()
    build_dir = run_dir / "build"
    if not (build_dir / "review.jsonl").exists():
        raise SlmError(
            f"{build_dir}: no review.jsonl (the run has not been built)",
            f"run `slm build {cfg.source_path or 'CONFIG'}` first",
        )
    state = ReviewState(cfg, reviewer)
    state.tear = repair_tear(state.log_path)
    state.log()  # refuse a decisions file of another run before serving anything
    pairs = load_records(run_dir / "distill" / "qa_pairs.jsonl", QAPair, "distill")
    state.documents = load_records(run_dir / "collect" / "documents.jsonl", Document, "collect")
    state.chunks = {c.id: c for c in load_records(run_dir / "prepare" / "chunks.jsonl", Chunk, "prepare")}
    for doc in state.documents:
        if doc.kind == "statute_article" and doc.law_name and doc.article_no is not None:
            key = (doc.law_name, doc.article_no, doc.article_branch or 0)
            if key not in state.articles or (doc.effective_date or "") > (state.articles[key].effective_date or ""):
                state.articles[key] = doc
    for pair in pairs:
        cited = [c.label for c in pair_citations(pair, pair.law_name)]
        state.rows[pair.id] = PairRow(pair, pair_sha256(pair), "not built", None, [], pair_law(pair), cited)
        state.order.append(pair.id)
    refresh_outcomes(state)
    return state


def refresh_outcomes(state: ReviewState) -> None:
    """Re-read what build did to each pair when `slm build` ran again while the page is open."""
    manifest = state.build_dir / "manifest.json"
    built_at = manifest.stat().st_mtime_ns if manifest.exists() else 0
    if built_at == state.built_at and state.built_at:
        return
    outcomes = _build_outcomes(state.build_dir)
    for pair_id, row in state.rows.items():
        row.status, row.rule, row.findings = outcomes.get(pair_id, ("not built", None, []))
    state.built_at = built_at


def decision_state(row: PairRow, log: DecisionLog) -> tuple[str, Decision | None]:
    """waiting (no decision) | decided | stale (the decision is about older content), and the decision."""
    decision = log.latest.get(row.pair.id)
    if decision is None:
        return "waiting", None
    return ("decided" if decision.pair_sha256 == row.sha256 else "stale"), decision


def record_decision(state: ReviewState, pair_id: str, body: dict[str, Any]) -> dict[str, Any]:
    """Check and append one decision; an edit is checked by build's per-pair rules first. Raises ValueError(reason)."""
    row = state.rows.get(pair_id)
    if row is None:
        raise LookupError(f"no pair {pair_id} in this run")
    kind = body.get("decision")
    if kind not in ("approve", "reject", "edit", "clear"):
        raise ValueError("decision must be approve, reject, edit or clear")
    if body.get("pair_sha256") not in (None, row.sha256):
        raise ValueError("the pair changed since this page loaded it: reload")
    reason = str(body.get("reason") or "").strip()
    if kind == "reject" and not reason:
        raise ValueError("a rejection needs a reason (pick one or type it)")
    if kind == "approve" and row.status == "rejected":
        raise ValueError(f"rule {row.rule} rejects this pair: edit it so every rule passes, or reject it")
    decision = Decision(
        run=state.cfg.run_name,
        pair_id=pair_id,
        pair_sha256=row.sha256,
        decision=kind,
        question=_changed(body.get("question"), row.pair.question) if kind == "edit" else None,
        answer=_changed(body.get("answer"), row.pair.answer) if kind == "edit" else None,
        reason=scrub(reason),
        reviewer=state.reviewer,
    )
    findings: list[dict[str, str]] = []
    if kind == "edit":
        if decision.question is None and decision.answer is None:
            raise ValueError("the edit changes nothing: approve the pair instead")
        findings, refusal = check_edit(state, row.pair, decision)
        if refusal:
            raise EditRefused(refusal, findings)
    with state.lock:  # one writer per process; flock orders writers across processes
        stored = append_decision(state.log_path, decision)
    return {"decision": stored.__dict__, "findings": findings}


class EditRefused(ValueError):
    def __init__(self, reason: str, findings: list[dict[str, str]]) -> None:
        super().__init__(reason)
        self.findings = findings


def _changed(new: Any, old: str) -> str | None:
    if new is None:
        return None
    text = str(new).replace("\r\n", "\n")
    return None if text == old else text


def check_edit(state: ReviewState, pair: QAPair, decision: Decision) -> tuple[list[dict[str, str]], str | None]:
    """The findings of every per-pair rule on the edited pair, and why it is refused (None: accepted)."""
    edited = edited_pair(pair, decision)
    found = check_edits([edited], state.documents, list(state.chunks.values()), state.cfg.build)[0]
    return [{"rule": f.rule, "details": f.details, "action": f.action} for f in found], edit_refusal(found)
