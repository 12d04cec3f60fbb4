"""The worker pool around `Engine.process`: a feeder, one set of workers per teacher, a supervisor.

    stats = await run_pool(engine, jobs, control)

- Cache warm-up: a teacher's first request of each shared prefix the provider can cache (`stable_prefix`: the
  system prompt, and the calculation rules of the chunk's kinds) is sent alone (`WarmUp`); the requests with that
  prefix wait until it is answered, so they read it from the cache instead of all writing it.
- Workers never die: a job whose processing raises anything but a fatal SlmError becomes an `error` line
  (`Engine.record_crash`) and the worker takes the next job. A fatal error (bad key, unknown model) stops the run.
- The watchdog: when no ledger line has been written for `control.stall_timeout_s`, the run stops
  (`control.stalled`), so a server that accepts connections and never answers cannot hang the stage.
- Stopping (a signal through `request_stop`, the watchdog, a fatal error): nothing new is sent; workers that are
  waiting (queue, rate limiter, backoff, budget) are cancelled at once since they have nothing in flight; workers
  with a request in flight get up to `control.grace_s` to receive and record its reply. A second signal, or the
  deadline, cancels those too; they are counted in `control.abandoned` (their replies, if the server finished
  them, may be paid again by the next run).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass, field

from slm_datagen.distill.engine import Engine, EngineStats, Job, RunControl, Stopped, TeacherRuntime
from slm_datagen.distill.pricing import min_cached_tokens
from slm_forest.errors import SlmError
from slm_forest.progress import console

_TICK_S = 0.2  # how often the supervisor looks at the clock and the stop flag


def request_stop(engine: Engine, control: RunControl, signal_name: str) -> None:
    """Signal handler body: the first signal stops sending, the second abandons what is in flight."""
    if control.signal is not None:
        control.grace_s = 0.0
        engine.stop_event.set()
        return
    control.signal = signal_name
    control.in_flight_at_stop = len(engine.sending)
    print(
        f"distill: {signal_name}: sending nothing more; waiting up to {control.grace_s:.0f}s for "
        f"{control.in_flight_at_stop} requests in flight (send it again to stop now)",
        file=console.file,
        flush=True,
    )
    _stop(engine)


def _stop(engine: Engine) -> None:
    engine.stopping = True
    engine.stop_event.set()


@dataclass
class WarmUp:
    """The first request of a teacher goes alone: once it is answered, its prompt prefix is in the provider's cache,
    so the requests sent concurrently after it read that prefix instead of all paying for it at once."""

    done: asyncio.Event = field(default_factory=asyncio.Event)
    started: bool = False

    async def enter(self) -> bool:
        """True for the one request that warms the cache; the others wait until it is answered."""
        if self.done.is_set():
            return False
        if not self.started:
            self.started = True
            return True
        await self.done.wait()
        return False


def stable_prefix(job: Job) -> tuple[str, ...]:
    """What tells a teacher's cacheable prefixes apart: the calculation kinds whose rules follow the system prompt
    (everything before them is the same for every request of a teacher)."""
    return job.prompt.kinds


def warms_cache(rt: TeacherRuntime, job: Job) -> bool:
    """Whether this request's shared prefix is long enough for the provider to cache it (else no warm-up)."""
    minimum = min_cached_tokens(rt.cfg.provider, rt.cfg.model)
    return minimum is not None and job.planned.cacheable_tokens_est >= minimum


async def _worker(
    engine: Engine, rt: TeacherRuntime, queue: asyncio.Queue, failure: list[BaseException], warm: dict
) -> None:
    while not engine.stopping:
        job: Job | None = await queue.get()
        if job is None:
            return
        prefix = warm.setdefault(stable_prefix(job), WarmUp())
        leading = await prefix.enter() if warms_cache(rt, job) else False
        try:
            await engine.process(rt, job)
        except Stopped:
            return
        except SlmError as exc:  # fatal for the whole stage
            failure.append(exc)
            _stop(engine)
            return
        except Exception as exc:  # noqa: BLE001 - one bad job must not take the worker (and the run) with it
            engine.record_crash(rt, job, exc)
        finally:
            if leading:
                prefix.done.set()


async def _feed(engine: Engine, jobs: Iterable[Job], queues: dict[int, asyncio.Queue]) -> None:
    for job in jobs:
        if engine.stopping:
            return
        # No shortcut on `budget.stopped`: a request that did not fit says nothing about the next one, which may be
        # cheaper or belong to another teacher. Each is judged by `Budget.reserve` in its worker.
        await queues[job.planned.teacher_index].put(job)
    for index, rt in engine.runtimes.items():
        for _ in range(rt.cfg.max_concurrency):
            await queues[index].put(None)


async def _drain(engine: Engine, control: RunControl, workers: list[asyncio.Task]) -> None:
    """Cancel the workers with nothing in flight; give the others until the deadline to record their replies."""
    _stop(engine)
    for task in workers:
        if task not in engine.sending:
            task.cancel()
    deadline = time.monotonic() + control.grace_s
    while True:
        in_flight = [t for t in workers if t in engine.sending and not t.done()]
        left = deadline - time.monotonic()
        if not in_flight or left <= 0 or control.grace_s <= 0:
            break
        await asyncio.wait(in_flight, timeout=min(_TICK_S, left))
    control.abandoned = len(in_flight)


async def run_pool(engine: Engine, jobs: Iterable[Job], control: RunControl) -> EngineStats:
    queues = {index: asyncio.Queue(maxsize=2 * rt.cfg.max_concurrency) for index, rt in engine.runtimes.items()}
    failure: list[BaseException] = []
    warm: dict[int, dict[tuple[str, ...], WarmUp]] = {index: {} for index in engine.runtimes}
    workers = [
        asyncio.create_task(_worker(engine, rt, queues[index], failure, warm[index]))
        for index, rt in engine.runtimes.items()
        for _ in range(rt.cfg.max_concurrency)
    ]
    feeder = asyncio.create_task(_feed(engine, jobs, queues))
    engine.last_progress = time.monotonic()
    try:
        while not all(task.done() for task in workers):
            await asyncio.wait([t for t in workers if not t.done()], timeout=_TICK_S)
            if feeder.done() and not feeder.cancelled() and feeder.exception() is not None:
                raise feeder.exception()  # reading the chunks failed: an SlmError naming the line
            if time.monotonic() - engine.last_progress > control.stall_timeout_s and not engine.stopping:
                control.stalled = True
                control.in_flight_at_stop = len(engine.sending)
                control.grace_s = 0.0  # what is in flight has been silent for the whole timeout: do not wait more
            if engine.stopping or control.stalled:
                await _drain(engine, control, workers)
                break
    finally:
        for task in (feeder, *workers):
            task.cancel()
        await asyncio.gather(feeder, *workers, return_exceptions=True)
    if failure:
        raise failure[0]
    return engine.stats
