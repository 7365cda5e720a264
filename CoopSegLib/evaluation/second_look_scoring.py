"""The quality estimate scored with the second look on, leaving one subject out.

``coopseg segment`` and the Slicer module take the second look (``Segmenter.segment(second_look=True)``): while the
estimate flags an answer for review, they segment again with the model slices blurred by each of
SECOND_LOOK_SIGMAS pixels in turn and keep the answer with the highest estimate. What a user then reads is the
kept answer's estimate against the kept answer's Dice, so that is what this scores. The flag and the choice depend
on the calibration, so each held-out subject's looks are decided by the calibration fitted on the other subjects,
exactly as ``cross_validate`` scores the one-pass estimate. A blurred candidate is segmented only when the fold's
flag asks for it (``measure``), as a segmentation would.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Dict, List, Mapping, Sequence

import numpy as np

from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.calibration import CalibrationItem, CalibrationSample, fit_calibration, subject_folds
from CoopSegLib.inference.engine import SECOND_LOOK_SIGMAS
from CoopSegLib.inference.quality import QualityEstimate, estimate_quality
from CoopSegLib.vocabulary import REVIEW

Measure = Callable[[CalibrationItem, float], CalibrationSample]  # (item, blur in px) -> its blurred sample


def sample_estimate(sample: CalibrationSample, calibration: Mapping[str, Any], stage: str) -> QualityEstimate:
    """The estimate (volume, structures, flag) a segmentation with ``calibration`` gives the sample's answer."""
    count = len(sample.features["slice_agreement"])
    return estimate_quality([sample.features], [np.arange(count)], calibration, stage)


def cross_validate_second_look(fit_samples: Sequence[CalibrationSample], score_items: Sequence[CalibrationItem],
                               score_samples: Sequence[CalibrationSample], measure: Measure,
                               stage: str = "stn") -> List[Dict[str, Any]]:
    """Leave one subject out with the second look: each held-out ``score_samples`` answer (one pass) is looked at
    again, blurred, while the calibration fitted on the other subjects' ``fit_samples`` flags it, and the answer
    with the highest estimate is kept. Rows: set, subject, key, dice, estimate (of the kept answer), looks (blurred
    passes taken), blur (of the kept answer, 0 for the first), structures ({column: (Dice, estimate)} of the kept
    answer, for the structures present in it or its reference)."""
    items = {item.key: item for item in score_items}
    rows = []
    for subject, training, held_out in subject_folds(fit_samples, score_samples):
        calibration = fit_calibration(training)
        for sample in held_out:
            if sample.key not in items:
                raise CoopSegError(f"{sample.key}: no image to take the second look at")
            best, best_estimate, best_blur = sample, sample_estimate(sample, calibration, stage), 0.0
            looks = 0
            for sigma in SECOND_LOOK_SIGMAS:
                if best_estimate.flag != REVIEW:
                    break
                looks += 1
                candidate = measure(items[sample.key], sigma)
                estimate = sample_estimate(candidate, calibration, stage)
                if estimate.volume > best_estimate.volume:
                    best, best_estimate, best_blur = candidate, estimate, sigma
            structures = {column: (dice, best_estimate.structures[column])
                          for column, dice in best.structure_dice.get(stage, {}).items() if not math.isnan(dice)}
            rows.append({"set": sample.set, "subject": subject, "key": sample.key, "dice": best.dice[stage],
                         "estimate": best_estimate.volume, "looks": looks, "blur": best_blur,
                         "structures": structures})
    return rows
