"""Dollar prices per million tokens, cost of a reply, provider cache rules, and token estimates for `--dry-run`.

Shipped prices are the providers' published list prices as of PRICES_AS_OF, per million tokens: input, output,
cached input (a prompt prefix served from the provider's cache) and cache write (Anthropic bills the tokens it
writes into its 5-minute cache at 1.25 × input; OpenAI caches automatically and bills no write). For example
gpt-4o $2.50 in / $10 out / $1.25 cached; claude-sonnet-4-5 $3 / $15 / $0.30 cached / $3.75 write. They change,
and newer models are not listed: override or add models in the run config,

    distill:
      prices:
        gpt-4o: {input_per_mtok: 2.5, output_per_mtok: 10.0, cached_input_per_mtok: 1.25}

An override without `cached_input_per_mtok` / `cache_write_per_mtok` is charged the full input price for those
tokens (never less than the truth when the discount is unknown). Anthropic's 1-hour cache (what batch mode asks
for) bills its writes at 2 x input (`cache_write_1h_per_mtok`, default twice the input price).

Batch requests (OpenAI Batch API, Anthropic Message Batches) cost BATCH_PRICE_FACTOR of every one of these prices.
Model names match exactly first, then by the longest shipped prefix ("gpt-4o-2024-08-06" -> "gpt-4o"; dated Claude
names such as "claude-sonnet-4-5-20250929" -> "claude-sonnet-4-5").
"""

from __future__ import annotations

from dataclasses import dataclass

from slm_forest.errors import SlmError

PRICES_AS_OF = "2025-11-25"
BATCH_PRICE_FACTOR = 0.5

# USD per 1M tokens: (input, output, cached input, cache write).
SHIPPED_PRICES: dict[str, tuple[float, float, float, float]] = {
    "gpt-4o": (2.50, 10.00, 1.25, 2.50),
    "gpt-4o-mini": (0.15, 0.60, 0.075, 0.15),
    "gpt-4.1": (2.00, 8.00, 0.50, 2.00),
    "gpt-4.1-mini": (0.40, 1.60, 0.10, 0.40),
    "gpt-4.1-nano": (0.10, 0.40, 0.025, 0.10),
    "claude-sonnet-4-5": (3.00, 15.00, 0.30, 3.75),
    "claude-sonnet-4": (3.00, 15.00, 0.30, 3.75),
    "claude-3-7-sonnet": (3.00, 15.00, 0.30, 3.75),
    "claude-haiku-4-5": (1.00, 5.00, 0.10, 1.25),
    "claude-3-5-haiku": (0.80, 4.00, 0.08, 1.00),
    "claude-opus-4-1": (15.00, 75.00, 1.50, 18.75),
    "offline-v1": (0.0, 0.0, 0.0, 0.0),
}

# Shortest prompt prefix a provider caches, in its own tokens (as documented on PRICES_AS_OF). OpenAI: 1,024 for
# every model, then in steps of 128. Anthropic: per model, for the prefix up to a `cache_control` breakpoint; a
# shorter one is simply not cached (and not charged as a write).
OPENAI_MIN_CACHED_TOKENS = 1024
OPENAI_CACHE_STEP_TOKENS = 128
ANTHROPIC_MIN_CACHED_TOKENS: dict[str, int] = {
    "claude-3-5-haiku": 2048,
    "claude-3-haiku": 2048,
    "claude-haiku-4-5": 4096,
    "claude-opus-4-5": 4096,
}
ANTHROPIC_DEFAULT_MIN_CACHED_TOKENS = 1024  # Sonnet 4.5 / 4 / 3.7, Opus 4.1 / 4


def min_cached_tokens(provider: str, model: str) -> int | None:
    """The provider's minimum cacheable prefix for `model`; None when the provider caches nothing we know of."""
    if provider == "openai":
        return OPENAI_MIN_CACHED_TOKENS
    if provider == "anthropic":
        matches = [name for name in ANTHROPIC_MIN_CACHED_TOKENS if model == name or model.startswith(name + "-")]
        return ANTHROPIC_MIN_CACHED_TOKENS[max(matches, key=len)] if matches else ANTHROPIC_DEFAULT_MIN_CACHED_TOKENS
    return None


# Rough Korean tokenisation for estimates: ~1.6 characters per token for Hangul text in current tokenizers.
CHARS_PER_TOKEN = 1.6
MESSAGE_OVERHEAD_TOKENS = 8
# Expected reply sizes (tokens per pair) before any reply was measured; the real usage is always taken from the
# replies, and a trial run (`--limit 20`) or an earlier ledger replaces these in the estimate.
EXPECTED_OUTPUT_TOKENS = {"explain": 550, "calculation": 900}


