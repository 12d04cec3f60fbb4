"""Batch mode (`distill.mode: batch`): OpenAI Batch API and Anthropic Message Batches, at half the price.

Rounds: submit every request not yet done (one batch per teacher and per `batch_max_requests`), poll each batch
every `batch_poll_s`, collect its results with the same checks as online mode, then submit one repair round for
the replies that failed their checks, and collect that. Each result becomes one ledger line, exactly as online.

Resumable: a `batch` ledger line (phase `submitting`, then `submitted` with the provider's batch id and the
request keys, then `collected`, all carrying the submission token) is written around every submission, so a killed
process picks up the same batches on its next run (polling them, never resubmitting their requests). A kill between
the provider accepting a batch and the `submitted` line being written is recovered by listing the provider's
batches: OpenAI batches carry our submission token in their metadata; an Anthropic batch is adopted when it is the
only one created after the `submitting` line with the same number of requests. A `submitting` line is an orphan
only while no later line carries its token: a collected batch is never looked up or downloaded again, and a
submission the provider does not list is marked `abandoned` (its requests are simply sent again).

Budget: requests are reserved in plan order across all teachers before anything is submitted (a batch is in
flight as a whole), each one on its own: one that does not fit is left for a later run, the rest still go.

custom_id = the request key (64 hex characters), or its first 56 characters + "-repair" for a repair request,
which fits both providers' rules (Anthropic: ^[a-zA-Z0-9_-]{1,64}$).
"""

from __future__ import annotations

import asyncio
import inspect
import json
import uuid
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from slm_datagen.distill.engine import Budget, Engine, EngineStats, Job, TeacherRuntime
from slm_datagen.distill.ledger import Ledger
from slm_datagen.distill.outcome import (
    Paid,
    Verdict,
    attempt_fields,
    failed_indices,
    merge,
    repair_conversation,
    resumed,
)
from slm_datagen.distill.plan import shape_for
from slm_datagen.distill.pool import stable_prefix, warms_cache
from slm_datagen.distill.teachers import (
    TeacherError,
    TeacherReply,
    _error_from_sdk,
    anthropic_params,
    anthropic_reply,
    openai_body,
    openai_reply,
)
from slm_forest.config import DistillConfig
from slm_forest.errors import SlmError
from slm_forest.progress import ProgressTask

OPENAI_DONE = {"completed", "failed", "expired", "cancelled"}
# Anthropic: a batch can start long after the primer that wrote its prefix, so the breakpoints ask for the 1-hour
# cache (writes 2 x input instead of 1.25 x, reads the same 0.1 x); a 5-minute entry would often be gone by then.
BATCH_CACHE_TTL = "1h"


def custom_id(key: str, repair: bool) -> str:
    return key[:56] + "-repair" if repair else key


@dataclass
class Entry:
    """One request inside a batch: the job, whether it is the repair, and the messages sent."""

    job: Job
    repair: bool
    messages: list[dict[str, str]]
    first: list[Verdict] | None = None  # the first reply's verdicts, for a repair
    first_paid: Paid = field(default_factory=Paid)


