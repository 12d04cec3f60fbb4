"""Intervals of `slm evaluate`: Wilson for proportions, paired bootstrap for base-vs-tuned deltas (known cases)."""

from __future__ import annotations

import pytest

from fine_tuning.evaluate.stats import macro_ratio, paired_bootstrap, ratio, wilson_interval


def test_wilson_interval_known_values():
    # Published values (Newcombe 1998, Table I / any Wilson calculator): 81/263 -> [0.2553, 0.3662]
    low, high = wilson_interval(81, 263)
    assert low == pytest.approx(0.2553, abs=1e-4) and high == pytest.approx(0.3662, abs=1e-4)
    # 0/10 and 10/10 stay inside [0, 1] and are not degenerate
    assert wilson_interval(0, 10) == pytest.approx((0.0, 0.2775), abs=1e-4)
    assert wilson_interval(10, 10) == pytest.approx((0.7225, 1.0), abs=1e-4)
    assert wilson_interval(0, 0) is None
    with pytest.raises(ValueError):
        wilson_interval(3, 2)


def test_paired_bootstrap_identical_models_is_zero_and_not_significant():
    rows = [[float(i % 2), 1.0] for i in range(30)]
    out = paired_bootstrap(rows, rows, ratio, resamples=500, seed=1)
    assert out.delta == 0 and out.low == 0 and out.high == 0 and not out.significant


def test_paired_bootstrap_constant_shift_is_exact():
    # tuned is right on every question base got wrong: delta = 1 in every resample
    base = [[0.0, 1.0]] * 20
    tuned = [[1.0, 1.0]] * 20
    out = paired_bootstrap(base, tuned, ratio, resamples=200, seed=3)
    assert (out.delta, out.low, out.high, out.significant) == (1.0, 1.0, 1.0, True)


def test_paired_bootstrap_is_seeded_and_matches_the_sampling_distribution():
    # 100 questions; tuned gains 10, loses 0: delta 0.1; the paired delta per question is Bernoulli(0.1), so the
    # bootstrap SD is close to sqrt(0.1 * 0.9 / 100) = 0.03 and the 95 % interval about 0.1 ± 0.06.
    base = [[0.0, 1.0]] * 50 + [[1.0, 1.0]] * 50
    tuned = [[1.0, 1.0]] * 10 + [[0.0, 1.0]] * 40 + [[1.0, 1.0]] * 50
    a = paired_bootstrap(base, tuned, ratio, resamples=4000, seed=7)
    b = paired_bootstrap(base, tuned, ratio, resamples=4000, seed=7)
    assert a == b
    assert a.delta == pytest.approx(0.1)
    assert a.low == pytest.approx(0.04, abs=0.015) and a.high == pytest.approx(0.16, abs=0.015)
    assert a.significant and a.resamples == 4000
    # continuous counts (token-weighted loss): another seed draws other resamples
    import random

    rng = random.Random(0)
    loss_b = [[rng.uniform(20, 40), 10.0] for _ in range(30)]
    loss_t = [[nll - rng.uniform(0, 10), tokens] for nll, tokens in loss_b]
    x = paired_bootstrap(loss_b, loss_t, ratio, resamples=500, seed=1)
    y = paired_bootstrap(loss_b, loss_t, ratio, resamples=500, seed=2)
    assert x.delta == y.delta and (x.low, x.high) != (y.low, y.high) and x.high < 0


def test_paired_bootstrap_pairs_examples():
    # Unpaired, these two models look alike (each right on half); paired, tuned is right exactly where base is
    # wrong and vice versa: the delta is 0 but varies widely, so the interval straddles 0.
    base = [[1.0, 1.0], [0.0, 1.0]] * 10
    tuned = [[0.0, 1.0], [1.0, 1.0]] * 10
    out = paired_bootstrap(base, tuned, ratio, resamples=1000, seed=0)
    assert out.delta == 0 and out.low < 0 < out.high and not out.significant


def test_bootstrap_skips_undefined_resamples_and_reports_none_without_data():
    # precision over zero citations is undefined: such resamples are skipped
    base = [[0.0, 0.0]] * 5 + [[1.0, 1.0]]
    tuned = [[0.0, 0.0]] * 5 + [[1.0, 1.0]]
    out = paired_bootstrap(base, tuned, ratio, resamples=300, seed=2)
    assert out.resamples < 300 and out.delta == 0
    empty = paired_bootstrap([[0.0, 0.0]], [[0.0, 0.0]], ratio, resamples=10, seed=0)
    assert empty.delta is None and not empty.significant
    with pytest.raises(ValueError, match="same examples"):
        paired_bootstrap([[1.0, 1.0]], [], ratio)


def test_macro_ratio_averages_categories():
    # category 1: 3/4, category 2: 0/1, category 3: empty
    assert macro_ratio([3, 4, 0, 1, 0, 0]) == pytest.approx(0.375)
    assert macro_ratio([0, 0]) is None
