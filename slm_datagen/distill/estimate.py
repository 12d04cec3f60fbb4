"""`slm distill --dry-run`: what the plan would send, in tokens and dollars per teacher, with a range; nothing is called.

Per request the estimate is: input tokens (our character-based count of the messages and the reply schema, split
into the cacheable stable prefix and the rest), expected output tokens per pair (`pricing.EXPECTED_OUTPUT_TOKENS`),
and the teacher's prices for uncached, cached and cache-written input and for output.

Calibration: once the ledger holds answered requests of the same teacher and prompt version (a `--limit 20` trial,
or an earlier run), the estimate uses what they measured instead of the assumptions:
- input ratio = real input tokens / estimated input tokens (the provider's tokenizer against ours, repairs included);
- output ratio = real output tokens / expected output tokens (so: real output tokens per pair);
- cache hit and write rates = cached (written) input tokens / the cacheable prefix of those requests.
The range is then ± two standard errors of the per-request cost ratio (at least ±5 %). Without measurements it spans
replies of half to 1.6 × the expected size and a cache that serves nothing to everything it could.

The progress bar's projected total (`Projection`) starts from this estimate and scales what is left by the
actual / estimated cost of the requests finished so far.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.table import Table

from slm_datagen.distill.plan import PlannedRequest, teacher_label
from slm_datagen.distill.pricing import (
    BATCH_PRICE_FACTOR,
    EXPECTED_OUTPUT_TOKENS,
    PRICES_AS_OF,
    Price,
    estimate_output_tokens,
    find_price,
    min_cached_tokens,
)
from slm_forest.config import DistillConfig, TeacherConfig
from slm_forest.progress import console

MIN_RELATIVE_RANGE = 0.05
UNMEASURED_OUTPUT_RANGE = (0.5, 1.6)


@dataclass
class Calibration:
    """Measured on answered requests of one (teacher label, prompt version)."""

    requests: int = 0
    est_input: float = 0.0
    input_tokens: float = 0.0
    expected_output: float = 0.0
    output_tokens: float = 0.0
    cacheable: float = 0.0  # estimated cacheable prefix of those requests
    cached: float = 0.0
    written: float = 0.0
    ratios: list[float] = field(default_factory=list)  # per request: actual cost / estimated cost (uncached)

    @property
    def input_ratio(self) -> float:
        return self.input_tokens / self.est_input if self.est_input else 1.0

    @property
    def output_ratio(self) -> float:
        return self.output_tokens / self.expected_output if self.expected_output else 1.0

    def rate(self, tokens: float) -> float:
        scaled = self.cacheable * self.input_ratio
        return min(1.0, tokens / scaled) if scaled else 0.0

    def relative_range(self) -> float:
        if len(self.ratios) < 2:
            return 0.25
        mean = sum(self.ratios) / len(self.ratios)
        var = sum((r - mean) ** 2 for r in self.ratios) / (len(self.ratios) - 1)
        return max(MIN_RELATIVE_RANGE, 2 * math.sqrt(var) / mean / math.sqrt(len(self.ratios))) if mean else 0.25


def _expected_output(styles: list[str], max_tokens: int) -> int:
    return sum(estimate_output_tokens(style, max_tokens) for style in styles)


def calibrate(ledger_path: Path | None, cfg: DistillConfig) -> dict[tuple[str, str], Calibration]:
    """Read the ledger's done rows that carry estimates (written since issue 16) into per-version measurements."""
    out: dict[tuple[str, str], Calibration] = {}
    if ledger_path is None or not ledger_path.exists():
        return out
    prices = {teacher_label(t): find_price(t.model, t.provider, cfg.prices) for t in cfg.teachers}
    max_tokens = {teacher_label(t): t.max_tokens for t in cfg.teachers}
    with open(ledger_path, "rb") as handle:
        for raw in handle:
            if b'"type":"done"' not in raw or b'"est_input_tokens"' not in raw or not raw.endswith(b"\n"):
                continue
            row = json.loads(raw)
            label = f"{row.get('teacher')}:{row.get('model')}"
            usage = row.get("usage") or {}
            if label not in prices:
                continue
            styles = [item["style"] for item in row["items"]] if "items" in row else [row.get("style", "explain")]
            entry = out.setdefault((label, row.get("prompt_version", "")), Calibration())
            expected_out = _expected_output(styles, max_tokens[label])
            entry.requests += 1
            entry.est_input += row["est_input_tokens"]
            entry.input_tokens += usage.get("input_tokens", 0)
            entry.expected_output += expected_out
            entry.output_tokens += usage.get("output_tokens", 0)
            entry.cacheable += row.get("est_cacheable_tokens", 0)
            entry.cached += usage.get("cached_input_tokens", 0)
            entry.written += usage.get("cache_write_tokens", 0)
            price = prices[label]
            if price is not None:
                guess = price.cost(row["est_input_tokens"], expected_out, batch=bool(row.get("batch")))
                if guess > 0:
                    entry.ratios.append(float(usage.get("cost_usd", 0.0)) / guess)
    return out


