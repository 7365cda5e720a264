"""A cine's volume curve: LV cavity, LV myocardium and RV cavity volume of every frame, ED and ES, clinical indices.

ED is the frame of largest LV cavity volume and ES the frame of smallest (the first such frame on a tie), unless the
caller names them (a user overriding the automatic choice). The indices are ``clinical_indices`` of those two frames,
so a cine and a pair of ED / ES files give the same numbers.

>>> import numpy as np
>>> labels = np.zeros((4, 4, 1, 3), np.uint8)
>>> labels[:2, :2, 0, 0] = 1; labels[:1, :2, 0, 1] = 1; labels[:2, :1, 0, 2] = 1; labels[0, 0, 0, 2] = 1
>>> cine = analyse_cine(labels, np.diag([10.0, 10.0, 10.0, 1.0]))  # 1 mL voxels
>>> [round(frame.lv_ml, 6) for frame in cine.frames], cine.ed, cine.es, cine.indices.lv_ef
([4.0, 2.0, 2.0], 0, 1, 50.0)
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Optional, Sequence

import numpy as np

from CoopSegLib.data.labels import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.indices import ClinicalIndices, clinical_indices, voxel_volume_ml

CURVE_COLUMNS = ("frame", "lv_ml", "myo_ml", "rv_ml", "quality")


@dataclass(frozen=True)
class CineFrame:
    frame: int  # counted from 0
    lv_ml: float
    myo_ml: float
    rv_ml: float
    quality: float  # the frame's estimated mean Dice; NaN when not estimated


@dataclass(frozen=True)
class CineAnalysis:
    frames: List[CineFrame]
    ed: int
    es: int
    indices: ClinicalIndices
    flagged: List[int] = field(default_factory=list)  # frames whose quality is below the threshold given


def volume_curve(labels: np.ndarray, affine: np.ndarray, quality: Optional[Sequence[float]] = None) -> List[CineFrame]:
    """One ``CineFrame`` per frame of a (X, Y, Z, T) label map; ``quality``: per-frame estimates (T of them)."""
    labels = np.asarray(labels)
    if labels.ndim != 4:
        raise CoopSegError(f"a cine label map is (X, Y, Z, T); got shape {labels.shape}")
    count = labels.shape[3]
    if quality is not None and len(quality) != count:
        raise CoopSegError(f"{len(quality)} quality estimates for a cine of {count} frames")
    voxel = voxel_volume_ml(affine)
    frames = []
    for t in range(count):
        frame = labels[..., t]
        frames.append(CineFrame(
            t, *(float(np.count_nonzero(frame == code)) * voxel for code in (LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY)),
            math.nan if quality is None else float(quality[t])))
    return frames


def analyse_cine(labels: np.ndarray, affine: np.ndarray, quality: Optional[Sequence[float]] = None,
                 ed: Optional[int] = None, es: Optional[int] = None,
                 threshold: Optional[float] = None) -> CineAnalysis:
    """The volume curve, ED and ES (found, or the frames given), the clinical indices from those two frames, and
    the frames whose quality is below ``threshold`` (none without one)."""
    frames = volume_curve(labels, affine, quality)
    lv = np.array([frame.lv_ml for frame in frames])
    ed = int(np.argmax(lv)) if ed is None else int(ed)
    es = int(np.argmin(lv)) if es is None else int(es)
    for name, value in (("ED", ed), ("ES", es)):
        if not 0 <= value < len(frames):
            raise CoopSegError(f"{name} frame {value} is outside the cine's frames 0-{len(frames) - 1}")
    labels = np.asarray(labels)
    flagged = [f.frame for f in frames if threshold is not None and f.quality < threshold]
    return CineAnalysis(frames, ed, es, clinical_indices(labels[..., ed], affine, labels[..., es], affine), flagged)


def curve_csv(frames: Sequence[CineFrame]) -> str:
    """The curve as CSV (``CURVE_COLUMNS``); volumes in mL to 4 decimals, quality blank when not estimated."""
    lines = [",".join(CURVE_COLUMNS)]
    for f in frames:
        quality = "" if math.isnan(f.quality) else f"{f.quality:.4f}"
        lines.append(f"{f.frame},{f.lv_ml:.4f},{f.myo_ml:.4f},{f.rv_ml:.4f},{quality}")
    return "\n".join(lines) + "\n"
