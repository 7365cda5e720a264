"""The end of the embedded default run: the phantom demo model segments a phantom subject it has never seen.

``python Training/train.py`` trains the phantom demo model on synthetic subjects; this step then runs the model
bundle it just wrote through the same inference code as ``coopseg segment`` (``CoopSegLib.inference``) on a new
phantom subject, scores both stages against the phantom's exact labels, and draws one slice as input, FTN and
FTN+STN (``demo.png`` in the run folder), so the first command shows the whole system.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

import numpy as np

from CoopSegLib.errors import CoopSegError

PICTURE_NAME = "demo.png"


@dataclass(frozen=True)
class DemoResult:
    subject: str
    dice_ftn: float  # mean 3D Dice over LV cavity, LV myocardium and RV cavity
    dice_stn: float
    picture: Optional[Path]  # None when matplotlib is missing
    note: str = ""  # why there is no picture


def mean_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    from CoopSegLib.evaluation.metrics import overlap_scores

    scores = overlap_scores(prediction, truth, (1.0, 1.0, 1.0), distances=False)
    return float(np.nanmean([score.dice for score in scores.values()]))


def unseen_phantom_seed(phantom_seed: int, phantom_subjects: int) -> int:
    """The first phantom seed after those the run trained and validated on (seeds seed .. seed + n - 1)."""
    return phantom_seed + phantom_subjects


def run_demo(bundle: Path, run_dir: Path, phantom_seed: int, phantom_subjects: int, device: str = "cpu") -> DemoResult:
    """Segment the ED frame of an unseen phantom subject with ``bundle`` and draw it into ``run_dir``."""
    from CoopSegLib.data.phantom import phantom_subject
    from CoopSegLib.inference import Segmenter
    from CoopSegLib.pictures import save_segmentation_picture

    seed = unseen_phantom_seed(phantom_seed, phantom_subjects)
    (case,) = phantom_subject(seed, frames=("ED",))
    result = Segmenter(bundle, device=device).segment(case.image.array, case.image.affine, stage="stn")
    dice_ftn, dice_stn = mean_dice(result.initial, case.label.array), mean_dice(result.refined, case.label.array)
    subject = f"phantom subject {seed} (ED)"
    panels = [(f"input: {subject}", None), (f"FTN (Dice {dice_ftn:.2f})", result.initial),
              (f"FTN+STN (Dice {dice_stn:.2f})", result.refined)]
    try:
        picture = save_segmentation_picture(Path(run_dir) / PICTURE_NAME, case.image.array.astype(np.float32),
                                            panels)
    except CoopSegError as error:  # matplotlib missing: the scores still stand
        return DemoResult(subject, dice_ftn, dice_stn, None, str(error))
    return DemoResult(subject, dice_ftn, dice_stn, picture)
