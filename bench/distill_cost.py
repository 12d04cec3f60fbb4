"""Benchmark of what a dataset costs: the seed-style loop (one request per pair, no cache) vs the new default.

    python bench/distill_cost.py              # the real corpus in ../shared (21 statute articles, 96 rulings)

Both runs go through `slm distill`'s stage function against the fake teacher server (tests/fake_teacher_server.py)
with two teachers, OpenAI gpt-4o and Anthropic claude-sonnet-4-5, at the shipped prices, on the same chunks with
audiences expert + layperson and styles explain + calculation (calculation only where a chunk's law has one):

- baseline: `pairs_per_request: 1` (one request per pair, the layout before issue 16) on a server without prompt
  caching, as the seed project's loop paid;
- new: the default (every pair of a chunk in one request) on a server that simulates both providers' prompt caches
  (`tests/fake_prompt_cache.py`: prefix match, minimum cacheable length 1,024 tokens for gpt-4o and Sonnet 4.5,
  OpenAI's 128-token steps, a 5-minute lifetime) and reports usage as each provider does.

The fake teacher counts tokens from the text it receives and returns with one estimate for both sides (one token
per non-ASCII character, four ASCII characters per token). Its replies are deterministic per (chunk, pair): a
question, an answer of 250-650 characters built from the source text, citations, and for a calculation pair a payload
`slm build` can recompute. The same 6 % of pairs come back unusable in both runs (an English answer), so both pay
the same repair rules; acceptance = pairs in qa_pairs.jsonl.

The new run is started as a user would: a `--limit 20` trial, then `--dry-run` (which now uses what the trial
measured), then the whole corpus. estimate_error = |projected total - final total| / final total.

Goals: ratio <= 0.35 at an equal or higher acceptance rate, estimate_error <= 0.15. Last line:
`distill_cost: usd_per_accepted_pair=<x> baseline=<y> ratio=<r> cached_input_share=<s> estimate_error=<e>`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from slm_datagen.distill.ledger import Ledger  # noqa: E402
from slm_datagen.distill.pricing import find_price  # noqa: E402
from slm_datagen.distill.stage import run_distill  # noqa: E402
from tests.fake_teacher_server import FakeTeacherServer, last_user_text, prompt_text, response_schema  # noqa: E402
from tests.test_distill_common import make_ctx, ruling_chunks, statute_chunks  # noqa: E402

BAD_SHARE = 0.06
TRIAL_CHUNKS = 20
STYLES = {"설명": "explain", "세액 계산": "calculation"}
STYLE_WORDS = {"explain": "설명", "calculation": "계산"}
_SENTENCE = re.compile(r"[^.。\n]{12,}?(?:다|요)\.")
_ITEM = re.compile(r"\[(p\d+)\] 대상: (expert|layperson) / 유형: (설명|세액 계산)")
_SINGLE_AUDIENCE = re.compile(r"대상: (세무사|세법을 잘 모르는)")
_SINGLE_KINDS = re.compile(r"허용되는 kind: ([a-z_, ]+)\.")


def _draw(*parts: str) -> float:
    return int(hashlib.sha256("\0".join(parts).encode()).hexdigest()[:8], 16) / 16**8


def _source(prompt: str) -> str:
    match = re.search(r"---\n(.*?)\n---", prompt, re.S)
    return match.group(1) if match else prompt[:1500]


def _citation(prompt: str) -> tuple[str, str]:
    match = re.search(
        r"\[(?:법령 조문|판례|국세청 해석)\] (\S+(?: 및 \S+)?(?:법|세법))?\s*(제\d+조(?:의\d+)?)?", prompt
    )
    law = (match.group(1) if match else None) or "국세기본법"
    return law, (match.group(2) if match and match.group(2) else "제1조")


def _calculation(kinds: str, seed: float) -> dict[str, Any]:
    kind = [k.strip() for k in kinds.split(",") if k.strip()][0]
    amount = 100_000_000 + int(seed * 900) * 1_000_000
    name = {"gift_tax": "amount_won", "inheritance_tax": "taxable_base_won", "income_tax": "taxable_income_won"}
    inputs = [{"name": name.get(kind, "taxable_base_won"), "value": amount}]
    if kind == "gift_tax":
        inputs.append({"name": "relationship", "value": "lineal_ascendant"})
    return {"kind": kind, "year": 2024, "inputs": inputs, "result_won": amount // 5, "result_field": "computed_tax"}


def _pair(prompt: str, pid: str, audience: str, style: str, kinds: str, repair: bool) -> dict[str, Any]:
    """One deterministic, realistic pair: its length and whether it is spoiled depend on (source, pair) only, so
    both layouts get the same pairs; a repair request always gets a usable one."""
    source = _source(prompt)
    key = hashlib.sha256(source.encode()).hexdigest()[:16]
    seed = _draw(key, audience, style)
    law, article = _citation(prompt)
    sentences = _SENTENCE.findall(source) or [source[:200]]
    target = 250 + int(seed * 400)
    answer = "결론부터 말씀드리면, " if audience == "expert" else "쉽게 말하면, "
    index = 0
    while len(answer) < target:
        answer += sentences[index % len(sentences)].strip() + " "
        index += 1
    answer = answer[:target].rstrip() + f" (근거: {law} {article})"
    if not repair and _draw(key, audience, style, "bad") < BAD_SHARE:
        answer = "In short, the provision applies when every statutory requirement is met; see the article."
    ask = "어떤 요건이 필요한가요" if audience == "expert" else "세금을 내야 하나요"
    pair: dict[str, Any] = {
        "question": f"{law} {article}에 따르면 {ask}? ({STYLE_WORDS[style]})",
        "answer": answer,
        "citations": [{"law": law, "article": article}],
        "calculation": _calculation(kinds, seed) if style == "calculation" else None,
    }
    return {"id": pid, **pair} if pid else {**pair, "audience": audience}


def bench_responder(req: dict, provider: str) -> Any:
    """Replies for both layouts: several pairs (`pairs` schema) or one."""
    prompt = prompt_text(req, provider)
    last = last_user_text(req)
    repair = "방금 답변" in last
    if "pairs" in ((response_schema(req, provider) or {}).get("properties") or {}):
        wanted = set(re.findall(r"\[(p\d+)\]", last))
        kinds = _SINGLE_KINDS.search(prompt)  # the calculation rules name the chunk's kinds
        return {
            "pairs": [
                _pair(prompt, pid, audience, STYLES[style], kinds.group(1) if kinds else "", repair)
                for pid, audience, style in _ITEM.findall(prompt)
                if pid in wanted
            ]
        }
    match = _SINGLE_AUDIENCE.search(prompt)
    audience = "expert" if match and match.group(1) == "세무사" else "layperson"
    style = "calculation" if "세액 계산 문제" in prompt else "explain"
    kinds = _SINGLE_KINDS.search(prompt)
    return _pair(prompt, "", audience, style, kinds.group(1) if kinds else "", repair)


def _teachers(server: FakeTeacherServer) -> list[dict[str, Any]]:
    common = {"max_concurrency": 8, "max_retries": 3, "timeout_s": 30}
    return [
        {"provider": "openai", "model": "gpt-4o", "base_url": server.openai_base_url, **common},
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": server.anthropic_base_url, **common},
    ]


def _config(server: FakeTeacherServer, pairs_per_request: int | None) -> dict[str, Any]:
    return {
        "teachers": _teachers(server),
        "audiences": ["expert", "layperson"],
        "styles": ["explain", "calculation"],
        "pairs_per_request": pairs_per_request,
        "failure_threshold": 1.0,
    }


def _ledger_totals(stage_dir: Path) -> dict[str, float]:
    totals = {"cost": 0.0, "input": 0, "cached": 0, "output_cost": 0.0}
    with Ledger(stage_dir / "ledger.jsonl", readonly=True) as ledger:
        totals["cost"] = ledger.index.spent_usd
    for line in (stage_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["type"] == "done":
            totals["input"] += row["usage"]["input_tokens"]
            totals["cached"] += row["usage"].get("cached_input_tokens", 0)
            price = find_price(row["model"], row["teacher"])
            totals["output_cost"] += row["usage"]["output_tokens"] * price.output_per_mtok / 1_000_000
    return totals


def run(workdir: Path, chunks: list, pairs_per_request: int | None, cache: bool) -> dict[str, Any]:
    with FakeTeacherServer(responder=bench_responder, prompt_cache=cache, enforce_max_tokens=True) as server:
        distill = _config(server, pairs_per_request)
        projected = None
        if cache:  # as a user starts: a trial, a dry run that uses it, then everything
            trial = run_distill(make_ctx(workdir, chunks, distill, limit=TRIAL_CHUNKS))
            dry = run_distill(make_ctx(workdir, chunks, distill, dry_run=True))
            rest = sum(e["cost_usd"] for e in dry.stats["estimate"].values())
            projected = trial.stats["cost_usd_total"] + rest
            print(f"  trial {TRIAL_CHUNKS} chunks: ${trial.stats['cost_usd_total']:.4f}; dry run: {dry.summary}")
        result = run_distill(make_ctx(workdir, chunks, distill))
        requests = len(server.generation_requests())
    totals = _ledger_totals(workdir / "run" / "distill")
    pairs, failures = result.counts["pairs"], result.counts["failures"]
    return {
        "pairs": pairs,
        "failures": failures,
        "acceptance": pairs / max(1, pairs + failures),
        "cost": totals["cost"],
        "usd_per_pair": totals["cost"] / max(1, pairs),
        "cached_share": totals["cached"] / max(1, totals["input"]),
        "output_cost": totals["output_cost"],
        "requests": requests,
        "projected": projected,
        "by_teacher": result.stats["dataset_cost_by_teacher"],
    }


def main() -> int:
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-real-key")
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-not-a-real-key")
    chunks = statute_chunks() + ruling_chunks()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        baseline = run(Path(tmp) / "baseline", chunks, 1, cache=False)
        new = run(Path(tmp) / "new", chunks, None, cache=True)
    for name, r in (("baseline", baseline), ("new", new)):
        print(
            f"{name}: {r['requests']} requests, {r['pairs']} pairs, {r['failures']} failures "
            f"(acceptance {r['acceptance']:.3f}), ${r['cost']:.4f} = ${r['usd_per_pair']:.6f}/pair, "
            f"cached input {r['cached_share']:.3f}; by teacher {json.dumps(r['by_teacher'])}"
        )
    ratio = new["usd_per_pair"] / baseline["usd_per_pair"]
    error = abs(new["projected"] - new["cost"]) / new["cost"]
    print(f"projected after the trial ${new['projected']:.4f}, final ${new['cost']:.4f}")
    base_in, new_in = baseline["cost"] - baseline["output_cost"], new["cost"] - new["output_cost"]
    print(
        f"output tokens: ${baseline['output_cost']:.4f} baseline, ${new['output_cost']:.4f} new (the same pairs, written "
        f"once in both): the ratio cannot go below {new['output_cost'] / baseline['cost']:.3f}; input: "
        f"${base_in:.4f} baseline, ${new_in:.4f} new, input_ratio={new_in / base_in:.3f}"
    )
    targets = ratio <= 0.35 and new["acceptance"] >= baseline["acceptance"] and error <= 0.15
    print(f"targets (ratio <= 0.35 at >= acceptance, estimate_error <= 0.15): {'met' if targets else 'NOT met'}")
    print(
        f"distill_cost: usd_per_accepted_pair={new['usd_per_pair']:.6f} baseline={baseline['usd_per_pair']:.6f} "
        f"ratio={ratio:.3f} cached_input_share={new['cached_share']:.3f} estimate_error={error:.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
