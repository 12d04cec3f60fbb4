"""Benchmark of the teacher engine against a rate-limited fake OpenAI server, with the seed's loop as the baseline.

    python bench/distill.py                   # 2,700 requests (2+ rate windows) through the engine, 10 through the seed's loop
    python bench/distill.py --requests 600    # a quicker look (less than one window: limit_share is then n/a)

The fake server (tests/fake_teacher_server.py) answers every request after 1 s, enforces 1,200 requests per minute
over a sliding 60 s window (429 + Retry-After beyond it) and injects 10% failures on top (5% 429 with Retry-After,
5% 500). The engine runs `slm distill`'s stage function (`run_distill`) on synthetic Korean statute chunks with one
OpenAI teacher configured at the server's limit (requests_per_minute 1200, 64 concurrent); the seed's loop sends
one request at a time through the synchronous SDK and sleeps 1 s after each, as the seed project did.

Printed figures:
- limit_share: generation requests the server accepted (answered, or failed by injection; not refused for the
  limit) in each full 60 s window from the first request, divided by the limit; the mean over the full windows
  (at least two with the default size; each window is printed). 1.0 = the limit is saturated in steady state.
- wall_share: the same over the whole wall time of the stage (ramp-up, the last partial window, the tail of
  retries and the final write included), so it is the lower, end-to-end figure.
- speedup: successful answers per minute of the engine over the seed's loop (at most ~40x: 1,200/min vs 30/min).
- lost / duplicated: planned requests without a row in qa_pairs.jsonl or failures.jsonl, and rows or server
  answers for the same request key more than once.
Also the cost of the ledger's durable writes (fsync per line vs flush only), measured on this disk.

Targets: limit_share >= 0.90, speedup >= 30, lost = duplicated = 0. The last line is machine-readable:
`distill: limit_share=<x> speedup=<y> lost=<n> duplicated=<m> wall_share=<w> windows=<k>` (limit_share is `n/a`
when the run is shorter than one full window).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from slm_datagen.distill.ledger import Ledger  # noqa: E402
from slm_datagen.distill.stage import run_distill  # noqa: E402
from slm_forest.config import RunConfig  # noqa: E402
from slm_forest.files import write_jsonl  # noqa: E402
from slm_forest.pipeline import StageContext  # noqa: E402
from slm_forest.records import Chunk, content_id  # noqa: E402
from tests.fake_teacher_server import FakeTeacherServer  # noqa: E402

LIMIT_PER_MINUTE = 1200
LATENCY_S = 1.0
CHAOS = {"rate_limit": 0.05, "server_error": 0.05}
LAWS = ["소득세법", "법인세법", "부가가치세법", "국세기본법", "국세징수법", "상속세 및 증여세법", "조세특례제한법"]
TITLES = ["납세지", "비과세소득", "과세기간", "신고기한", "세액공제", "가산세", "경정청구", "납부기한"]
PHRASES = [
    "관할 세무서장은 납세자가 신고한 과세표준을 확인하여야 한다.",
    "다음 각 호의 소득에 대해서는 소득세를 과세하지 아니한다.",
    "거주자의 소득세 납세지는 그 주소지로 한다.",
    "법정신고기한까지 신고하지 아니한 경우에는 가산세를 부과한다.",
    "제1항에 따른 신청에 필요한 사항은 대통령령으로 정한다.",
    "사업자는 과세기간이 끝난 후 25일 이내에 신고하여야 한다.",
]


def synthetic_chunks(n: int, seed: int = 7) -> list[Chunk]:
    rng = random.Random(seed)
    chunks = []
    for index in range(n):
        law, article = rng.choice(LAWS), 1 + index
        title = rng.choice(TITLES)
        body = "\n".join(f"{'①②③④'[p]} {rng.choice(PHRASES)} ({index}-{p})" for p in range(rng.randint(2, 4)))
        text = f"제{article}조({title})\n{body}"
        citation = f"{law} 제{article}조"
        chunks.append(
            Chunk(
                id=content_id("chunk", citation, text),
                doc_id=content_id("doc", citation),
                kind="statute_article",
                title=f"제{article}조({title})",
                text=text,
                citation=citation,
                law_name=law,
                article_no=article,
            )
        )
    return chunks


def run_engine(n_requests: int, workdir: Path) -> dict:
    chunks = synthetic_chunks(n_requests)
    run = workdir / "run"
    (run / "prepare").mkdir(parents=True)
    (run / "distill").mkdir(parents=True)
    write_jsonl(run / "prepare" / "chunks.jsonl", chunks)
    with FakeTeacherServer(
        latency=LATENCY_S, requests_per_minute=LIMIT_PER_MINUTE, chaos=CHAOS, seed=11, retry_after=1.0
    ) as server:
        cfg = RunConfig.model_validate(
            {
                "distill": {
                    "teachers": [
                        {
                            "provider": "openai",
                            "model": "gpt-4o-mini",
                            "base_url": server.openai_base_url,
                            "requests_per_minute": LIMIT_PER_MINUTE,
                            "max_concurrency": 64,
                            "max_tokens": 400,
                            "max_retries": 8,
                            "timeout_s": 30,
                        }
                    ],
                    "audiences": ["expert"],
                    "failure_threshold": 1.0,
                }
            }
        )
        ctx = StageContext(cfg, "distill", run, run / "distill", {}, {})
        started = time.monotonic()
        result = run_distill(ctx)
        elapsed = time.monotonic() - started
        stats = server.stats()
        duplicate_answers = server.duplicate_keys()
        accepted_at = sorted(r.started for r in server.generation_requests() if not r.refused)
    rows = [
        json.loads(line)
        for name in ("qa_pairs.jsonl", "failures.jsonl")
        for line in (run / "distill" / name).read_text(encoding="utf-8").splitlines()
    ]
    row_keys = Counter(row["request_key"] for row in rows)
    with Ledger(run / "distill" / "ledger.jsonl") as ledger:
        planned = result.counts["requests"]
        lost = planned - len(row_keys)
    first = accepted_at[0] if accepted_at else 0.0
    windows = [0] * int((accepted_at[-1] - first) // 60) if accepted_at else []  # full 60 s windows only
    for moment in accepted_at:
        index = int((moment - first) // 60)
        if index < len(windows):
            windows[index] += 1
    return {
        "elapsed": elapsed,
        "windows": windows,
        "accepted": stats["accepted"],
        "refused": stats["refused_rate_limit"],
        "injected": stats["injected_errors"],
        "pairs": result.counts["pairs"],
        "failures": result.counts["failures"],
        "lost": lost,
        "duplicated": sum(n - 1 for n in row_keys.values() if n > 1) + len(duplicate_answers),
        "ledger_done": len(ledger.index.done),
        "summary": result.summary,
        "rate_decreases": result.stats.get("rate_decreases", 0),
    }


def run_seed_loop(n_requests: int) -> dict:
    """The seed project's loop: one request, wait for it, sleep(1), next; errors are printed and skipped."""
    import openai

    chunks = synthetic_chunks(n_requests, seed=99)
    with FakeTeacherServer(latency=LATENCY_S, requests_per_minute=LIMIT_PER_MINUTE, chaos=CHAOS, seed=12) as server:
        client = openai.OpenAI(base_url=server.openai_base_url, api_key="sk-bench", max_retries=0, timeout=30)
        ok = 0
        started = time.monotonic()
        for chunk in chunks:
            try:
                reply = client.chat.completions.create(
                    model="gpt-4o-mini",
                    max_tokens=400,
                    messages=[{"role": "user", "content": f"다음 조문으로 질문과 답변을 만드세요.\n{chunk.text}"}],
                )
                ok += int(bool(reply.choices[0].message.content))
            except openai.APIError:
                pass
            time.sleep(1)
        elapsed = time.monotonic() - started
    return {"elapsed": elapsed, "ok": ok}


