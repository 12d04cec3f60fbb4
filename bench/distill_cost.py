"""Benchmark of what a dataset costs: the seed-style loop (one request per pair, no cache) vs the new default.

    python bench/distill_cost.py              # the real corpus in ../shared (21 statute articles, 96 rulings)

Every run goes through `slm distill`'s stage function against the fake teacher server (tests/fake_teacher_server.py)
with two teachers, OpenAI gpt-4o and Anthropic claude-sonnet-4-5, at the shipped prices, on the same chunks with
audiences expert + layperson and styles explain + calculation (calculation only where a chunk's law has one):

- baseline: `pairs_per_request: 1` (one request per pair, the layout before issue 16) on a server without prompt
  caching, as the seed project's loop paid;
- new (online): the default (every pair of a chunk in one request) on a server that simulates both providers'
  prompt caches (`tests/fake_prompt_cache.py`: prefix match, minimum cacheable length 1,024 tokens for gpt-4o and
  Sonnet 4.5, OpenAI's 128-token steps, 5-minute / 1-hour lifetimes) and reports usage as each provider does;
- new + `mode: batch` (the user opts in): the same through both batch APIs, each batch's lines run as if all at
  once for the caches (`PromptCache.concurrent()`, the worst case: a batch's cache hits are best-effort);
- the same batch run without primers, to show what priming the cache buys.

The fake teacher counts tokens from the text it receives and returns with one estimate for both sides (one token
per non-ASCII character, four ASCII characters per token). Its replies are deterministic per (chunk, pair): a
question, an answer of 250-650 characters built from the source text, citations, and for a calculation pair a payload
`slm build` can recompute. The same 6 % of pairs come back unusable in both runs (an English answer), so both pay
the same repair rules; acceptance = pairs in qa_pairs.jsonl.

The new runs are started as a user would: a `--limit 20` trial, then `--dry-run` (which uses what the trial
measured), then the whole corpus. estimate_error = |projected total - final total| / final total. Each run prints
where its dollars go: input tokens per request by part, cache reads / writes / misses, output per accepted pair.

Goals: ratio <= 0.35 at an equal or higher acceptance rate, estimate_error <= 0.15. The line before the last is
the online default; the last line is batch mode:
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

from slm_datagen.distill import batch as batch_module  # noqa: E402
from slm_datagen.distill.ledger import Ledger  # noqa: E402
from slm_datagen.distill.pricing import find_price  # noqa: E402
from slm_datagen.distill.stage import run_distill  # noqa: E402
from tests.fake_teacher_server import (  # noqa: E402
    FakeTeacherServer,
    approx_tokens,
    last_user_text,
    prompt_text,
    response_schema,
)
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


PARTS = ("schema", "system", "calc rules", "source", "instructions", "repair")
_SOURCE_HEAD = ("[법령 조문]", "[판례]", "[국세청 해석]")
REPAIR_HEADS = ("방금 답변", "이 요청은 공개된")


def _message_parts(role: str, text: str) -> list[tuple[str, str]]:
    """(part, text) of one message: the pairs layout sends each part as its own message; the single-pair layout
    has the source block, then the task and rules in one user message."""
    if role == "system":
        return [("system", text)]
    if role == "assistant" or text.startswith(REPAIR_HEADS):
        return [("repair", text)]
    if text.startswith("유형이 세액 계산인 쌍의 규칙"):
        return [("calc rules", text)]
    if text.startswith(_SOURCE_HEAD):
        source, sep, rest = text.partition("\n\n위 ")
        return [("source", source)] + ([("instructions", sep + rest)] if sep else [])
    return [("instructions", text)]


def request_parts(req: dict, provider: str) -> dict[str, int]:
    """Tokens of each part of one request body (the fake teacher's estimate), as the provider receives it."""
    parts = dict.fromkeys(PARTS, 0)
    if provider == "anthropic":
        parts["schema"] = approx_tokens(json.dumps(req.get("tools") or [], ensure_ascii=False))
        system = req.get("system") or ""
        parts["system"] = approx_tokens(system if isinstance(system, str) else "\n".join(b["text"] for b in system))
    else:
        fmt = (req.get("response_format") or {}).get("json_schema")
        parts["schema"] = approx_tokens(json.dumps(fmt, ensure_ascii=False, sort_keys=True)) if fmt else 0
    for message in req.get("messages") or []:
        content = message.get("content")
        blocks = [content] if isinstance(content, str) else [b.get("text", "") for b in content or []]
        for text in blocks:
            for part, piece in _message_parts(message.get("role", "user"), text):
                parts[part] += approx_tokens(piece)
    return parts


def _teachers(server: FakeTeacherServer) -> list[dict[str, Any]]:
    common = {"max_concurrency": 8, "max_retries": 3, "timeout_s": 30}
    return [
        {"provider": "openai", "model": "gpt-4o", "base_url": server.openai_base_url, **common},
        {"provider": "anthropic", "model": "claude-sonnet-4-5", "base_url": server.anthropic_base_url, **common},
    ]


def _config(server: FakeTeacherServer, pairs_per_request: int | None, mode: str) -> dict[str, Any]:
    return {
        "teachers": _teachers(server),
        "audiences": ["expert", "layperson"],
        "styles": ["explain", "calculation"],
        "pairs_per_request": pairs_per_request,
        "failure_threshold": 1.0,
        "mode": mode,
        "batch_poll_s": 0.05,
    }


def _ledger_totals(stage_dir: Path) -> dict[str, dict[str, float]]:
    """Per teacher and in all: tokens and dollars of what the ledger says was paid, split by kind of token."""
    by: dict[str, dict[str, float]] = {}
    for line in (stage_dir / "ledger.jsonl").read_text(encoding="utf-8").splitlines():
        row = json.loads(line)
        if row["type"] != "done":
            continue
        usage, price = row["usage"], find_price(row["model"], row["teacher"])
        cached, written = usage.get("cached_input_tokens", 0), usage.get("cache_write_tokens", 0)
        plain = usage["input_tokens"] - cached - written
        factor = 0.5 if row.get("batch") else 1.0
        for label in (f"{row['teacher']}:{row['model']}", "all"):
            t = by.setdefault(label, dict.fromkeys(TOTAL_FIELDS, 0.0))
            t["input"] += usage["input_tokens"]
            t["cached"] += cached
            t["written"] += written
            t["output"] += usage["output_tokens"]
            t["plain_usd"] += factor * plain * price.input_per_mtok / 1e6
            t["cached_usd"] += factor * cached * (price.cached_input_per_mtok or price.input_per_mtok) / 1e6
            long_writes = usage.get("cache_write_1h_tokens", 0)  # batch mode's 1-hour cache writes, 2 x input
            t["written_usd"] += factor * price.cost(
                written, 0, cache_write_tokens=written, cache_write_1h_tokens=long_writes
            )
            t["output_usd"] += factor * usage["output_tokens"] * price.output_per_mtok / 1e6
    with Ledger(stage_dir / "ledger.jsonl", readonly=True) as ledger:
        by["all"]["cost"] = ledger.index.spent_usd
    return by


TOTAL_FIELDS = ("input", "cached", "written", "output", "plain_usd", "cached_usd", "written_usd", "output_usd")


def _concurrent_batches(server: FakeTeacherServer) -> None:
    """Each batch's lines run "at once" for the simulated caches (the worst case: see fake_prompt_cache.py)."""
    for name in ("_openai_batch_complete", "_anthropic_batch_end"):
        original = getattr(server, name)

        def wrapped(batch_id: str, _original=original) -> None:
            with server.prompt_cache.concurrent():
                _original(batch_id)

        setattr(server, name, wrapped)


def run(
    workdir: Path, chunks: list, pairs_per_request: int | None, cache: bool, mode: str = "online", primer: bool = True
) -> dict:
    bodies: list[tuple[str, dict]] = []

    def responder(req: dict, provider: str) -> Any:
        bodies.append((provider, req))
        return bench_responder(req, provider)

    with FakeTeacherServer(responder=responder, prompt_cache=cache, enforce_max_tokens=True, batch_polls=1) as server:
        distill = _config(server, pairs_per_request, mode)
        if mode == "batch":
            _concurrent_batches(server)
        saved = batch_module.warms_cache
        if not primer:  # what priming buys: every request in one concurrent batch
            batch_module.warms_cache = lambda rt, job: False
        projected = None
        if cache:  # as a user starts: a trial, a dry run that uses it, then everything
            trial = run_distill(make_ctx(workdir, chunks, distill, limit=TRIAL_CHUNKS))
            dry = run_distill(make_ctx(workdir, chunks, distill, dry_run=True))
            rest = sum(e["cost_usd"] for e in dry.stats["estimate"].values())
            projected = trial.stats["cost_usd_total"] + rest
            print(f"  trial {TRIAL_CHUNKS} chunks: ${trial.stats['cost_usd_total']:.4f}; dry run: {dry.summary}")
        result = run_distill(make_ctx(workdir, chunks, distill))
        batch_module.warms_cache = saved
    totals = _ledger_totals(workdir / "run" / "distill")
    pairs, failures = result.counts["pairs"], result.counts["failures"]
    cost = totals["all"]["cost"]
    return {
        "pairs": pairs,
        "failures": failures,
        "acceptance": pairs / max(1, pairs + failures),
        "cost": cost,
        "usd_per_pair": cost / max(1, pairs),
        "cached_share": totals["all"]["cached"] / max(1, totals["all"]["input"]),
        "requests": len(bodies),
        "projected": projected,
        "totals": totals,
        "parts": _parts_by_provider(bodies),
        "pairs_by_teacher": _pairs_by_teacher(workdir / "run" / "distill"),
    }


def _parts_by_provider(bodies: list[tuple[str, dict]]) -> dict[str, dict[str, int]]:
    out: dict[str, dict[str, int]] = {}
    for provider, req in bodies:
        entry = out.setdefault(provider, {"requests": 0, **dict.fromkeys(PARTS, 0)})
        entry["requests"] += 1
        for part, tokens in request_parts(req, provider).items():
            entry[part] += tokens
    return out


def _pairs_by_teacher(stage_dir: Path) -> dict[str, int]:
    counts: dict[str, int] = {}
    for line in (stage_dir / "qa_pairs.jsonl").read_text(encoding="utf-8").splitlines():
        pair = json.loads(line)
        label = f"{pair['teacher']}:{pair['model']}"
        counts[label] = counts.get(label, 0) + 1
    return counts


def print_breakdown(name: str, r: dict) -> None:
    """Where the dollars go: per teacher, input by part (tokens per request), cache reads / writes / misses, and
    output per accepted pair."""
    print(
        f"{name}: {r['requests']} requests, {r['pairs']} pairs, {r['failures']} failures "
        f"(acceptance {r['acceptance']:.3f}), ${r['cost']:.4f} = ${r['usd_per_pair']:.6f}/pair, "
        f"cached input {r['cached_share']:.3f}"
    )
    for label, t in r["totals"].items():
        if label == "all":
            continue
        provider = label.split(":")[0]
        parts = r["parts"].get(provider, {})
        n = max(1, parts.get("requests", 0))
        pairs = max(1, r["pairs_by_teacher"].get(label, 0))
        layout = ", ".join(f"{part} {parts.get(part, 0) / n:.0f}" for part in PARTS)
        plain = t["input"] - t["cached"] - t["written"]
        print(
            f"  {label}: {parts.get('requests', 0)} requests; input tokens per request: {layout}; "
            f"input ${t['plain_usd']:.4f} uncached ({plain:,.0f} tok) + ${t['cached_usd']:.4f} cache reads "
            f"({t['cached']:,.0f}) + ${t['written_usd']:.4f} cache writes ({t['written']:,.0f}); "
            f"output ${t['output_usd']:.4f} ({t['output'] / pairs:.0f} tok/pair, ${t['output_usd'] / pairs:.6f}/pair)"
        )


def main() -> int:
    os.environ.setdefault("OPENAI_API_KEY", "bench-not-a-real-key")
    os.environ.setdefault("ANTHROPIC_API_KEY", "bench-not-a-real-key")
    chunks = statute_chunks() + ruling_chunks()
    with tempfile.TemporaryDirectory(prefix="bench-cost-") as tmp:
        baseline = run(Path(tmp) / "baseline", chunks, 1, cache=False)
        new = run(Path(tmp) / "new", chunks, None, cache=True)
        batch = run(Path(tmp) / "batch", chunks, None, cache=True, mode="batch")
        unprimed = run(Path(tmp) / "unprimed", chunks, None, cache=True, mode="batch", primer=False)
    for name, r in (("baseline", baseline), ("new (online)", new), ("new + mode: batch", batch)):
        print_breakdown(name, r)
    print(
        f"batch without the primer (one concurrent batch per teacher): ${unprimed['cost']:.4f}, cached input "
        f"{unprimed['cached_share']:.3f}, ratio {unprimed['usd_per_pair'] / baseline['usd_per_pair']:.3f}"
    )
    lines = {}
    for name, r in (("online", new), ("batch", batch)):
        ratio = r["usd_per_pair"] / baseline["usd_per_pair"]
        error = abs(r["projected"] - r["cost"]) / r["cost"]
        met = ratio <= 0.35 and r["acceptance"] >= baseline["acceptance"] and error <= 0.15
        print(
            f"{name}: projected after the trial ${r['projected']:.4f}, final ${r['cost']:.4f}; targets (ratio <= 0.35 "
            f"at >= acceptance, estimate_error <= 0.15): {'met' if met else 'NOT met'}"
        )
        lines[name] = (
            f"distill_cost: usd_per_accepted_pair={r['usd_per_pair']:.6f} baseline={baseline['usd_per_pair']:.6f} "
            f"ratio={ratio:.3f} cached_input_share={r['cached_share']:.3f} estimate_error={error:.3f}"
        )
    floor = new["totals"]["all"]["output_usd"] / baseline["cost"]
    print(
        f"output alone is {floor:.3f} of the baseline's dollars online, {floor / 2:.3f} in batch: the ratio's floor "
        "with these replies (the same pairs, the same length in both layouts). The fake bills OpenAI's response "
        "schema only when it simulates the cache, so the baseline's OpenAI input is under-billed by its schema tokens."
    )
    print("online (the default, mode: online): " + lines["online"])
    print(lines["batch"])  # last line: the cheapest configuration a user can choose (mode: batch, opt-in)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
