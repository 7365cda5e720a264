"""95% bootstrap intervals of mean Dice, resampling subjects (not volumes).

A subject's volumes (ED and ES, or an ES frame's corrupted copies) are not independent: resampling volumes would
count the same heart several times and give intervals too narrow. So the subjects are drawn with replacement, each
drawn subject brings all its values, and the statistic is the mean over the values drawn (the same pooled mean over
cases and structures that the point estimate is). Percentile interval, fixed seed: the same scores always give the
same interval.

>>> interval = subject_interval({"a": [0.8, 0.9], "b": [0.7], "c": [0.85, 0.95]})
>>> round(interval.mean, 4), interval.low <= interval.mean <= interval.high, interval.subjects
(0.84, True, 3)
"""

from __future__ import annotations

import math
from typing import Dict, Mapping, NamedTuple, Sequence

import numpy as np

RESAMPLES = 2000
SEED = 0
LEVEL = 0.95


class Interval(NamedTuple):
    mean: float  # pooled mean over every value (NaN left out)
    low: float  # NaN when fewer than two subjects have values
    high: float
    subjects: int

    def text(self, digits: int = 3) -> str:
        """"0.874 [0.851, 0.893]", or the mean alone where there is no interval."""
        if math.isnan(self.mean):
            return "n/a"
        if math.isnan(self.low):
            return f"{self.mean:.{digits}f}"
        return f"{self.mean:.{digits}f} [{self.low:.{digits}f}, {self.high:.{digits}f}]"


def _sums(values_by_subject: Mapping[str, Sequence[float]]) -> tuple:
    """Per subject: the sum and the count of the values that are not NaN (subjects without any are dropped)."""
    sums, counts = [], []
    for values in values_by_subject.values():
        kept = [v for v in values if not math.isnan(v)]
        if kept:
            sums.append(sum(kept))
            counts.append(len(kept))
    return np.asarray(sums, np.float64), np.asarray(counts, np.float64)


def _percentiles(statistics: np.ndarray, level: float) -> tuple:
    tail = 100.0 * (1.0 - level) / 2.0
    low, high = np.percentile(statistics, [tail, 100.0 - tail])
    return float(low), float(high)


def subject_interval(values_by_subject: Mapping[str, Sequence[float]], resamples: int = RESAMPLES,
                     seed: int = SEED, level: float = LEVEL) -> Interval:
    """The pooled mean of every subject's values and its bootstrap interval over subjects."""
    sums, counts = _sums(values_by_subject)
    if not len(sums):
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(sums.sum() / counts.sum())
    if len(sums) < 2:
        return Interval(mean, math.nan, math.nan, len(sums))
    drawn = np.random.default_rng(seed).integers(0, len(sums), size=(resamples, len(sums)))
    low, high = _percentiles(sums[drawn].sum(axis=1) / counts[drawn].sum(axis=1), level)
    return Interval(mean, low, high, len(sums))


def paired_difference(values: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]],
                      resamples: int = RESAMPLES, seed: int = SEED, level: float = LEVEL) -> Interval:
    """Mean of ``values`` minus mean of ``baseline`` over the subjects both have, resampled together (paired).

    For an artefact set against the clean frames it was made from: the same subjects are drawn for both means,
    so the subject-to-subject spread, which both share, does not widen the interval of the difference."""
    shared = [s for s in values if s in baseline]
    a_sums, a_counts = _sums({s: values[s] for s in shared})
    b_sums, b_counts = _sums({s: baseline[s] for s in shared})
    if not shared or len(a_sums) != len(shared) or len(b_sums) != len(shared):
        return Interval(math.nan, math.nan, math.nan, 0)
    mean = float(a_sums.sum() / a_counts.sum() - b_sums.sum() / b_counts.sum())
    if len(shared) < 2:
        return Interval(mean, math.nan, math.nan, len(shared))
    drawn = np.random.default_rng(seed).integers(0, len(shared), size=(resamples, len(shared)))
    statistics = (a_sums[drawn].sum(axis=1) / a_counts[drawn].sum(axis=1)
                  - b_sums[drawn].sum(axis=1) / b_counts[drawn].sum(axis=1))
    low, high = _percentiles(statistics, level)
    return Interval(mean, low, high, len(shared))


def _paired_arrays(values: Mapping[str, Sequence[float]], baseline: Mapping[str, Sequence[float]]) -> tuple:
    """Per shared subject: the sums and counts of both sides (subjects without values on both sides dropped)."""
    rows = []
    for subject in values:
        if subject not in baseline:
            continue
        a = [v for v in values[subject] if not math.isnan(v)]
        b = [v for v in baseline[subject] if not math.isnan(v)]
        if a and b:
            rows.append((sum(a), len(a), sum(b), len(b)))
    return np.asarray(rows, np.float64).reshape(-1, 4)


def stratified_paired_difference(strata: Sequence[tuple], resamples: int = RESAMPLES, seed: int = SEED,
                                 level: float = LEVEL) -> Interval:
    """The mean over strata (e.g. the folds of Table 1) of each stratum's paired difference ``values`` minus
    ``baseline`` (``strata``: (values, baseline) pairs of subject -> values), with a bootstrap interval that draws
    subjects with replacement within each stratum: every fold keeps its own test subjects and its own models.

    >>> fold = ({"a": [0.9], "b": [0.8]}, {"a": [0.85], "b": [0.8]})
    >>> round(stratified_paired_difference([fold, fold]).mean, 4)
    0.025
    """
    arrays = [_paired_arrays(values, baseline) for values, baseline in strata]
    arrays = [a for a in arrays if len(a)]
    if not arrays:
        return Interval(math.nan, math.nan, math.nan, 0)
    subjects = sum(len(a) for a in arrays)

    def difference(a: np.ndarray) -> np.ndarray:  # rows of (sum_a, n_a, sum_b, n_b) summed over the last-but-one axis
        return a[..., 0] / a[..., 1] - a[..., 2] / a[..., 3]

    mean = float(np.mean([difference(a.sum(axis=0)) for a in arrays]))
    if any(len(a) < 2 for a in arrays):
        return Interval(mean, math.nan, math.nan, subjects)
    generator = np.random.default_rng(seed)
    statistics = np.zeros(resamples)
    for a in arrays:
        drawn = generator.integers(0, len(a), size=(resamples, len(a)))
        statistics += difference(a[drawn].sum(axis=1))
    low, high = _percentiles(statistics / len(arrays), level)
    return Interval(mean, low, high, subjects)


def by_subject(pairs: Sequence[tuple]) -> Dict[str, list]:
    """(subject, value) pairs -> subject -> values, in first-seen order."""
    grouped: Dict[str, list] = {}
    for subject, value in pairs:
        grouped.setdefault(subject, []).append(value)
    return grouped
