"""Validation during training: 3D Dice per class of the FTN and of FTN+STN on held-out volumes (the evaluation's
Dice, ``overlap_scores``: MONAI's metric).

Dice is computed per volume (one subject and frame) on the model's slice grid, where the training labels live, and
averaged over volumes per class; a class absent from both a volume's prediction and its ground truth is left out of
that class's average. Best-model selection uses the mean FTN+STN Dice over the three structures (the paper's
test-time output is the STN refinement). ``coopseg evaluate`` scores on each input's own grid.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence

import numpy as np

from CoopSegLib.data.preprocess import PreparedVolume
from CoopSegLib.evaluation.metrics import overlap_scores
from CoopSegLib.inference.slice_predictor import SlicePredictor
from CoopSegLib.vocabulary import LABEL_NAMES, STAGES, STRUCTURE_COLUMNS


@dataclass
class ValidationResult:
    """Mean Dice per stage and structure, e.g. ``dice["stn"]["myo"]``, and one row per volume."""

    dice: Dict[str, Dict[str, float]]
    per_volume: List[Dict[str, object]] = field(default_factory=list)

    def mean(self, stage: str) -> float:
        values = [v for v in self.dice[stage].values() if np.isfinite(v)]
        return float(np.mean(values)) if values else float("nan")

    @property
    def score(self) -> float:
        """What best-model selection maximises: mean FTN+STN Dice over LV, MYO and RV."""
        return self.mean("stn")

    @classmethod
    def from_row(cls, row: Dict[str, float]) -> "ValidationResult":
        """Back from ``row()`` (as stored in checkpoints)."""
        dice = {stage: {key[len(stage) + 1:]: float(value) for key, value in row.items()
                        if key.startswith(stage + "_") and key != f"{stage}_mean"} for stage in STAGES}
        return cls(dice)

    def row(self) -> Dict[str, float]:
        """Flat columns for the metrics CSV: ftn_lv, ..., ftn_mean, stn_lv, ..., stn_mean."""
        out: Dict[str, float] = {}
        for stage in STAGES:
            out.update({f"{stage}_{name}": value for name, value in self.dice[stage].items()})
            out[f"{stage}_mean"] = self.mean(stage)
        return out


def validate(predictor: SlicePredictor, volumes: Sequence[PreparedVolume]) -> ValidationResult:
    """Dice of both stages on every volume, averaged per structure over volumes.

    ``predictor`` runs the model being validated exactly as the ``Segmenter`` runs a bundle's (training passes
    ``SlicePredictor(trainer.evaluation_model, runtime)``): the same batching, per-slice min-max and numerics.
    """
    if not volumes:
        raise ValueError("validation needs at least one volume")
    num_classes = predictor.num_classes
    codes = list(range(1, num_classes))
    names = [STRUCTURE_COLUMNS.get(c, LABEL_NAMES.get(c, str(c))) for c in codes]
    scores = {stage: [] for stage in STAGES}
    rows: List[Dict[str, object]] = []
    for volume in volumes:
        if volume.label is None:
            raise ValueError(f"{volume.key}: validation volumes need labels")
        predicted = predictor.labels(volume.image)
        row: Dict[str, object] = {"volume": volume.key}
        for stage in STAGES:
            # Scored on the model grid; a structure absent from both sides is NaN (left out of its average).
            overlap = overlap_scores(predicted[stage], volume.label, (1.0,) * volume.label.ndim, codes,
                                     distances=False)
            dice = np.array([overlap[code].dice for code in codes])
            scores[stage].append(dice)
            row.update({f"{stage}_{name}": float(value) for name, value in zip(names, dice)})
        rows.append(row)
    summary = {}
    for stage in STAGES:
        table = np.stack(scores[stage])
        with np.errstate(invalid="ignore"):
            means = [float(np.nanmean(column)) if np.isfinite(column).any() else float("nan") for column in table.T]
        summary[stage] = dict(zip(names, means))
    return ValidationResult(summary, rows)