class BatchRunner:
    def __init__(
        self,
        runtimes: list[TeacherRuntime],
        ledger: Ledger,
        budget: Budget,
        cfg: DistillConfig,
        progress: ProgressTask | None = None,
    ) -> None:
        self.runtimes = {rt.index: rt for rt in runtimes}
        self.ledger = ledger
        self.budget = budget
        self.cfg = cfg
        self.engine = Engine(runtimes, ledger, budget, progress)  # shared row building, checks, stats
        self.stats: EngineStats = self.engine.stats

    # ------------------------------------------------------------------------------------------------ provider I/O
    async def _submit(self, rt: TeacherRuntime, entries: list[Entry], token: str) -> str:
        client = rt.teacher.client
        try:
            if rt.cfg.provider == "anthropic":
                requests = [
                    {"custom_id": custom_id(e.job.planned.key, e.repair), "params": _anthropic_params(rt, e)}
                    for e in entries
                ]
                batch = await client.messages.batches.create(requests=requests)
                return batch.id
            lines = "".join(
                json.dumps(
                    {
                        "custom_id": custom_id(e.job.planned.key, e.repair),
                        "method": "POST",
                        "url": "/v1/chat/completions",
                        "body": _openai_body(rt, e),
                    },
                    ensure_ascii=False,
                )
                + "\n"
                for e in entries
            )
            uploaded = await client.files.create(
                file=("slm-distill-batch.jsonl", lines.encode("utf-8")), purpose="batch"
            )
            batch = await client.batches.create(
                input_file_id=uploaded.id,
                endpoint="/v1/chat/completions",
                completion_window="24h",
                metadata={"slm_submit": token},
            )
            return batch.id
        except rt.teacher._sdk_errors as exc:
            raise self._fatal_or_retry(rt, _error_from_sdk(exc, rt.teacher.secrets)) from None

    def _fatal_or_retry(self, rt: TeacherRuntime, exc: TeacherError) -> Exception:
        if exc.kind == "fatal":
            return self.engine._fatal(rt, exc)
        return exc

    async def _wait(self, rt: TeacherRuntime, batch_id: str) -> Any:
        client = rt.teacher.client
        failures = 0
        while True:
            try:
                if rt.cfg.provider == "anthropic":
                    batch = await client.messages.batches.retrieve(batch_id)
                    if batch.processing_status == "ended":
                        return batch
                else:
                    batch = await client.batches.retrieve(batch_id)
                    if batch.status in OPENAI_DONE:
                        return batch
                failures = 0
            except rt.teacher._sdk_errors as exc:
                error = _error_from_sdk(exc, rt.teacher.secrets)
                if error.kind == "fatal":
                    raise self.engine._fatal(rt, error) from None
                failures += 1
                if failures > rt.cfg.max_retries:
                    raise SlmError(
                        f"distill batch {batch_id}: status polls keep failing ({error})",
                        "rerun later: the batch id is in the ledger and will be picked up again",
                    ) from None
            await asyncio.sleep(self.cfg.batch_poll_s)

    async def _results(self, rt: TeacherRuntime, batch: Any) -> dict[str, TeacherReply | str]:
        """custom_id -> reply, or an error text for requests the provider did not answer."""
        client = rt.teacher.client
        out: dict[str, TeacherReply | str] = {}
        if rt.cfg.provider == "anthropic":
            decoder = await _maybe_await(client.messages.batches.results(batch.id))
            async for item in decoder:
                result = item.result
                if result.type == "succeeded":
                    out[item.custom_id] = anthropic_reply(result.message, cache_ttl=BATCH_CACHE_TTL)
                else:
                    error = getattr(result, "error", None)
                    out[item.custom_id] = (
                        f"batch result {result.type}: {getattr(getattr(error, 'error', error), 'message', '')}"
                    )
            return out
        if batch.status != "completed":
            return out  # failed / expired / cancelled: every request stays unanswered
        for file_id in (batch.output_file_id, batch.error_file_id):
            if not file_id:
                continue
            content = await client.files.content(file_id)
            for line in content.text.splitlines():
                if not line.strip():
                    continue
                row = json.loads(line)
                response = row.get("response") or {}
                if response.get("status_code") == 200:
                    out[row["custom_id"]] = openai_reply(response.get("body") or {})
                else:
                    message = ((response.get("body") or {}).get("error") or {}).get("message") or row.get("error")
                    out[row["custom_id"]] = f"batch line status {response.get('status_code')}: {message}"
        return out

    # -------------------------------------------------------------------------------------------------- results
    def _collect(
        self, rt: TeacherRuntime, entries: list[Entry], results: dict[str, TeacherReply | str], reserved: float
    ) -> list[Entry]:
        """Write one ledger line per entry; return the repair entries for the next round."""
        repairs: list[Entry] = []
        spent = 0.0
        for entry in entries:
            if self.ledger.is_done(entry.job.planned.key):
                continue
            result = results.get(custom_id(entry.job.planned.key, entry.repair))
            if not isinstance(result, TeacherReply):
                self._batch_error(rt, entry.job, result or "no result for this request in the batch")
                continue
            paid = self.engine.paid(rt, result)
            spent += paid.cost_usd
            repair = self._judge_result(rt, entry, result, paid)
            if repair is not None:
                repairs.append(repair)
        self.budget.settle(reserved, spent)
        return repairs

    def _batch_error(self, rt: TeacherRuntime, job: Job, detail: str) -> None:
        self.ledger.append(
            self.engine._row(rt, job, type="error", reason="batch_error", detail=detail[:1000], batch=True)
        )
        self.stats.errors += 1
        self.stats.reasons["batch_error"] += 1
        self.engine._advance(job)

    def _judge_result(self, rt: TeacherRuntime, entry: Entry, result: TeacherReply, paid: Paid) -> Entry | None:
        """Record one batch result: done (first reply fine, or the repair's final verdicts) or an attempt whose
        repair goes into the next round (returned)."""
        job = entry.job
        total = entry.first_paid + paid
        if entry.repair:
            assert entry.first is not None
            final = merge(entry.first, self.engine.judge(job, result, failed_indices(entry.first)))
            self.stats.repaired += len(failed_indices(entry.first)) - len(failed_indices(final))
            self.engine._done(rt, job, final, total, attempts=2, reply=result.text or "", batch=True)
            return None
        verdicts = self.engine.judge(job, result)
        if not failed_indices(verdicts):
            self.engine._done(rt, job, verdicts, total, attempts=1, reply=result.text or "", batch=True)
            return None
        bad_text = (result.text or "")[:4000]
        fields = attempt_fields(job.planned, verdicts, total, bad_text)
        self.ledger.append(self.engine._row(rt, job, type="attempt", batch=True, **fields))
        messages = repair_conversation(job.planned, job.prompt, verdicts, bad_text)
        return Entry(job, True, messages, verdicts, total)

    async def _run_batch(self, rt: TeacherRuntime, entries: list[Entry], reserved: float) -> list[Entry]:
        token = uuid.uuid4().hex
        keys = [e.job.planned.key for e in entries]
        repair = entries[0].repair
        self.ledger.append(
            {
                "type": "batch",
                "phase": "submitting",
                "token": token,
                "teacher": rt.cfg.provider,
                "model": rt.cfg.model,
                "keys": keys,
                "repair": repair,
            }
        )
        batch_id = await self._submit(rt, entries, token)
        for _ in entries:
            self.stats.count_request(rt.label)
        self.ledger.append(
            {
                "type": "batch",
                "phase": "submitted",
                "batch_id": batch_id,
                "token": token,
                "teacher": rt.cfg.provider,
                "model": rt.cfg.model,
                "keys": keys,
                "repair": repair,
            }
        )
        return await self._finish(rt, batch_id, entries, reserved, token)

    async def _finish(
        self, rt: TeacherRuntime, batch_id: str, entries: list[Entry], reserved: float, token: str | None
    ) -> list[Entry]:
        batch = await self._wait(rt, batch_id)
        results = await self._results(rt, batch)
        repairs = self._collect(rt, entries, results, reserved)
        # The token marks this submission as settled: without it, every later run took the `submitting` line for
        # an orphan, found the batch again at the provider and downloaded its results once more.
        self.ledger.append(
            {
                "type": "batch",
                "phase": "collected",
                "batch_id": batch_id,
                "token": token,
                "teacher": rt.cfg.provider,
                "model": rt.cfg.model,
            }
        )
        return repairs

    # ------------------------------------------------------------------------------------------------- resuming
    def _open_batches(self, rt: TeacherRuntime) -> list[dict[str, Any]]:
        rows = [
            row
            for row in self.ledger.index.batches.values()
            if row.get("teacher") == rt.cfg.provider and row.get("model") == rt.cfg.model
        ]
        return [row for row in rows if row.get("phase") == "submitted"]

    def _orphans(self, rt: TeacherRuntime) -> list[dict[str, Any]]:
        """`submitting` lines no later line settled (a kill right after the provider accepted the batch).

        Settled = any later batch line with the same token (submitted, collected, abandoned), wherever it is in the
        ledger: `index.batches` keeps only the latest line per batch id, so it cannot answer this on its own.
        """
        settled = self.ledger.index.batch_tokens
        return [
            row
            for row in self._submitting_rows()
            if row.get("token") not in settled
            and row.get("teacher") == rt.cfg.provider
            and row.get("model") == rt.cfg.model
        ]

    def _submitting_rows(self) -> list[dict[str, Any]]:
        rows = []
        with open(self.ledger.path, "rb") as handle:
            for line in handle:
                if b'"phase":"submitting"' in line:
                    try:
                        rows.append(json.loads(line))
                    except json.JSONDecodeError:
                        continue
        return rows

    async def _find_orphan(self, rt: TeacherRuntime, row: dict[str, Any]) -> str | None:
        """The provider's batch id for an orphaned submission; "" when the provider has none; None when unknown."""
        client = rt.teacher.client
        try:
            if rt.cfg.provider == "anthropic":
                page = await client.messages.batches.list(limit=100)
                candidates = []
                for batch in page.data:
                    created = batch.created_at.timestamp() if isinstance(batch.created_at, datetime) else 0.0
                    total = sum(v for v in batch.request_counts.model_dump().values())
                    if created >= row.get("ts", 0) - 5 and total == len(row["keys"]):
                        candidates.append(batch.id)
                known = set(self.ledger.index.batches)
                candidates = [c for c in candidates if c not in known]
                if len(candidates) > 1:
                    return None  # ambiguous: ask again next run rather than adopt the wrong one
                return candidates[0] if candidates else ""
            page = await client.batches.list(limit=100)
            for batch in page.data:
                if (batch.metadata or {}).get("slm_submit") == row["token"]:
                    return batch.id
        except rt.teacher._sdk_errors:
            return None  # could not look: try again next run
        return ""

    # ------------------------------------------------------------------------------------------------------ run
    async def run(self, jobs: Iterable[Job]) -> EngineStats:
        by_key: dict[str, Job] = {}
        order: list[Job] = []  # plan order: chunk, teacher, audience, style
        for job in jobs:
            by_key[job.planned.key] = job
            order.append(job)

        # 1. batches a killed run left behind: finish them before sending anything new
        for rt in self.runtimes.values():
            for row in self._orphans(rt):
                batch_id = await self._find_orphan(rt, row)
                settled = {k: v for k, v in row.items() if k not in ("ts", "keys")}
                if batch_id:
                    self.ledger.append(
                        {**settled, "keys": row.get("keys", []), "phase": "submitted", "batch_id": batch_id}
                    )
                elif batch_id == "":  # the provider never got it: its requests are sent again below
                    self.ledger.append({**settled, "phase": "abandoned"})
            for row in self._open_batches(rt):
                entries = []
                for key in row.get("keys", []):
                    job = by_key.get(key)
                    if job is None or self.ledger.is_done(key):
                        continue
                    entries.append(self._entry(job, repair=bool(row.get("repair"))))
                repairs = await self._finish(rt, row["batch_id"], [e for e in entries if e], 0.0, row.get("token"))
                await self._repair_round(rt, repairs)

        # 2. new work, in rounds: first requests, then one repair round. The budget is reserved in plan order across
        # all teachers, so the first teacher's batch cannot take the whole budget before the second gets a share.
        first_by_teacher: dict[int, list[tuple[Entry, float]]] = {index: [] for index in self.runtimes}
        for job in order:
            rt = self.runtimes[job.planned.teacher_index]
            if self.ledger.is_done(job.planned.key):
                continue
            expected = self.engine.expected_cost(rt, job)
            if not self.budget.try_reserve(expected):
                self.stats.skipped_budget += 1
                continue
            first_by_teacher[rt.index].append(
                (self._entry(job, repair=job.planned.key in self.ledger.index.attempts), expected)
            )
        for index, rt in self.runtimes.items():
            groups, primed = self._groups(rt, first_by_teacher[index])
            carried: list[Entry] = []
            for number, (group, share) in enumerate(groups):
                repairs = carried + await self._run_batch(rt, group, share)
                carried = repairs if primed and number == 0 else []  # the primer's repairs go with the next round's
                if not carried:
                    await self._repair_round(rt, repairs)
            await self._repair_round(rt, carried)
        return self.stats

    def _groups(
        self, rt: TeacherRuntime, reserved: list[tuple[Entry, float]]
    ) -> tuple[list[tuple[list[Entry], float]], bool]:
        """The batches of a teacher's first requests, each with its share of the reserved budget, and whether the
        first one is a primer.

        The first request of each shared prefix the provider can cache (`pool.stable_prefix`) goes first, in a
        batch of primers: a batch's requests run concurrently, so without it every one of them misses the cache
        (and at Anthropic pays a cache write); once the primers are answered, their prefixes are in the cache for
        the batch after them. Anthropic documents this priming for Message Batches; a batch's cache hits stay
        best-effort either way.
        """
        groups: list[tuple[list[Entry], float]] = []
        entries = list(reserved)
        primers: dict[tuple[str, ...], int] = {}
        for i, (e, _) in enumerate(entries):
            if not e.repair and warms_cache(rt, e.job):
                primers.setdefault(stable_prefix(e.job), i)
        primer = None if len(primers) >= len(entries) else sorted(primers.values())
        if primer:
            groups.append(([entries[i][0] for i in primer], sum(entries[i][1] for i in primer)))
            entries = [item for i, item in enumerate(entries) if i not in set(primer)]
        for start in range(0, len(entries), self.cfg.batch_max_requests):
            part = entries[start : start + self.cfg.batch_max_requests]
            for repair_flag in (False, True):  # a batch holds either first requests or repairs
                group = [(e, x) for e, x in part if e.repair == repair_flag]
                if group:
                    groups.append(([e for e, _ in group], sum(x for _, x in group)))
        return groups, bool(primer)

    async def _repair_round(self, rt: TeacherRuntime, repairs: list[Entry]) -> None:
        if not repairs:
            return
        allowed = []
        reserved = 0.0
        for entry in repairs:
            expected = self.engine.expected_cost(rt, entry.job)
            if self.budget.try_reserve(expected):
                allowed.append(entry)
                reserved += expected
            else:
                self.stats.skipped_budget += 1
        for start in range(0, len(allowed), self.cfg.batch_max_requests):
            part = allowed[start : start + self.cfg.batch_max_requests]
            await self._run_batch(rt, part, reserved * len(part) / len(allowed))

    def _entry(self, job: Job, *, repair: bool) -> Entry:
        if not repair:
            return Entry(job, False, job.prompt.as_list())
        verdicts, bad_text, paid = resumed(job.planned, self.ledger.index.attempts.get(job.planned.key) or {})
        return Entry(job, True, repair_conversation(job.planned, job.prompt, verdicts, bad_text), verdicts, paid)


def _anthropic_params(rt: TeacherRuntime, entry: Entry) -> dict[str, Any]:
    shape = shape_for(rt.cfg, entry.job.planned)
    return anthropic_params(
        rt.cfg,
        entry.messages,
        schema=shape.schema,
        schema_name=shape.schema_name,
        max_tokens=shape.max_tokens,
        cache=True,
        cache_ttl=BATCH_CACHE_TTL,
    )


def _openai_body(rt: TeacherRuntime, entry: Entry) -> dict[str, Any]:
    shape = shape_for(rt.cfg, entry.job.planned)
    return openai_body(
        rt.cfg, entry.messages, schema=shape.schema, schema_name=shape.schema_name, max_tokens=shape.max_tokens
    )


async def _maybe_await(value: Any) -> Any:
    if inspect.isawaitable(value):
        return await value
    return value


__all__ = ["BatchRunner", "custom_id"]
