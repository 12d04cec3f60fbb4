"""What a request's replies come to: one verdict per pair asked for, and the ledger rows that record them. Pure.

Shared by the online engine and batch mode. A request asks for one pair (the single-pair layout, whose ledger rows
keep the shape they always had: `pair`, or `reason`/`detail`/`reply`) or several (the pairs layout: an `items`
list, one entry per pair with its audience, style and either `pair` or `reason`/`detail`). Each pair is judged on
its own: the first reply's good pairs are kept, and the one repair request asks only for the bad ones.

Request status in a `done` row: `ok` (every pair usable), `partial` (some), `failed` (none).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from slm_datagen.distill.parse import ReplyProblem, parse_pairs, parse_reply
from slm_datagen.distill.plan import PlannedRequest
from slm_datagen.distill.prompts import Prompt, repair_messages
from slm_datagen.distill.prompts_multi import pair_id, pairs_repair_messages
from slm_datagen.distill.schema import PairDraft

MAX_REPLY_IN_LEDGER = 4000  # characters of a bad reply kept for the repair call and for reading failures
Verdict = PairDraft | ReplyProblem


@dataclass
class Paid:
    """Tokens and dollars of the calls made for one request (first reply + repair)."""

    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    cache_write_1h_tokens: int = 0  # the part of cache_write_tokens in Anthropic's 1-hour cache

    def __add__(self, other: Paid) -> Paid:
        return Paid(
            self.input_tokens + other.input_tokens,
            self.output_tokens + other.output_tokens,
            self.cost_usd + other.cost_usd,
            self.cached_tokens + other.cached_tokens,
            self.cache_write_tokens + other.cache_write_tokens,
            self.cache_write_1h_tokens + other.cache_write_1h_tokens,
        )

    def as_usage(self) -> dict[str, Any]:
        usage = {
            "input_tokens": self.input_tokens,
            "output_tokens": self.output_tokens,
            "cost_usd": round(self.cost_usd, 8),
            "cached_input_tokens": self.cached_tokens,
            "cache_write_tokens": self.cache_write_tokens,
        }
        if self.cache_write_1h_tokens:  # only batch mode asks for the 1-hour cache
            usage["cache_write_1h_tokens"] = self.cache_write_1h_tokens
        return usage

    @classmethod
    def from_usage(cls, usage: dict[str, Any] | None) -> Paid:
        usage = usage or {}
        return cls(
            int(usage.get("input_tokens", 0)),
            int(usage.get("output_tokens", 0)),
            float(usage.get("cost_usd", 0.0)),
            int(usage.get("cached_input_tokens", 0)),
            int(usage.get("cache_write_tokens", 0)),
            int(usage.get("cache_write_1h_tokens", 0)),
        )


def judge(
    planned: PlannedRequest,
    prompt: Prompt,
    text: str | None,
    *,
    truncated: bool,
    refusal: str | None,
    indices: list[int] | None = None,
) -> list[Verdict]:
    """Verdicts for the pairs at `indices` (default: all) from one reply."""
    pairs = planned.pairs
    indices = list(range(len(pairs))) if indices is None else indices
    if not planned.multi:
        verdict = parse_reply(
            text,
            audience=planned.audience,
            style=planned.style,
            truncated=truncated,
            refusal=refusal,
            allowed_kinds=prompt.kinds,
        )
        return [verdict]
    asked = [(pair_id(i), pairs[i][0], pairs[i][1]) for i in indices]
    return parse_pairs(text, asked, truncated=truncated, refusal=refusal, allowed_kinds=prompt.kinds)


def failed_indices(verdicts: list[Verdict]) -> list[int]:
    return [i for i, v in enumerate(verdicts) if isinstance(v, ReplyProblem)]


def repair_conversation(planned: PlannedRequest, prompt: Prompt, verdicts: list[Verdict], bad_text: str) -> list:
    """The repair request: the original conversation plus one instruction about the unusable pairs only."""
    failed = failed_indices(verdicts)
    if not planned.multi:
        problem = verdicts[0]
        assert isinstance(problem, ReplyProblem)
        return repair_messages(prompt, problem.reason, bad_text, problem.detail)
    named = [(pair_id(i), verdicts[i].reason, verdicts[i].detail) for i in failed]  # type: ignore[union-attr]
    show = any(reason in ("not_korean", "schema", "truncated") for _, reason, _ in named)
    return pairs_repair_messages(prompt, named, bad_text, show_reply=show)


def merge(first: list[Verdict], second: list[Verdict]) -> list[Verdict]:
    """The first reply's verdicts with the failed ones replaced by the repair's (in order). A pair still bad after
    the repair keeps the repair's problem, with the first one named in its detail."""
    merged = list(first)
    for index, verdict in zip(failed_indices(first), second):
        if isinstance(verdict, ReplyProblem):
            earlier = first[index]
            assert isinstance(earlier, ReplyProblem)
            detail = f"{verdict.detail} (after one repair; first reply: {earlier.reason}: {earlier.detail})"
            verdict = ReplyProblem(verdict.reason, detail[:1000])
        merged[index] = verdict
    return merged


