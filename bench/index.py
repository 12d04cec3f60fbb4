"""Benchmark of `slm index` at corpus scale: build time, index size and query latency on a synthetic chunks.jsonl.

    python bench/index.py                  # 400 MB of chunks
    python bench/index.py --size-mb 40     # a quicker look

The corpus is made from the bundled corpus's own chunks (the real collect and prepare stages run first, in a temp
dir): each synthetic chunk is a bundled statute article or 국세청 interpretation with its numbers redrawn (amounts,
dates, article and paragraph numbers), a third of its body lines swapped for lines of other chunks, statutes moved to
another tax law and article number with one of six 시행일자 (so articles have several versions), interpretations
given a person's name and a new document number. Then `build_index` — the function `slm index` runs — indexes it in
a subprocess (its peak RSS is the child's ru_maxrss), and this process loads the index and times `search(k=5)` on
400 questions (each after 20 warm-up queries): a third cite an article ("소득세법 제55조 제1항 …"), a third are a
body line of a chunk, a third an article title with a particle ("…의 '세율' 규정은?").

Goal on 2 cores: p95 ≤ 50 ms for k=5. Last line: `index: build_s=<s> mb=<index MB> p50_ms=<ms> p95_ms=<ms>`.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from slm_datagen.taxlaw.citations import TAX_LAWS

DATES = ["2019-01-01", "2021-01-01", "2022-07-01", "2024-01-01", "2025-01-01", "2026-07-01"]
SURNAMES = "김이박최정강조윤장임한오서신권황안송류홍"
GIVEN = "민서지현준우하은도윤시아예린주원수빈건태성호영진"
LAWS = [law for law in TAX_LAWS if "지방" not in law][:14]


def bundled_chunks(work: Path) -> list[dict]:
    """The bundled corpus through the real collect and prepare stages."""
    from slm_forest.config import load_config
    from slm_forest.pipeline import run_stage

    cfg = load_config(None, ["run_name=bench", f"runs_dir={work / 'runs'}"])
    run_stage(cfg, "collect")
    run_stage(cfg, "prepare")
    with open(cfg.run_dir() / "prepare" / "chunks.jsonl", encoding="utf-8") as handle:
        return [json.loads(line) for line in handle]


def _redraw_numbers(rng: random.Random, text: str) -> str:
    return re.sub(r"\d+", lambda m: str(rng.randrange(1, 10 ** min(len(m.group()), 6))), text)


def _variant(rng: random.Random, template: dict, lines: list[str], n: int) -> dict:
    head, *body = template["text"].splitlines()
    body = [rng.choice(lines) if rng.random() < 0.33 else line for line in body] or [rng.choice(lines)]
    chunk = {**template, "id": f"chunk-{n:010d}", "position": 0, "meta": {}}
    if template["kind"] == "statute_article":
        law, article = rng.choice(LAWS), rng.randrange(1, 400)
        name = template["title"].split("(", 1)[1].rstrip(")") if "(" in template["title"] else "세율"
        effective = rng.choice(DATES)
        head = f"제{article}조({name})"
        chunk |= {
            "doc_id": f"law-{law}-{article}-{effective}",
            "title": f"{law} {head}",
            "citation": f"{law} 제{article}조",
            "law_name": law,
            "article_no": article,
            "article_branch": None,
            "effective_date": effective,
        }
    else:
        person = rng.choice(SURNAMES) + rng.choice(GIVEN) + rng.choice(GIVEN)
        doc_no = f"서면-{rng.randrange(2010, 2026)}-법규소득-{rng.randrange(1, 9999):04d}"
        body.insert(0, f"질의인 {person}은 다음과 같이 질의하였다.")
        chunk |= {"doc_id": f"intp-{n}", "citation": doc_no}
    chunk["text"] = _redraw_numbers(rng, "\n".join([head, *body]))
    chunk["n_chars"] = len(chunk["text"])
    return chunk


def generate(path: Path, templates: list[dict], size_mb: float, seed: int = 7) -> int:
    rng = random.Random(seed)
    lines = [line for t in templates for line in t["text"].splitlines()[1:] if len(line) > 10]
    target, written, n = int(size_mb * 1_000_000), 0, 0
    with open(path, "w", encoding="utf-8") as out:
        while written < target:
            line = json.dumps(_variant(rng, rng.choice(templates), lines, n), ensure_ascii=False) + "\n"
            out.write(line)
            written += len(line.encode("utf-8"))
            n += 1
    return n


def questions(path: Path, count: int, seed: int = 11) -> list[str]:
    """Questions from chunks spread over the file (reservoir sample): citations, body lines, titles."""
    rng = random.Random(seed)
    sample: list[dict] = []
    with open(path, encoding="utf-8") as handle:
        for i, line in enumerate(handle):
            if len(sample) < count:
                sample.append(json.loads(line))
            elif (j := rng.randrange(i + 1)) < count:
                sample[j] = json.loads(line)
    out = []
    for i, chunk in enumerate(sample):
        body = [line for line in chunk["text"].splitlines()[1:] if len(line) > 15] or [chunk["title"]]
        if i % 3 == 0 and chunk["kind"] == "statute_article":
            out.append(f"{chunk['citation']} 제1항에서 정하는 요건은 무엇인가요?")
        elif i % 3 == 1:
            out.append(" ".join(rng.choice(body).split()[:12]) + "에 대해 알려 주세요")
        else:
            out.append(f"{chunk['title'].split('(')[-1].rstrip(')')} 규정은 어떤 내용인가요?")
    return out


def _child(chunks: Path, out_dir: Path) -> None:
    """In a subprocess: build the index, print its seconds (the parent reads the child's peak RSS)."""
    from slm_datagen.index.build import build_index
    from slm_forest.config import IndexConfig

    started = time.perf_counter()
    outcome = build_index(chunks, out_dir, IndexConfig())
    print(json.dumps({"seconds": time.perf_counter() - started, "counts": outcome.counts, "stats": outcome.stats}))


def _dir_mb(path: Path) -> float:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) / 1_000_000


