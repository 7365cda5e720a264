"""The quality estimate a run's worker folder may hold (quality.csv, written by ``coopseg segment``): one row per
label map with at least the columns name, quality (estimated mean Dice, 0-1) and flag (ok / review), and where
present suspect_slices (the input slice indices whose own estimate is below the threshold) and blurred (the second
look's answer was kept); what the module shows after each run, with a warning for a flagged segmentation."""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Tuple, Union

from CoopSegLib.errors import CoopSegError

COLUMNS = ("name", "quality", "flag")
FLAGS = ("ok", "review")


@dataclass(frozen=True)
class QualityEstimate:
    name: str  # the label map's file name without extension
    quality: float  # estimated mean Dice of the written stage, 0-1
    flag: str  # "ok" or "review"
    suspect_slices: Tuple[str, ...] = ()  # slice indices along the input's stack axis ("frame:slice" for a cine)
    blurred: bool = False  # the labels come from the second look at an in-plane-blurred input

    @property
    def needs_review(self) -> bool:
        return self.flag == "review"

    def describe(self) -> str:
        """One line for the GUI, e.g. 'Estimated quality: Dice 0.87 (ok)'."""
        text = f"Estimated quality: Dice {self.quality:.2f}"
        suspects = f"; suspect slices: {', '.join(self.suspect_slices)}" if self.suspect_slices else ""
        second = ", from the second look at the blurred image" if self.blurred else ""
        if self.needs_review:
            return f"{text}: review this segmentation before using it{second}{suspects}"
        return f"{text} (ok){second}{suspects}"


def read_quality(path: Union[str, Path]) -> Dict[str, QualityEstimate]:
    """name -> estimate from a quality.csv; a CoopSegError naming the file for a missing column or a bad value.
    Columns beyond the three are ignored."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise CoopSegError(f"{path}: no column {', '.join(missing)} (expected {', '.join(COLUMNS)})")
            rows = list(reader)
    except OSError as error:
        raise CoopSegError(f"{path}: cannot read ({error.strerror or error})") from None
    estimates = {}
    for number, row in enumerate(rows, start=2):
        try:
            quality = float(row["quality"])
        except (TypeError, ValueError):
            quality = math.nan
        if not 0.0 <= quality <= 1.0:
            raise CoopSegError(f"{path}, line {number}: quality {row['quality']!r} is not a number in [0, 1]")
        if row["flag"] not in FLAGS:
            raise CoopSegError(f"{path}, line {number}: flag {row['flag']!r} is not one of {', '.join(FLAGS)}")
        suspects = tuple((row.get("suspect_slices") or "").split())
        blurred = (row.get("blurred") or "").strip().lower() == "true"
        estimates[row["name"]] = QualityEstimate(row["name"], quality, row["flag"], suspects, blurred)
    return estimates