def status_of(verdicts: list[Verdict]) -> str:
    bad = len(failed_indices(verdicts))
    return "ok" if bad == 0 else "failed" if bad == len(verdicts) else "partial"


# ----------------------------------------------------------------------------------------------- ledger rows
def _item_rows(planned: PlannedRequest, verdicts: list[Verdict]) -> list[dict[str, Any]]:
    rows = []
    for (audience, style), verdict in zip(planned.pairs, verdicts):
        row: dict[str, Any] = {"audience": audience, "style": style}
        if isinstance(verdict, ReplyProblem):
            row.update(status="failed", reason=verdict.reason, detail=verdict.detail[:1000])
        else:
            row.update(status="ok", pair=verdict.model_dump(mode="json"))
        rows.append(row)
    return rows


def done_fields(planned: PlannedRequest, verdicts: list[Verdict], paid: Paid, attempts: int, reply: str) -> dict:
    """The fields of a `done` row (besides key and provenance)."""
    extra: dict[str, Any] = {
        "usage": paid.as_usage(),
        "attempts": attempts,
        # what the plan estimated, so a later --dry-run can compare it with what was paid (`estimate.calibrate`)
        "est_input_tokens": planned.input_tokens_est,
        "est_cacheable_tokens": planned.cacheable_tokens_est,
    }
    if planned.multi:
        status = status_of(verdicts)
        fields: dict[str, Any] = {"status": status, "items": _item_rows(planned, verdicts)}
        if status != "ok":
            fields["reply"] = (reply or "")[:MAX_REPLY_IN_LEDGER]
        return {**fields, **extra}
    verdict = verdicts[0]
    if isinstance(verdict, ReplyProblem):
        return {
            "status": "failed",
            "reason": verdict.reason,
            "detail": verdict.detail[:1000],
            "reply": (reply or "")[:MAX_REPLY_IN_LEDGER],
            **extra,
        }
    return {"status": "ok", "pair": verdict.model_dump(mode="json"), **extra}


def attempt_fields(planned: PlannedRequest, verdicts: list[Verdict], paid: Paid, reply: str) -> dict[str, Any]:
    """An `attempt` row: a paid first reply with unusable pairs; a resumed run goes straight to the repair."""
    first_problem = verdicts[failed_indices(verdicts)[0]]
    assert isinstance(first_problem, ReplyProblem)
    fields: dict[str, Any] = {
        "reason": first_problem.reason,
        "detail": first_problem.detail,
        "reply": (reply or "")[:MAX_REPLY_IN_LEDGER],
        "usage": paid.as_usage(),
    }
    if planned.multi:
        fields["items"] = _item_rows(planned, verdicts)
    return fields


def resumed(planned: PlannedRequest, attempt: dict[str, Any]) -> tuple[list[Verdict], str, Paid]:
    """(verdicts, bad reply, paid) of a recorded attempt, to go on with its repair."""
    paid = Paid.from_usage(attempt.get("usage"))
    if not planned.multi or "items" not in attempt:
        problem = ReplyProblem(attempt.get("reason", "schema"), attempt.get("detail", ""))
        return [problem] * len(planned.pairs), attempt.get("reply", ""), paid
    return [item_verdict(item) for item in attempt["items"]], attempt.get("reply", ""), paid


def item_verdict(item: dict[str, Any]) -> Verdict:
    if item.get("status") == "ok":
        return PairDraft.model_validate(item["pair"])
    return ReplyProblem(item.get("reason", "schema"), item.get("detail", ""))


def record_verdicts(record: dict[str, Any]) -> list[tuple[str, str, Verdict]]:
    """(audience, style, verdict) per pair of a `done` row, whichever layout wrote it."""
    if "items" in record:
        return [(item["audience"], item["style"], item_verdict(item)) for item in record["items"]]
    if record.get("status") == "ok":
        verdict: Verdict = PairDraft.model_validate(record["pair"])
    else:
        verdict = ReplyProblem(record.get("reason", "schema"), record.get("detail", ""))
    return [(record.get("audience", ""), record.get("style", "explain"), verdict)]