def _percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size-mb", type=float, default=400.0, help="size of the synthetic chunks.jsonl")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--workdir", type=Path, default=None, help="where the corpus and index go (default: temp)")
    parser.add_argument("--keep", action="store_true", help="keep the corpus and the index")
    parser.add_argument("--child", nargs=2, metavar=("CHUNKS", "OUT_DIR"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        _child(Path(args.child[0]), Path(args.child[1]))
        return
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-index-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        run(args, work)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)


def run(args: argparse.Namespace, work: Path) -> None:
    from slm_datagen.index import load_index, search

    chunks, out_dir = work / "chunks.jsonl", work / "index"
    started = time.perf_counter()
    n = generate(chunks, bundled_chunks(work), args.size_mb)
    corpus_mb = chunks.stat().st_size / 1_000_000
    print(f"generated {corpus_mb:.0f} MB, {n} chunks in {time.perf_counter() - started:.0f}s")

    command = [sys.executable, __file__, "--child", str(chunks), str(out_dir)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parent.parent)}
    done = subprocess.run(command, capture_output=True, text=True, env=env)
    if done.returncode != 0:
        sys.exit(f"build failed:\n{done.stderr[-3000:]}")
    built = json.loads(done.stdout.strip().splitlines()[-1])
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    index_mb, bm25_mb = _dir_mb(out_dir), _dir_mb(out_dir / "bm25")
    print(
        f"build: {built['seconds']:.0f}s ({built['stats']['analyse_seconds']:.0f}s reading + morphemes, "
        f"{built['stats']['bm25_seconds']:.0f}s bm25s + files), peak RSS {peak_mb:.0f} MB; {built['counts']}; "
        f"{built['stats']['term_occurrences']} term occurrences"
    )
    print(f"size: index {index_mb:.0f} MB of which bm25 matrix + vocabulary {bm25_mb:.0f} MB (the rest: chunk copy)")

    loading = time.perf_counter()
    index = load_index(out_dir)
    print(f"load: {time.perf_counter() - loading:.1f}s")
    asked = questions(chunks, args.queries + 20)
    for query in asked[:20]:
        search(index, query, k=5, as_of="2025-06-01")
    latencies = []
    for query in asked[20:]:
        t = time.perf_counter()
        search(index, query, k=5, as_of="2025-06-01")
        latencies.append((time.perf_counter() - t) * 1000)
    p50, p95 = _percentile(latencies, 0.5), _percentile(latencies, 0.95)
    print(
        f"queries: {len(latencies)} at k=5, p50 {p50:.1f} ms, p95 {p95:.1f} ms, max {max(latencies):.1f} ms; "
        f"1-min load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores (goal p95 <= 50 ms)"
    )
    print(f"index: build_s={built['seconds']:.1f} mb={index_mb:.0f} p50_ms={p50:.1f} p95_ms={p95:.1f}")


if __name__ == "__main__":
    main()
