"""Dollar prices per million tokens, cost of a reply, and token estimates for `--dry-run`.

Shipped prices are the providers' published list prices for standard (non-batch, non-cached) requests, as of
PRICES_AS_OF (gpt-4o $2.50/$10, gpt-4o-mini $0.15/$0.60, claude-sonnet-4-5 $3/$15, claude-haiku-4-5 $1/$5 per million
input/output tokens). They change, and newer models are not listed: override or add models in the run config,

    distill:
      prices:
        gpt-4o: {input_per_mtok: 2.5, output_per_mtok: 10.0}

Batch requests (OpenAI Batch API, Anthropic Message Batches) cost BATCH_PRICE_FACTOR of the standard price.
Model names match exactly first, then by the longest shipped prefix ("gpt-4o-2024-08-06" -> "gpt-4o"; dated Claude
names such as "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5").
"""

from __future__ import annotations

from dataclasses import dataclass

PRICES_AS_OF = "2025-11-25"
BATCH_PRICE_FACTOR = 0.5

# USD per 1M tokens: (input, output).
SHIPPED_PRICES: dict[str, tuple[float, float]] = {
    "gpt-4o": (2.50, 10.00),
    "gpt-4o-mini": (0.15, 0.60),
    "gpt-4.1": (2.00, 8.00),
    "gpt-4.1-mini": (0.40, 1.60),
    "gpt-4.1-nano": (0.10, 0.40),
    "claude-sonnet-4-5": (3.00, 15.00),
    "claude-sonnet-4": (3.00, 15.00),
    "claude-3-7-sonnet": (3.00, 15.00),
    "claude-haiku-4-5": (1.00, 5.00),
    "claude-3-5-haiku": (0.80, 4.00),
    "claude-opus-4-1": (15.00, 75.00),
    "offline-v1": (0.0, 0.0),
}

# Rough Korean tokenisation for estimates: ~1.6 characters per token for Hangul text in current tokenizers.
CHARS_PER_TOKEN = 1.6
MESSAGE_OVERHEAD_TOKENS = 8
# Expected reply sizes (tokens) for the estimate; the real usage is always taken from the replies.
EXPECTED_OUTPUT_TOKENS = {"explain": 550, "calculation": 900}


@dataclass(frozen=True)
class Price:
    model: str
    input_per_mtok: float
    output_per_mtok: float
    source: str  # "config" / "shipped <date>" / "free (local server)"

    def cost(self, input_tokens: int, output_tokens: int, *, batch: bool = False) -> float:
        factor = BATCH_PRICE_FACTOR if batch else 1.0
        return factor * (input_tokens * self.input_per_mtok + output_tokens * self.output_per_mtok) / 1_000_000


def find_price(model: str, provider: str, overrides: dict[str, dict[str, float]] | None = None) -> Price | None:
    """The price of `model`, or None when nothing is known (the caller decides whether that is an error)."""
    overrides = overrides or {}
    if model in overrides:
        entry = overrides[model]
        return Price(model, float(entry.get("input_per_mtok", 0.0)), float(entry.get("output_per_mtok", 0.0)), "config")
    if provider == "offline":
        return Price(model, 0.0, 0.0, "free (offline)")
    if model in SHIPPED_PRICES:
        inp, out = SHIPPED_PRICES[model]
        return Price(model, inp, out, f"shipped {PRICES_AS_OF}")
    matches = [name for name in SHIPPED_PRICES if model.startswith(name + "-") or model.startswith(name + "@")]
    if matches:
        best = max(matches, key=len)
        inp, out = SHIPPED_PRICES[best]
        return Price(model, inp, out, f"shipped {PRICES_AS_OF} as {best}")
    if provider == "openai_compatible":
        return Price(model, 0.0, 0.0, "free (self-hosted; set distill.prices to charge)")
    return None


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def estimate_prompt_tokens(messages: list[dict[str, str]] | tuple[dict[str, str], ...]) -> int:
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def estimate_output_tokens(style: str, max_tokens: int) -> int:
    return min(max_tokens, EXPECTED_OUTPUT_TOKENS.get(style, 600))