@dataclass(frozen=True)
class RequestEstimate:
    input_tokens: float
    cacheable_tokens: float
    output_tokens: float
    low: float
    central: float
    high: float


def estimate_request(
    request: PlannedRequest,
    teacher: TeacherConfig,
    price: Price,
    calibration: Calibration | None,
    *,
    batch: bool,
    warm_share: float,
) -> RequestEstimate:
    """Tokens and dollars of one planned request; `warm_share` is the share of requests that find the cache warm."""
    styles = [style for _, style in request.pairs]
    expected_out = _expected_output(styles, teacher.max_tokens)
    cacheable_ok = (min_cached_tokens(teacher.provider, teacher.model) or math.inf) <= request.cacheable_tokens_est
    cacheable = request.cacheable_tokens_est if cacheable_ok else 0

    def cost(in_tokens: float, out_tokens: float, hit: float, write: float) -> float:
        cached, written = hit * cacheable * in_tokens / max(1, request.input_tokens_est), 0.0
        if teacher.provider == "anthropic":
            written = write * cacheable * in_tokens / max(1, request.input_tokens_est)
        long_writes = int(written) if batch else 0  # batch mode writes Anthropic's 1-hour cache (batch.py)
        return price.cost(
            int(in_tokens),
            int(out_tokens),
            batch=batch,
            cached_tokens=int(cached),
            cache_write_tokens=int(written),
            cache_write_1h_tokens=long_writes,
        )

    if calibration is not None and calibration.requests:
        in_tokens = request.input_tokens_est * calibration.input_ratio
        out_tokens = expected_out * calibration.output_ratio
        central = cost(
            in_tokens, out_tokens, calibration.rate(calibration.cached), calibration.rate(calibration.written)
        )
        spread = calibration.relative_range()
        return RequestEstimate(
            in_tokens, cacheable, out_tokens, central * (1 - spread), central, central * (1 + spread)
        )
    in_tokens = float(request.input_tokens_est)
    central = cost(in_tokens, expected_out, warm_share, 1 - warm_share)
    low_out, high_out = (min(teacher.max_tokens * len(styles), expected_out * f) for f in UNMEASURED_OUTPUT_RANGE)
    low = cost(in_tokens, low_out, 1.0, 0.0)
    high = cost(in_tokens, high_out, 0.0, 1.0 if teacher.provider == "anthropic" else 0.0)
    return RequestEstimate(in_tokens, cacheable, float(expected_out), low, central, high)


def _prices(cfg: DistillConfig) -> dict[int, Price | None]:
    return {i: find_price(t.model, t.provider, cfg.prices) for i, t in enumerate(cfg.teachers)}


def request_estimates(
    plan: list[PlannedRequest], pending: set[str], cfg: DistillConfig, calibration: dict
) -> dict[str, RequestEstimate | None]:
    """Per pending API request key: its estimate (None when the teacher's price is unknown)."""
    prices = _prices(cfg)
    per_teacher = {i: sum(1 for r in plan if r.teacher_index == i and r.key in pending) for i in prices}
    out: dict[str, RequestEstimate | None] = {}
    for request in plan:
        teacher = cfg.teachers[request.teacher_index]
        if request.key not in pending or teacher.provider == "offline":
            continue
        price = prices[request.teacher_index]
        if price is None:
            out[request.key] = None
            continue
        n = per_teacher[request.teacher_index]
        out[request.key] = estimate_request(
            request,
            teacher,
            price,
            calibration.get((teacher_label(teacher), request.prompt_version)),
            batch=cfg.mode == "batch",
            warm_share=(n - 1) / n if n else 0.0,
        )
    return out


def estimate(
    plan: list[PlannedRequest], pending: set[str], cfg: DistillConfig, calibration: dict | None = None
) -> dict[str, dict[str, Any]]:
    """Per teacher: requests to send, tokens (cacheable share), output tokens and dollars with a range."""
    calibration = calibration or {}
    prices = _prices(cfg)
    estimates = request_estimates(plan, pending, cfg, calibration)
    out: dict[str, dict[str, Any]] = {}
    for request in plan:
        teacher = cfg.teachers[request.teacher_index]
        label = teacher_label(teacher)
        entry = out.setdefault(label, _empty_entry(prices[request.teacher_index], calibration, label, request))
        if request.key not in pending:
            entry["cached"] += 1
            continue
        entry["requests"] += 1
        entry["pairs"] += len(request.pairs)
        if teacher.provider == "offline":
            continue
        est = estimates[request.key]
        if est is None:
            entry["cost_usd"] = entry["low_usd"] = entry["high_usd"] = None
            entry["input_tokens"] += request.input_tokens_est
            entry["output_tokens"] += _expected_output([s for _, s in request.pairs], teacher.max_tokens)
            continue
        entry["input_tokens"] += int(est.input_tokens)
        entry["cacheable_tokens"] += int(est.cacheable_tokens)
        entry["output_tokens"] += int(est.output_tokens)
        if entry["cost_usd"] is not None:
            entry["cost_usd"] += est.central
            entry["low_usd"] += est.low
            entry["high_usd"] += est.high
    return out


