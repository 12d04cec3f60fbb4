"""Sampling N chunks that keep the source-kind ratio (the seed project kept 1,000 chunks), seeded and streaming.

The driver knows how many chunks of each kind survived before it writes any (it counts them in the first pass), so
the sample is planned up front: a quota per kind by largest remainder (the quotas add up to exactly N), then a
seeded choice of *positions* within each kind. The second pass keeps the chunk at position i of kind k when i is in
the plan. Memory is O(N), the input is never held, and the same seed and input always give the same chunks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

ALL = "*"  # the single bucket used when the source ratio is not kept


def quotas(counts: dict[str, int], n: int) -> dict[str, int]:
    """Split n across buckets in proportion to `counts` (largest remainder, ties by name); never above a count."""
    total = sum(counts.values())
    if n >= total:
        return dict(counts)
    exact = {name: n * count / total for name, count in counts.items()}
    result = {name: int(share) for name, share in exact.items()}
    leftover = n - sum(result.values())
    by_remainder = sorted(exact, key=lambda name: (-(exact[name] - result[name]), name))
    for name in by_remainder[:leftover]:
        result[name] += 1
    return result


@dataclass(frozen=True)
class SamplePlan:
    """Which positions to keep within each bucket (a kind, or ALL)."""

    keep: dict[str, frozenset[int]]
    by_kind: bool

    def bucket(self, kind: str) -> str:
        return kind if self.by_kind else ALL

    def wanted(self) -> int:
        return sum(len(positions) for positions in self.keep.values())


def plan_sample(counts: dict[str, int], n: int | None, seed: int, keep_source_ratio: bool) -> SamplePlan | None:
    """None when everything is kept (no `sample.n`, or n at least the number of chunks)."""
    if n is None or n >= sum(counts.values()):
        return None
    if keep_source_ratio:
        buckets = {kind: count for kind, count in counts.items() if count}
    else:
        buckets = {ALL: sum(counts.values())}
    keep: dict[str, frozenset[int]] = {}
    for bucket, quota in quotas(buckets, n).items():
        # One generator per bucket, seeded by (seed, bucket): adding a kind does not reshuffle the others.
        rng = random.Random(f"{seed}:{bucket}")
        keep[bucket] = frozenset(rng.sample(range(buckets[bucket]), quota))
    return SamplePlan(keep, keep_source_ratio)
