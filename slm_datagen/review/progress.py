"""Review progress from a build directory and the run's decisions: the one count the page, `slm data stats` and the
dataset card all show, so they cannot disagree.

The queue is every pair the rules held for review in the last build: those still in review.jsonl plus those a
decision took out of review (build/review_applied.json `held_decided`). A queued pair is reviewed when its last
decision matches its content, stale when the decision is about older content (it counts as waiting), else waiting.
Decisions made after the last build are counted as reviewed and as `pending_build` (run `slm build` to apply them).
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any

from slm_datagen.review.decisions import APPLIED_FILE, DECISIONS_FILE, pair_sha256, read_decisions
from slm_forest.files import read_jsonl


def _queue(build_dir: Path) -> dict[str, tuple[str, str]]:
    """pair id -> (the rule that held it, the sha256 of its content then)."""
    queue: dict[str, tuple[str, str]] = {}
    review = build_dir / "review.jsonl"
    for row in read_jsonl(review) if review.exists() else []:
        queue[row["pair"]["id"]] = (str(row.get("rule") or "unknown"), pair_sha256(row["pair"]))
    for pair_id, held in _applied(build_dir).get("held_decided", {}).items():
        queue.setdefault(pair_id, (held["rule"], held["pair_sha256"]))
    return queue


def _applied(build_dir: Path) -> dict[str, Any]:
    path = build_dir / APPLIED_FILE
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def _run_name(build_dir: Path) -> str | None:
    info = build_dir / "build_info.json"
    return json.loads(info.read_text(encoding="utf-8")).get("run_name") if info.exists() else None


def review_progress(build_dir: Path) -> dict[str, Any]:
    """{"held", "reviewed", "waiting", "stale", "pending_build", "by_rule": {rule: {held, reviewed, waiting}},
    "decisions": {approve, reject, edit} (last decision per pair, any pair), "applied": what the last build applied}."""
    build_dir = Path(build_dir)
    applied = _applied(build_dir)
    run_name = _run_name(build_dir)
    decisions_file = build_dir.parent / "review" / DECISIONS_FILE
    latest = read_decisions(decisions_file, run_name).latest if run_name and decisions_file.exists() else {}
    by_rule: dict[str, Counter[str]] = {}
    totals: Counter[str] = Counter()
    for pair_id, (rule, sha) in _queue(build_dir).items():
        decision = latest.get(pair_id)
        state = "waiting" if decision is None else ("reviewed" if decision.pair_sha256 == sha else "stale")
        row = by_rule.setdefault(rule, Counter())
        row["held"] += 1
        row["reviewed" if state == "reviewed" else "waiting"] += 1
        totals["held"] += 1
        totals["reviewed" if state == "reviewed" else "waiting"] += 1
        totals["stale"] += state == "stale"
    seen = applied.get("seen", {})  # pair id -> time of the decision the last build read
    pending = sum(1 for pair_id, d in latest.items() if seen.get(pair_id) != d.time)
    pending += sum(1 for pair_id in seen if pair_id not in latest)  # withdrawn since (clear)
    return {
        "held": totals["held"],
        "reviewed": totals["reviewed"],
        "waiting": totals["waiting"],
        "stale": totals["stale"],
        "pending_build": pending,
        "by_rule": {
            rule: {k: row[k] for k in ("held", "reviewed", "waiting")}
            for rule, row in sorted(by_rule.items(), key=lambda item: (-item[1]["held"], item[0]))
        },
        "decisions": dict(sorted(Counter(d.decision for d in latest.values()).items())),
        "applied": applied.get("applied", {"approve": 0, "reject": 0, "edit": 0}),
        "stale_decisions": len(applied.get("stale", [])),
        "not_applied": len(applied.get("not_applied", [])),
    }


def stats_lines(human: dict[str, Any]) -> list[str]:
    """`slm data stats`' human-review lines: the totals and the per-rule counts the page's header shows."""
    lines = [
        f"human review: {human['reviewed']} reviewed / {human['held']} held ({human['waiting']} waiting, "
        f"{human['stale']} stale, {human['pending_build']} not yet applied); applied: "
        + ", ".join(f"{kind} {n}" for kind, n in human["applied"].items())
    ]
    lines += [
        f"  {rule}: {row['reviewed']} reviewed / {row['held']} held ({row['waiting']} waiting)"
        for rule, row in human["by_rule"].items()
    ]
    return lines


def card_lines(stats: dict[str, Any]) -> list[str]:
    """The dataset card's human-review paragraph (markdown), from the same numbers as the page."""
    human = stats.get("human_review") or {}
    if not human or not (human.get("held") or human.get("decisions")):
        return []
    applied = human["applied"]
    return [
        f"Human review (`slm review`): {human['reviewed']} of the {human['held']} pairs the rules held were reviewed "
        f"({human['waiting']} waiting). Decisions applied by this build: {applied['approve']} approved, "
        f"{applied['reject']} rejected (rule `human_rejected`), {applied['edit']} edited and re-checked; "
        f"{human['stale_decisions']} stale (the pair changed since) and {human['not_applied']} overruled by a rule, "
        "not applied.\n"
    ]