def _basis(calibration: dict, label: str) -> str:
    """Where the estimate's output and cache figures come from, with the cache share the teacher really got (a
    prefix below the provider's minimum shows here as 0 %, before the whole run is paid)."""
    measured = [c for (lab, _), c in calibration.items() if lab == label]
    requests = sum(c.requests for c in measured)
    if not requests:
        return "assumed (run --limit 20 to measure)"
    input_tokens = sum(c.input_tokens for c in measured)
    share = sum(c.cached for c in measured) / input_tokens if input_tokens else 0.0
    return f"measured on {requests} requests (input served from cache: {share:.0%})"


def _empty_entry(price: Price | None, calibration: dict, label: str, request: PlannedRequest) -> dict[str, Any]:
    return {
        "requests": 0,
        "pairs": 0,
        "cached": 0,
        "input_tokens": 0,
        "cacheable_tokens": 0,
        "output_tokens": 0,
        "cost_usd": 0.0,
        "low_usd": 0.0,
        "high_usd": 0.0,
        "price": None if price is None else price.label(),
        "price_source": None if price is None else price.source,
        "basis": _basis(calibration, label),
    }


def _money(value: float | None) -> str:
    return "unknown (set distill.prices)" if value is None else f"${value:,.4f}"


def print_estimate(est: dict[str, dict[str, Any]], cfg: DistillConfig, n_chunks: int, spent_usd: float = 0.0) -> str:
    batch = f" (batch: {BATCH_PRICE_FACTOR:g} x price)" if cfg.mode == "batch" else ""
    title = f"distill --dry-run: {n_chunks} chunks{batch}; USD per 1M tokens, shipped prices as of {PRICES_AS_OF}"
    header = ("teacher", "requests", "pairs", "cached", "in tokens (cacheable)", "out tokens", "dollars", "range")
    rows, total, low, high, unknown = [], 0.0, 0.0, 0.0, False
    for label, e in est.items():
        cost = e["cost_usd"]
        unknown |= cost is None
        total, low, high = total + (cost or 0.0), low + (e["low_usd"] or 0.0), high + (e["high_usd"] or 0.0)
        share = f" ({e['cacheable_tokens'] / e['input_tokens']:.0%})" if e["input_tokens"] else ""
        rows.append(
            (
                label,
                str(e["requests"]),
                str(e["pairs"]),
                str(e["cached"]),
                f"{e['input_tokens']:,}{share}",
                f"{e['output_tokens']:,}",
                _money(cost),
                "-" if cost is None else f"{_money(e['low_usd'])}–{_money(e['high_usd'])}",
            )
        )
    _print_table(title, header, rows)
    for label, e in est.items():
        print(f"  {label}: {e['price'] or 'no price'}; output and cache {e['basis']}", file=console.file)
    summary = (
        f"dry run: {sum(e['requests'] for e in est.values())} requests for "
        f"{sum(e['pairs'] for e in est.values())} pairs, "
        f"~{sum(e['input_tokens'] + e['output_tokens'] for e in est.values()):,} tokens (estimated), "
        f"~${total:,.2f} (${low:,.2f}–${high:,.2f}){' + unknown' if unknown else ''}; "
        "nothing was sent"
    )
    if cfg.max_cost_usd is not None:
        summary += f"; ${spent_usd:,.4f} of the distill.max_cost_usd ${cfg.max_cost_usd:g} already spent"
    return summary


def _print_table(title: str, header: tuple[str, ...], rows: list[tuple[str, ...]]) -> None:
    if console.is_terminal:
        table = Table(title=title)
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
        return
    # Piped or logged: rich would squeeze the table into 80 columns and cut teacher names; plain tab-separated
    # lines (written as is: rich would expand the tabs) keep every value whole and easy to grep.
    print(title, file=console.file)
    for row in (header, *rows):
        print("\t".join(row), file=console.file)


class Projection:
    """The projected total for the progress bar: spent + what is left, scaled by actual / estimated so far."""

    def __init__(self, estimates: dict[str, RequestEstimate | None]) -> None:
        self.estimates = {k: (v.central if v is not None else 0.0) for k, v in estimates.items()}
        self.left = sum(self.estimates.values())
        self.done_estimated = 0.0
        self.done_actual = 0.0

    def finished(self, key: str, actual_usd: float) -> None:
        estimated = self.estimates.pop(key, 0.0)
        self.left -= estimated
        self.done_estimated += estimated
        self.done_actual += actual_usd

    def total(self, spent_usd: float) -> float:
        scale = self.done_actual / self.done_estimated if self.done_estimated > 0 else 1.0
        return spent_usd + max(0.0, self.left) * scale

    def label(self, spent_usd: float) -> str:
        return f"distill (${spent_usd:,.2f} of ~${self.total(spent_usd):,.2f} projected)"


__all__ = ["EXPECTED_OUTPUT_TOKENS", "Projection", "calibrate", "estimate", "print_estimate", "request_estimates"]
