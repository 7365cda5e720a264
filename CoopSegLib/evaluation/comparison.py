"""Comparing training methods on the same test cases: Table 1 of Chen et al., one row per method and stage.

Every case (a clean frame or a corrupted copy) is built once and segmented by every model, so the methods are
scored on identical inputs. "corrupted AVG" is the mean over the artefact sets (bias, ghosting, motion, spike):
the paper's claim is about those. ``SeedSummary`` repeats a comparison over training seeds: mean ± SD;
``FoldSummary`` over the paper's three folds, with paired differences and their intervals.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from CoopSegLib.data.corruption import CORRUPTIONS
from CoopSegLib.evaluation.interval_report import dice_by_subject
from CoopSegLib.evaluation.report import (CSV_FIELDS, ScoreRow, csv_text, format_dice, mean_score, ordered_sets,
                                          ordered_stages, set_scores, set_title)
from CoopSegLib.evaluation.runner import evaluate_model
from CoopSegLib.evaluation.test_sets import EvaluationCase
from CoopSegLib.vocabulary import STN

if TYPE_CHECKING:
    from CoopSegLib.evaluation.intervals import Interval
    from CoopSegLib.inference import Segmenter

REFINED = STN.title


def evaluate_methods(segmenters: Mapping[str, "Segmenter"], cases: Iterable[EvaluationCase],
                     report: Optional[Callable[[EvaluationCase], None]] = None,
                     distances: bool = False) -> Dict[str, List[ScoreRow]]:
    """method name -> its score rows, every method on every case (Dice only unless ``distances``: Table 1's)."""
    rows: Dict[str, List[ScoreRow]] = {name: [] for name in segmenters}
    for case in cases:
        if report is not None:
            report(case)
        for name, segmenter in segmenters.items():
            rows[name] += evaluate_model(segmenter, [case], distances=distances)
    return rows


def comparison_csv(rows: Mapping[str, Sequence[ScoreRow]]) -> str:
    return csv_text(("method", *CSV_FIELDS), ((name, *astuple(row)) for name, group in rows.items() for row in group))


@dataclass(frozen=True)
class Comparison:
    """Set scores of a baseline and a proposed method; the differences the paper's claim is about."""

    baseline: str
    proposed: str
    sets: List[str]
    stages: List[str]
    scores: Dict[tuple, float]  # (method, set, stage) -> mean Dice

    @classmethod
    def of(cls, rows: Mapping[str, Sequence[ScoreRow]], baseline: str, proposed: str) -> "Comparison":
        every = [row for group in rows.values() for row in group]
        scores = {(name, *key): value for name in (baseline, proposed) for key, value in set_scores(rows[name]).items()}
        return cls(baseline, proposed, ordered_sets(every), ordered_stages(every), scores)

    @property
    def corrupted_sets(self) -> List[str]:
        return [s for s in self.sets if s in CORRUPTIONS]

    def score(self, method: str, set_name: str, stage: str) -> float:
        return self.scores.get((method, set_name, stage), math.nan)

    def average(self, method: str, stage: str, sets: Optional[Sequence[str]] = None) -> float:
        return mean_score([self.score(method, s, stage) for s in (self.sets if sets is None else sets)])

    def gain(self, stage: str, set_name: Optional[str] = None) -> float:
        """proposed - baseline on one set, or on the corrupted sets' average when ``set_name`` is None."""
        if set_name is None:
            return (self.average(self.proposed, stage, self.corrupted_sets)
                    - self.average(self.baseline, stage, self.corrupted_sets))
        return self.score(self.proposed, set_name, stage) - self.score(self.baseline, set_name, stage)

    def claim_holds(self, stage: str = REFINED, margin: float = 0.05) -> bool:
        """The issue's target: proposed >= baseline on every set, and >= ``margin`` higher over corrupted sets."""
        return all(self.gain(stage, s) >= 0 for s in self.sets) and self.gain(stage) >= margin

    def markdown(self) -> str:
        header = [set_title(s) for s in self.sets] + ["AVG", "corrupted AVG"]
        lines = ["| method | stage | " + " | ".join(header) + " |", "| --- | --- |" + " ---: |" * len(header)]
        for method in (self.baseline, self.proposed):
            for stage in self.stages:
                values = [self.score(method, s, stage) for s in self.sets]
                values += [self.average(method, stage), self.average(method, stage, self.corrupted_sets)]
                lines.append(f"| {method} | {stage} | " + " | ".join(format_dice(v) for v in values) + " |")
        for stage in self.stages:
            gains = [self.gain(stage, s) for s in self.sets]
            gains += [self.average(self.proposed, stage) - self.average(self.baseline, stage), self.gain(stage)]
            lines.append(f"| {self.proposed} - {self.baseline} | {stage} | "
                         + " | ".join("n/a" if math.isnan(g) else f"{g:+.4f}" for g in gains) + " |")
        return "\n".join(lines) + "\n"


def _mean_sd(values: Sequence[float]) -> Tuple[float, float]:
    """Mean and sample standard deviation (NaN with fewer than two values)."""
    values = [v for v in values if not math.isnan(v)]
    if not values:
        return math.nan, math.nan
    mean = sum(values) / len(values)
    if len(values) < 2:
        return mean, math.nan
    return mean, math.sqrt(sum((v - mean) ** 2 for v in values) / (len(values) - 1))


def _format_mean_sd(values: Sequence[float], signed: bool = False) -> str:
    mean, sd = _mean_sd(values)
    if math.isnan(mean):
        return "n/a"
    text = f"{mean:+.4f}" if signed else f"{mean:.4f}"
    return text if math.isnan(sd) else f"{text} ± {sd:.4f}"


@dataclass(frozen=True)
class SeedSummary:
    """The same comparison repeated over training seeds (the paper averages three runs): mean ± SD over seeds."""

    comparisons: Dict[int, Comparison]  # seed -> comparison of that seed's models

    @property
    def first(self) -> Comparison:
        if not self.comparisons:
            raise ValueError("a seed summary needs at least one seed's comparison")
        return next(iter(self.comparisons.values()))

    def gains(self, stage: str, set_name: Optional[str] = None) -> List[float]:
        """Per seed: proposed - baseline on one set, or on the corrupted sets' average."""
        return [c.gain(stage, set_name) for c in self.comparisons.values()]

    def mean_gain(self, stage: str = REFINED, set_name: Optional[str] = None) -> float:
        return _mean_sd(self.gains(stage, set_name))[0]

    def claim_holds(self, stage: str = REFINED, margin: float = 0.05) -> bool:
        """The issue's target on the means over seeds: >= 0 on every set and >= ``margin`` over corrupted sets."""
        return all(self.mean_gain(stage, s) >= 0 for s in self.first.sets) and self.mean_gain(stage) >= margin

    def markdown(self) -> str:
        first = self.first
        sets, corrupted = first.sets, first.corrupted_sets
        header = [set_title(s) for s in sets] + ["AVG", "corrupted AVG"]
        lines = ["| method | stage | " + " | ".join(header) + " |", "| --- | --- |" + " ---: |" * len(header)]
        for method in (first.baseline, first.proposed):
            for stage in first.stages:
                cells = [[c.score(method, s, stage) for c in self.comparisons.values()] for s in sets]
                cells += [[c.average(method, stage) for c in self.comparisons.values()],
                          [c.average(method, stage, corrupted) for c in self.comparisons.values()]]
                lines.append(f"| {method} | {stage} | " + " | ".join(_format_mean_sd(v) for v in cells) + " |")
        for stage in first.stages:
            cells = [self.gains(stage, s) for s in sets]
            cells += [[c.average(c.proposed, stage) - c.average(c.baseline, stage) for c in self.comparisons.values()],
                      self.gains(stage)]
            lines.append(f"| {first.proposed} - {first.baseline} | {stage} | "
                         + " | ".join(_format_mean_sd(v, signed=True) for v in cells) + " |")
        return "\n".join(lines) + "\n"


INCONCLUSIVE = "inconclusive at this budget"


@dataclass(frozen=True)
class FoldSummary:
    """Table 1 over the paper's folds (10 training subjects drawn by split seeds 40, 20, 10), each fold's two
    models scored on that fold's own test subjects; the paired difference proposed - baseline per fold, and its
    mean over folds with a 95% interval from a bootstrap over test subjects within folds
    (``intervals.stratified_paired_difference``)."""

    rows: Dict[int, Dict[str, List[ScoreRow]]]  # fold (split seed) -> method -> score rows
    baseline: str
    proposed: str

    def comparison(self, fold: int) -> Comparison:
        return Comparison.of(self.rows[fold], self.baseline, self.proposed)

    @property
    def first(self) -> Comparison:
        if not self.rows:
            raise ValueError("a fold summary needs at least one fold's scores")
        return self.comparison(next(iter(self.rows)))

    def _by_subject(self, fold: int, method: str, stage: str, sets: Sequence[str]) -> Dict[str, List[float]]:
        return dice_by_subject([row for row in self.rows[fold][method] if row.stage == stage and row.set in sets])

    def sets_of(self, name: str) -> List[str]:
        """The sets behind a column: one set, "AVG" (all) or "corrupted AVG" (the artefact sets)."""
        first = self.first
        return {"AVG": first.sets, "corrupted AVG": first.corrupted_sets}.get(name, [name])

    def difference(self, stage: str, column: str, fold: Optional[int] = None) -> "Interval":
        """proposed - baseline on a column (``sets_of``), in one fold or the mean over folds, with its interval."""
        from CoopSegLib.evaluation.intervals import stratified_paired_difference

        sets = self.sets_of(column)
        folds = list(self.rows) if fold is None else [fold]
        return stratified_paired_difference([(self._by_subject(f, self.proposed, stage, sets),
                                              self._by_subject(f, self.baseline, stage, sets)) for f in folds])

    def verdict(self, stage: str = REFINED, column: str = "corrupted AVG") -> str:
        """"helps" or "hurts" when the interval of the mean difference over folds excludes 0, else inconclusive."""
        interval = self.difference(stage, column)
        if math.isnan(interval.low):
            return INCONCLUSIVE
        return "helps" if interval.low > 0 else "hurts" if interval.high < 0 else INCONCLUSIVE

    def markdown(self) -> str:
        first = self.first
        columns = [*first.sets, "AVG", "corrupted AVG"]
        header = [set_title(c) if c in first.sets else c for c in columns]
        lines = ["| fold | method | stage | " + " | ".join(header) + " |",
                 "| ---: | --- | --- |" + " ---: |" * len(header)]
        for fold in self.rows:
            comparison = self.comparison(fold)
            for method in (self.baseline, self.proposed):
                for stage in first.stages:
                    values = [comparison.score(method, s, stage) for s in first.sets]
                    values += [comparison.average(method, stage),
                               comparison.average(method, stage, comparison.corrupted_sets)]
                    lines.append(f"| {fold} | {method} | {stage} | " + " | ".join(format_dice(v) for v in values)
                                 + " |")
        lines += ["", f"Paired difference {self.proposed} - {self.baseline} (95% interval: bootstrap over test "
                  "subjects within folds):", "",
                  "| fold | stage | " + " | ".join(header) + " |", "| --- | --- |" + " ---: |" * len(header)]
        for fold in [*self.rows, None]:
            for stage in first.stages:
                cells = [self.difference(stage, c, fold) for c in columns]
                name = "mean over folds" if fold is None else str(fold)
                lines.append(f"| {name} | {stage} | " + " | ".join(signed_interval(i) for i in cells) + " |")
        lines += ["", f"Verdict ({REFINED}, corrupted AVG): cooperative training **{self.verdict()}** "
                  f"({signed_interval(self.difference(REFINED, 'corrupted AVG'))} over {len(self.rows)} fold(s))."]
        return "\n".join(lines) + "\n"


def signed_interval(interval: "Interval") -> str:
    if math.isnan(interval.mean):
        return "n/a"
    if math.isnan(interval.low):
        return f"{interval.mean:+.4f}"
    return f"{interval.mean:+.4f} [{interval.low:+.4f}, {interval.high:+.4f}]"
