"""Bootstrap intervals over subjects (evaluation.intervals) on synthetic scores whose answer is known."""

import math

import numpy as np
import pytest

from CoopSegLib.evaluation.intervals import by_subject, paired_difference, subject_interval


def test_constant_scores_give_a_zero_width_interval_at_their_value():
    interval = subject_interval({f"s{i}": [0.8, 0.8, 0.8] for i in range(6)})
    assert (interval.mean, interval.low, interval.high, interval.subjects) == pytest.approx((0.8, 0.8, 0.8, 6))


def test_the_interval_contains_the_pooled_mean_and_lies_within_the_subjects_range():
    rng = np.random.default_rng(3)
    values = {f"s{i}": list(rng.uniform(0.5, 1.0, size=rng.integers(1, 4))) for i in range(12)}
    interval = subject_interval(values)
    pooled = np.concatenate([np.asarray(v) for v in values.values()])
    assert interval.mean == pytest.approx(pooled.mean())
    subject_means = [np.mean(v) for v in values.values()]
    assert min(subject_means) <= interval.low < interval.mean < interval.high <= max(subject_means)


def test_the_same_scores_give_the_same_interval_and_another_seed_another():
    values = {f"s{i}": [0.6 + 0.03 * i, 0.7] for i in range(8)}
    assert subject_interval(values) == subject_interval(dict(values))
    assert subject_interval(values, seed=1) != subject_interval(values)


def test_nan_scores_are_left_out_and_one_subject_gives_no_interval():
    interval = subject_interval({"a": [0.9, math.nan], "b": [math.nan]})
    assert interval.mean == pytest.approx(0.9) and interval.subjects == 1
    assert math.isnan(interval.low) and math.isnan(interval.high) and interval.text() == "0.900"
    assert math.isnan(subject_interval({}).mean) and subject_interval({}).text() == "n/a"


def test_subjects_not_volumes_are_resampled():
    # Each subject's values are identical: the interval is that of the subject means, however many values each has.
    rng = np.random.default_rng(5)
    means = rng.uniform(0.6, 0.9, size=10)
    few = subject_interval({f"s{i}": [m] for i, m in enumerate(means)})
    many = subject_interval({f"s{i}": [m] * 20 for i, m in enumerate(means)})
    assert (few.low, few.high) == pytest.approx((many.low, many.high))


def test_a_95_percent_interval_covers_the_true_mean_about_95_times_in_100():
    rng = np.random.default_rng(11)
    true_mean, covered, trials = 0.8, 0, 300
    for trial in range(trials):
        values = {f"s{i}": [v] for i, v in enumerate(rng.normal(true_mean, 0.05, size=40))}
        interval = subject_interval(values, resamples=500, seed=trial)
        covered += interval.low <= true_mean <= interval.high
    # The percentile bootstrap of a mean of 40 normal values covers close to 95% (a little under: it is too narrow
    # by about sqrt((n-1)/n)); 300 trials put the binomial spread at about 1.3 points.
    assert 0.90 <= covered / trials <= 0.99


def test_a_paired_difference_removes_the_spread_the_subjects_share():
    rng = np.random.default_rng(7)
    clean = {f"s{i}": [v] for i, v in enumerate(rng.uniform(0.6, 0.95, size=10))}
    corrupted = {s: [v[0] - 0.1] for s, v in clean.items()}  # every subject loses exactly 0.1
    difference = paired_difference(corrupted, clean)
    assert (difference.mean, difference.low, difference.high) == pytest.approx((-0.1, -0.1, -0.1))
    assert difference.subjects == 10
    unpaired = subject_interval(corrupted)
    assert unpaired.high - unpaired.low > 0.05  # the same data unpaired: the subjects' spread shows


def test_a_paired_difference_uses_only_the_subjects_both_sides_have():
    difference = paired_difference({"a": [0.5], "b": [0.6], "c": [0.2]}, {"a": [0.7], "b": [0.8]})
    assert difference.subjects == 2 and difference.mean == pytest.approx(-0.2)


def test_by_subject_keeps_the_first_seen_order():
    assert by_subject([("b", 1.0), ("a", 2.0), ("b", 3.0)]) == {"b": [1.0, 3.0], "a": [2.0]}
