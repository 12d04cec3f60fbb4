"""Uncertainty of the numbers `slm evaluate` reports: Wilson intervals for proportions, paired bootstrap for deltas.

Why paired: base and tuned answer the same questions, so the question-to-question spread (some are easy for both)
cancels in the delta. Each resample draws the example indices once and recomputes both models' statistic on the
same draw; the 95 % interval of tuned − base is the 2.5th–97.5th percentile of those deltas (percentile bootstrap).
A delta is *significant* when its interval excludes 0.

Every metric is a function of per-example sums (sufficient statistics): a row per example, a column per count
(e.g. [matched, cited] for citation precision, [nll, tokens] for loss, chrF's 18 n-gram counts), and the statistic
maps the column sums to a number (or None when undefined, e.g. precision over zero citations). Corpus-level metrics
(chrF, micro precision, token-weighted loss) are therefore bootstrapped exactly as they are computed, not as a mean
of per-example scores.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass

Statistic = Callable[[Sequence[float]], "float | None"]

DEFAULT_RESAMPLES = 1000
DEFAULT_LEVEL = 0.95


def wilson_interval(successes: int, n: int, level: float = DEFAULT_LEVEL) -> tuple[float, float] | None:
    """Wilson score interval of a binomial proportion; None for n = 0. Stays inside [0, 1] even at 0/n and n/n."""
    if n <= 0:
        return None
    if not 0 <= successes <= n:
        raise ValueError(f"successes={successes} outside 0..{n}")
    z = _z(level)
    p = successes / n
    denom = 1 + z * z / n
    centre = (p + z * z / (2 * n)) / denom
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / denom
    return max(0.0, centre - half), min(1.0, centre + half)


def _z(level: float) -> float:
    from statistics import NormalDist

    return NormalDist().inv_cdf(0.5 + level / 2)


@dataclass(frozen=True)
class DeltaInterval:
    """tuned − base with its paired-bootstrap interval."""

    base: float | None
    tuned: float | None
    delta: float | None
    low: float | None
    high: float | None
    significant: bool
    resamples: int  # resamples where both statistics were defined
    level: float

    def as_dict(self) -> dict[str, float | int | bool | None]:
        return asdict(self)


def paired_bootstrap(
    base_rows: Sequence[Sequence[float]],
    tuned_rows: Sequence[Sequence[float]],
    statistic: Statistic,
    resamples: int = DEFAULT_RESAMPLES,
    seed: int = 0,
    level: float = DEFAULT_LEVEL,
    digits: int = 6,
) -> DeltaInterval:
    """Paired percentile bootstrap of statistic(tuned sums) − statistic(base sums) over examples.

    `base_rows[i]` and `tuned_rows[i]` are the same example's counts for each model. Same seed, same rows, same
    interval. Resamples where either statistic is undefined are skipped (and counted out of `resamples`).
    """
    import numpy as np

    if len(base_rows) != len(tuned_rows):
        raise ValueError(f"paired bootstrap needs the same examples: {len(base_rows)} base vs {len(tuned_rows)} tuned")
    base_value = _stat(statistic, np.asarray(base_rows, dtype=float).sum(0) if base_rows else None)
    tuned_value = _stat(statistic, np.asarray(tuned_rows, dtype=float).sum(0) if tuned_rows else None)
    delta = None if base_value is None or tuned_value is None else tuned_value - base_value
    if delta is None or len(base_rows) < 2 or resamples <= 0:
        return DeltaInterval(
            _r(base_value, digits), _r(tuned_value, digits), _r(delta, digits), None, None, False, 0, level
        )
    base = np.asarray(base_rows, dtype=float)
    tuned = np.asarray(tuned_rows, dtype=float)
    rng = np.random.default_rng(seed)
    index = rng.integers(0, len(base), size=(resamples, len(base)))
    base_sums = base[index].sum(axis=1)
    tuned_sums = tuned[index].sum(axis=1)
    deltas = []
    for b, t in zip(base_sums, tuned_sums):
        sb, st = _stat(statistic, b), _stat(statistic, t)
        if sb is not None and st is not None:
            deltas.append(st - sb)
    if not deltas:
        return DeltaInterval(
            _r(base_value, digits), _r(tuned_value, digits), _r(delta, digits), None, None, False, 0, level
        )
    low, high = (float(v) for v in np.quantile(deltas, [(1 - level) / 2, (1 + level) / 2]))
    return DeltaInterval(
        _r(base_value, digits),
        _r(tuned_value, digits),
        _r(delta, digits),
        _r(low, digits),
        _r(high, digits),
        bool(low > 0 or high < 0),
        len(deltas),
        level,
    )


def _stat(statistic: Statistic, sums: object) -> float | None:
    if sums is None:
        return None
    value = statistic(list(map(float, sums)))  # type: ignore[call-overload]
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    return float(value)


def _r(value: float | None, digits: int) -> float | None:
    return None if value is None else round(value, digits)


# ----------------------------------------------------------------------------------------- common statistics
def ratio(sums: Sequence[float]) -> float | None:
    """sums[0] / sums[1]: accuracy, precision, recall, mean per token; None over an empty denominator."""
    return sums[0] / sums[1] if sums[1] else None


def f1_of_sums(sums: Sequence[float]) -> float | None:
    """Micro F1 from [matched cited, cited, matched reference, reference]: 0 when nothing matched, None when
    there was nothing to cite and nothing cited."""
    matched_cited, cited, matched_ref, reference = sums
    if not cited and not reference:
        return None
    precision = matched_cited / cited if cited else 0.0
    recall = matched_ref / reference if reference else 0.0
    return 2 * precision * recall / (precision + recall) if precision + recall else 0.0


def macro_ratio(sums: Sequence[float]) -> float | None:
    """Mean over groups of [k_1, n_1, k_2, n_2, …]: each group's k/n, groups with n = 0 left out."""
    values = [sums[i] / sums[i + 1] for i in range(0, len(sums), 2) if sums[i + 1]]
    return sum(values) / len(values) if values else None