def ledger_write_cost(workdir: Path, lines: int = 300) -> dict[str, float]:
    row = {"type": "done", "key": "k" * 64, "status": "ok", "pair": {"question": "질문" * 40, "answer": "답변" * 300}}
    out = {}
    for fsync in (True, False):
        path = workdir / f"ledger-{fsync}.jsonl"
        with Ledger(path, fsync=fsync) as ledger:
            started = time.perf_counter()
            for index in range(lines):
                ledger.append({**row, "key": f"{index:064d}"})
            out["fsync" if fsync else "flush"] = (time.perf_counter() - started) / lines * 1000
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=2700, help="requests through the engine (2,700: 2+ windows)")
    parser.add_argument("--seed-requests", type=int, default=10, help="requests through the seed's loop")
    args = parser.parse_args(argv)
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-real-key")
    with tempfile.TemporaryDirectory(prefix="bench-distill-") as tmp:
        workdir = Path(tmp)
        costs = ledger_write_cost(workdir)
        print(f"ledger append: {costs['fsync']:.3f} ms/line with fsync, {costs['flush']:.3f} ms/line flush only")
        seed = run_seed_loop(args.seed_requests)
        seed_rate = seed["ok"] / seed["elapsed"] * 60
        print(f"seed loop: {seed['ok']}/{args.seed_requests} answers in {seed['elapsed']:.1f}s = {seed_rate:.1f}/min")
        engine = run_engine(args.requests, workdir)
    accepted_per_minute = engine["accepted"] / engine["elapsed"] * 60
    wall_share = accepted_per_minute / LIMIT_PER_MINUTE
    windows = engine["windows"]
    limit_share = f"{sum(windows) / len(windows) / LIMIT_PER_MINUTE:.3f}" if windows else "n/a"
    for index, accepted in enumerate(windows):
        print(
            f"window {index + 1} (s {60 * index}-{60 * index + 60}): {accepted} accepted = {accepted / LIMIT_PER_MINUTE:.3f} of the limit"
        )
    engine_rate = engine["pairs"] / engine["elapsed"] * 60
    speedup = engine_rate / seed_rate if seed_rate else float("inf")
    print(
        f"engine: {engine['pairs']} pairs, {engine['failures']} failures in {engine['elapsed']:.1f}s = "
        f"{engine_rate:.0f} answers/min; server accepted {engine['accepted']} ({accepted_per_minute:.0f}/min, "
        f"{engine['injected']} injected failures), refused {engine['refused']} for the limit; "
        f"{engine['rate_decreases']} AIMD rate decreases"
    )
    print(
        f"distill: limit_share={limit_share} speedup={speedup:.1f} lost={engine['lost']} "
        f"duplicated={engine['duplicated']} wall_share={wall_share:.3f} windows={len(windows)}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
