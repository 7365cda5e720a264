"""Comparing training methods on the same test cases: Table 1 of Chen et al., one row per method and stage.

Every case (a clean frame or a corrupted copy) is built once and segmented by every model, so the methods are
scored on identical inputs. "corrupted AVG" is the mean over the artefact sets (bias, ghosting, motion, spike):
the paper's claim is about those.
"""

from __future__ import annotations

import math
from dataclasses import astuple, dataclass
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Sequence

from CoopSegLib.data.corruption import CORRUPTIONS
from CoopSegLib.evaluation.report import (CSV_FIELDS, ScoreRow, csv_text, format_dice, mean_score, ordered_sets,
                                          ordered_stages, set_scores, set_title)
from CoopSegLib.evaluation.runner import evaluate_model
from CoopSegLib.evaluation.test_sets import EvaluationCase

if TYPE_CHECKING:
    from CoopSegLib.inference import Segmenter

REFINED = "FTN+STN"


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