@dataclass(frozen=True)
class Price:
    model: str
    input_per_mtok: float
    output_per_mtok: float
    source: str  # "config" / "shipped <date>" / "free (local server)"
    cached_input_per_mtok: float | None = None  # None: the full input price
    cache_write_per_mtok: float | None = None  # None: the full input price
    cache_write_1h_per_mtok: float | None = None  # None: 2 x input, Anthropic's price for 1-hour cache writes

    def cost(
        self,
        input_tokens: int,
        output_tokens: int,
        *,
        batch: bool = False,
        cached_tokens: int = 0,
        cache_write_tokens: int = 0,
        cache_write_1h_tokens: int = 0,
    ) -> float:
        """Dollars for one reply. `input_tokens` is every input token (cached and written ones included);
        `cache_write_1h_tokens` is the part of `cache_write_tokens` written into the 1-hour cache."""
        factor = BATCH_PRICE_FACTOR if batch else 1.0
        cached_price = self.input_per_mtok if self.cached_input_per_mtok is None else self.cached_input_per_mtok
        write_price = self.input_per_mtok if self.cache_write_per_mtok is None else self.cache_write_per_mtok
        write_1h_price = (
            2 * self.input_per_mtok if self.cache_write_1h_per_mtok is None else self.cache_write_1h_per_mtok
        )
        plain = max(0, input_tokens - cached_tokens - cache_write_tokens)
        long_writes = min(cache_write_1h_tokens, cache_write_tokens)
        dollars = (
            plain * self.input_per_mtok
            + cached_tokens * cached_price
            + (cache_write_tokens - long_writes) * write_price
            + long_writes * write_1h_price
            + output_tokens * self.output_per_mtok
        )
        return factor * dollars / 1_000_000

    def label(self) -> str:
        text = f"${self.input_per_mtok:g} in / ${self.output_per_mtok:g} out"
        if self.cached_input_per_mtok is not None and self.cached_input_per_mtok != self.input_per_mtok:
            text += f" / ${self.cached_input_per_mtok:g} cached"
        if self.cache_write_per_mtok is not None and self.cache_write_per_mtok != self.input_per_mtok:
            text += f" / ${self.cache_write_per_mtok:g} write"
        return text


def _shipped(model: str, name: str, source: str) -> Price:
    inp, out, cached, write = SHIPPED_PRICES[name]
    return Price(model, inp, out, source, cached, write)


def find_price(model: str, provider: str, overrides: dict[str, dict[str, float]] | None = None) -> Price | None:
    """The price of `model`, or None when nothing is known (the caller decides whether that is an error)."""
    overrides = overrides or {}
    if model in overrides:
        entry = overrides[model]
        cached, write = entry.get("cached_input_per_mtok"), entry.get("cache_write_per_mtok")
        write_1h = entry.get("cache_write_1h_per_mtok")
        return Price(
            model,
            float(entry.get("input_per_mtok", 0.0)),
            float(entry.get("output_per_mtok", 0.0)),
            "config",
            None if cached is None else float(cached),
            None if write is None else float(write),
            None if write_1h is None else float(write_1h),
        )
    if provider == "offline":
        return Price(model, 0.0, 0.0, "free (offline)")
    if model in SHIPPED_PRICES:
        return _shipped(model, model, f"shipped {PRICES_AS_OF}")
    matches = [name for name in SHIPPED_PRICES if model.startswith(name + "-") or model.startswith(name + "@")]
    if matches:
        best = max(matches, key=len)
        return _shipped(model, best, f"shipped {PRICES_AS_OF} as {best}")
    if provider == "openai_compatible":
        return Price(model, 0.0, 0.0, "free (self-hosted; set distill.prices to charge)")
    return None


def price_under_cap(
    model: str, provider: str, prices: dict[str, dict[str, float]] | None, cap_key: str | None, who: str = ""
) -> Price | None:
    """`find_price` for a teacher a spending cap (`cap_key`, None = no cap) limits: an unknown price is an SlmError,
    since the cap could not be enforced. The one wording for distill, build, evaluate and `slm config validate`."""
    price = find_price(model, provider, prices)
    if price is None and cap_key is not None:
        raise SlmError(
            f"{who + ': ' if who else ''}no price known for model '{model}', so {cap_key} cannot be enforced",
            f"add distill.prices.{model}: {{input_per_mtok: …, output_per_mtok: …}} (USD per million tokens)",
        )
    return price


def estimate_tokens(text: str) -> int:
    return int(len(text) / CHARS_PER_TOKEN) + 1


def estimate_prompt_tokens(messages: list[dict[str, str]] | tuple[dict[str, str], ...]) -> int:
    return sum(estimate_tokens(m["content"]) + MESSAGE_OVERHEAD_TOKENS for m in messages)


def estimate_output_tokens(style: str, max_tokens: int) -> int:
    return min(max_tokens, EXPECTED_OUTPUT_TOKENS.get(style, 600))
