"""`slm distill --dry-run`: what the plan would send, in tokens and dollars per teacher; nothing is called."""

from __future__ import annotations

from typing import Any

from rich.table import Table

from slm_datagen.distill.plan import PlannedRequest, teacher_label
from slm_datagen.distill.pricing import PRICES_AS_OF, Price, estimate_output_tokens, find_price
from slm_forest.config import DistillConfig
from slm_forest.progress import console


def _prices(cfg: DistillConfig) -> dict[int, Price | None]:
    return {i: find_price(t.model, t.provider, cfg.prices) for i, t in enumerate(cfg.teachers)}


def estimate(plan: list[PlannedRequest], pending: set[str], cfg: DistillConfig) -> dict[str, dict[str, Any]]:
    """Per teacher: requests to send, estimated input/output tokens and dollars (None when the price is unknown)."""
    prices = _prices(cfg)
    out: dict[str, dict[str, Any]] = {}
    for request in plan:
        teacher = cfg.teachers[request.teacher_index]
        label = teacher_label(teacher)
        entry = out.setdefault(
            label, {"requests": 0, "cached": 0, "input_tokens": 0, "output_tokens": 0, "cost_usd": 0.0, "price": None}
        )
        if request.key not in pending:
            entry["cached"] += 1
            continue
        out_tokens = 0 if teacher.provider == "offline" else estimate_output_tokens(request.style, teacher.max_tokens)
        entry["requests"] += 1
        entry["input_tokens"] += request.input_tokens_est
        entry["output_tokens"] += out_tokens
        price = prices[request.teacher_index]
        if price is None:
            entry["cost_usd"] = None
        elif entry["cost_usd"] is not None:
            entry["cost_usd"] += price.cost(request.input_tokens_est, out_tokens, batch=cfg.mode == "batch")
        entry["price"] = None if price is None else f"${price.input_per_mtok:g} in / ${price.output_per_mtok:g} out"
        entry["price_source"] = None if price is None else price.source
    return out


def print_estimate(est: dict[str, dict[str, Any]], cfg: DistillConfig, n_chunks: int, spent_usd: float = 0.0) -> str:
    batch = " (batch: half price)" if cfg.mode == "batch" else ""
    title = f"distill --dry-run: {n_chunks} chunks{batch}; USD per 1M tokens, shipped prices as of {PRICES_AS_OF}"
    header = ("teacher", "requests", "cached", "in tokens", "out tokens", "dollars", "price/Mtok")
    rows = []
    total = 0.0
    unknown = False
    for label, e in est.items():
        cost = e["cost_usd"]
        unknown |= cost is None
        total += cost or 0.0
        rows.append(
            (
                label,
                str(e["requests"]),
                str(e["cached"]),
                f"{e['input_tokens']:,}",
                f"{e['output_tokens']:,}",
                "unknown (set distill.prices)" if cost is None else f"${cost:,.4f}",
                e["price"] or "-",
            )
        )
    if console.is_terminal:
        table = Table(title=title)
        for column in header:
            table.add_column(column, overflow="fold")
        for row in rows:
            table.add_row(*row)
        console.print(table)
    else:
        # Piped or logged: rich would squeeze the table into 80 columns and cut teacher names; plain
        # tab-separated lines (written as is: rich would expand the tabs) keep every value whole and easy to grep.
        print(title, file=console.file)
        for row in (header, *rows):
            print("\t".join(row), file=console.file)
    summary = (
        f"dry run: {sum(e['requests'] for e in est.values())} requests, "
        f"~{sum(e['input_tokens'] + e['output_tokens'] for e in est.values()):,} tokens (estimated), "
        f"~${total:,.2f}{' + unknown' if unknown else ''}; each bad reply adds one repair request; "
        "nothing was sent"
    )
    if cfg.max_cost_usd is not None:
        summary += f"; ${spent_usd:,.4f} of the distill.max_cost_usd ${cfg.max_cost_usd:g} already spent"
    return summary
