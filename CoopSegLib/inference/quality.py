"""How far to trust a segmentation: signals every segmentation pass gives, and the estimated Dice they map to.

    result = segmenter.segment(array, affine)
    result.quality.volume        # estimated mean Dice (LV, MYO, RV) of the stage written, in [0, 1]
    result.quality.flag          # "ok" or "review" (estimate below the calibration's threshold)
    result.quality.slices        # one estimate per slice (canonical stack order; ``slice_index`` maps to the input)

Signals, measured on the model's slice grid during the pass that segments:
  - agreement between the fast network (FTN) and its refinement by the shape prior (FTN+STN), per structure;
  - the image decoder's reconstruction error: how far the input lies from the images the model was trained on
    (decoded on the central half of the code map only, a quarter of the decoder's cost);
  - normalised softmax entropy of both stages over the predicted heart;
  - anatomy: empty slices or volumes, slices missing a structure, an LV cavity not ringed by myocardium, volumes
    outside physiological ranges, slice-to-slice continuity.
A calibration fitted by ``CoopSegLib.evaluation.calibration`` (stored in the bundle's metadata under "quality")
maps the standardised features to an estimated Dice with a logistic model, for the volume and for each slice.
A bundle without one gets the documented fallback: the estimate is the FTN-STN agreement (0 for an empty output),
flagged ``review`` below ``DEFAULT_THRESHOLD``, and ``calibrated`` is False.

Each structure (LV, MYO, RV) gets its own estimate too (``result.quality.structures``), from a logistic model on the
volume features and that structure's own agreement, volume and missing slices; a calibrated structure estimate below
``STRUCTURE_THRESHOLD`` also flags the volume ``review``. Calibrations fitted before it have no structure models:
their structure estimates are the FTN-STN agreements, and they flag on the mean alone, as before.

Only torch and numpy are used here: fitting lives in the evaluation package.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Dict, List, Mapping, Optional, Sequence

import numpy as np
import torch

from CoopSegLib.vocabulary import LV_CAVITY, LV_MYOCARDIUM, OK, REVIEW, RV_CAVITY, STRUCTURE_CODES, STRUCTURES

if TYPE_CHECKING:
    from CoopSegLib.networks import CoopSegModel, Prediction

METADATA_KEY = "quality"  # section of the bundle's metadata.json holding the calibration
CALIBRATION_FORMAT = 1
DEFAULT_THRESHOLD = 0.7  # estimated mean Dice below this is flagged "review"
# A structure whose own estimated Dice is below this also flags the volume (calibrated bundles only): half of it
# wrong while the mean can still look fine (an RV far off beside a good LV). Chosen before any scoring.
STRUCTURE_THRESHOLD = 0.5
# Plausible volumes in mL (generous: ACDC's ED and ES frames of healthy and diseased hearts sit well inside).
PHYSIOLOGICAL_ML = {LV_CAVITY: (5.0, 450.0), LV_MYOCARDIUM: (25.0, 400.0), RV_CAVITY: (5.0, 500.0)}

# The flipped look: Dice (mean and worst of LV, MYO, RV, over the slices looked at) between the FTN+STN answer and
# the FTN's answer on the same slices mirrored left-right (and mirrored back). Training flips slices, so a network that
# reads an image well answers alike both ways; an answer that changes under a flip is one it is unsure of. Measured
# only where the calibration uses it (``uses_flip``), and then on every FLIP_SLICE_STEP-th slice of each frame.
FLIP_FEATURES = ("flip_agreement", "flip_agreement_min")
FLIP_SLICE_STEP = 2  # every other slice: half an FTN pass, the cost budget of the flipped look (docs/quality.md)
VOLUME_FEATURES = (
    "agreement", "agreement_min", "entropy_stn", "entropy_ftn", "reconstruction", "reconstruction_max",
    "empty", "empty_slices", "missing_structure", "unringed_lv", "volume_out_of_range", "continuity",
    "log_heart_ml", *FLIP_FEATURES,
)
# Per structure (column "lv", "myo", "rv"): its own FTN-STN agreement, volume and slices lacking it, beside the
# volume features.
STRUCTURE_COLUMNS = tuple(s.column for s in STRUCTURES)


def structure_features(column: str) -> tuple:
    """The features of ``column``'s estimate: the volume features and the structure's own three."""
    return (*VOLUME_FEATURES, f"agreement_{column}", f"log_ml_{column}", f"missing_{column}")


SLICE_FEATURES = (
    "agreement", "entropy_stn", "entropy_ftn", "reconstruction", "empty", "missing_structure", "unringed_lv",
    "continuity", "heart_fraction", "position", "volume_logit",
)


@dataclass
class SliceSignals:
    """Per-slice measurements of one frame on the model grid (arrays of length S)."""

    initial: np.ndarray  # (S, H, W) uint8 FTN labels
    refined: np.ndarray  # (S, H, W) uint8 FTN+STN labels
    entropy_ftn: np.ndarray  # (S,) mean normalised entropy over the predicted heart (0 where none)
    entropy_stn: np.ndarray
    reconstruction: np.ndarray  # (S,) mean squared reconstruction error of the central region
    pixel_ml: float  # volume of one model-grid voxel in mL
    # FTN labels of the slices ``flipped_slices`` (indices into the S) read mirrored and mirrored back; None when
    # the flipped look was not taken (its features are then absent)
    flipped: Optional[np.ndarray] = None
    flipped_slices: Optional[np.ndarray] = None


@dataclass
class QualityEstimate:
    """The estimate for one written label map (all frames of a cine together)."""

    volume: float  # estimated mean Dice of the stage written, [0, 1]
    flag: str  # "ok" / "review"
    slices: np.ndarray  # (total slices,) estimated per-slice mean Dice, canonical order, frames one after another
    slice_frame: np.ndarray  # (total slices,) frame of each slice
    slice_index: np.ndarray  # (total slices,) index of each slice along the input's stack axis
    calibrated: bool
    threshold: float
    features: Dict[str, float] = field(default_factory=dict)  # volume features (mean over frames)
    frames: List[float] = field(default_factory=list)  # per-frame estimates
    frame_features: List[Dict[str, Any]] = field(default_factory=list)  # ``frame_features`` of each frame
    structures: Dict[str, float] = field(default_factory=dict)  # "lv", "myo", "rv" -> estimated Dice (mean of frames)
    structures_calibrated: bool = False  # False: each is the structure's FTN-STN agreement
    structure_threshold: float = STRUCTURE_THRESHOLD
    label_like_input: bool = False  # the input looked like a label map (segmented anyway): flagged whatever the score

    def review_reason(self) -> str:
        """Why the flag is "review" ("" when it is "ok"): the mean, or the structures, below their threshold."""
        if self.flag != REVIEW:
            return ""
        if self.label_like_input:
            return "the input looks like a label map, not an MR image"
        if self.volume < self.threshold:
            return f"estimated Dice {self.volume:.2f} is below {self.threshold:.2f}"
        poor = [f"{s.key} {self.structures[s.column]:.2f}" for s in STRUCTURES
                if self.structures.get(s.column, 1.0) < self.structure_threshold]
        return f"estimated Dice {', '.join(poor)} is below {self.structure_threshold:.2f} for that structure"

    def suspect_slices(self) -> List[int]:
        """Input stack indices of the slices whose estimate is below the threshold (first frame's for a cine)."""
        return [int(i) for i, q, f in zip(self.slice_index, self.slices, self.slice_frame)
                if q < self.threshold and f == 0]


# --- signals measured in the segmentation pass -----------------------------------------------------------------
def pass_signals(model: "CoopSegModel", images: torch.Tensor, prediction: "Prediction") -> torch.Tensor:
    """(3, B) per-slice signals of one batch the networks segmented (``SlicePredictor.predict_with``, stage "stn"):
    FTN entropy, STN entropy over the predicted heart, and the reconstruction error, on the device."""
    initial, refined = prediction.initial, prediction.refined
    heart = (initial.argmax(1) > 0) | (refined.argmax(1) > 0)
    reconstruction = reconstruction_error(model, prediction.z_i, images)
    return torch.stack((heart_entropy(initial, heart), heart_entropy(refined, heart), reconstruction))


def reconstruction_error(model: "CoopSegModel", z_i: torch.Tensor, images: torch.Tensor) -> torch.Tensor:
    """Per-slice mean squared error of D_i(z_i) against the input, on the central half of the image.

    The decoder has no skip connections, so decoding the central half of the code map gives the central half of the
    image at a quarter of the cost; one code cell at the border (context the crop lost) is left out of the error.
    """
    height, width = z_i.shape[-2:]
    factor = images.shape[-1] // width
    if min(height, width) < 8:  # too small to crop and still keep an inner region: decode everything
        decoded = model.reconstruct(z_i).float()
        return ((decoded - images.float()) ** 2).mean(dim=(1, 2, 3))
    top, left = height // 4, width // 4
    rows, cols = slice(top, top + height // 2), slice(left, left + width // 2)
    decoded = model.reconstruct(z_i[..., rows, cols]).float()[..., factor:-factor, factor:-factor]
    target = images[..., (rows.start + 1) * factor:(rows.stop - 1) * factor,
                    (cols.start + 1) * factor:(cols.stop - 1) * factor].float()
    return ((decoded - target) ** 2).mean(dim=(1, 2, 3))


def heart_entropy(logits: torch.Tensor, heart: torch.Tensor) -> torch.Tensor:
    """Per-slice mean normalised softmax entropy over the ``heart`` mask (B, H, W); 0 where the mask is empty."""
    log_p = logits.float().log_softmax(1)
    entropy = -(log_p.exp() * log_p).sum(1) / math.log(logits.shape[1])
    weight = heart.float()
    return (entropy * weight).sum((1, 2)) / weight.sum((1, 2)).clamp_min(1.0)


def flipped_look_slices(count: int) -> np.ndarray:
    """The slices of a frame of ``count`` slices the flipped look reads: every FLIP_SLICE_STEP-th from the first."""
    return np.arange(0, count, FLIP_SLICE_STEP)


def flip_slices(slices: np.ndarray) -> np.ndarray:
    """(S, H, W) mirrored left-right (the last axis); its own inverse."""
    return np.ascontiguousarray(slices[..., ::-1])


def uses_flip(calibration: Optional[Mapping[str, Any]], stage: str) -> bool:
    """Whether any model of ``stage`` in the calibration names a feature of the flipped look."""
    models = ((calibration or {}).get("stages") or {}).get(stage) or {}
    parts = [models.get("volume"), models.get("slice"), *(models.get("structures") or {}).values()]
    return any(set((m or {}).get("features", [])) & set(FLIP_FEATURES) for m in parts)


def flip_features(labels: np.ndarray, flipped: np.ndarray) -> Dict[str, float]:
    """``FLIP_FEATURES`` of FTN+STN labels (S', H, W) and the FTN's labels of the same slices read flipped.

    >>> labels = np.zeros((2, 8, 8), np.uint8); labels[:, 2:6, 2:6] = 1; labels[:, 3:5, 3:5] = 2
    >>> flip_features(labels, labels)
    {'flip_agreement': 1.0, 'flip_agreement_min': 1.0}
    >>> moved = np.roll(labels, 1, axis=2)
    >>> {k: round(v, 3) for k, v in flip_features(labels, moved).items()}
    {'flip_agreement': 0.5, 'flip_agreement_min': 0.5}
    """
    per = np.array([_dice(labels == code, flipped == code, None) for code in STRUCTURE_CODES], dtype=float)
    if not np.isfinite(per).any():  # nothing found either way: no agreement to speak of
        return {"flip_agreement": 0.0, "flip_agreement_min": 0.0}
    return {"flip_agreement": float(np.nanmean(per)), "flip_agreement_min": float(np.nanmin(per))}


# --- features ---------------------------------------------------------------------------------------------------
def _dice(a: np.ndarray, b: np.ndarray, axes: Any) -> np.ndarray:
    """Dice of boolean arrays over ``axes``; NaN where both are empty."""
    total = a.sum(axes) + b.sum(axes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 2.0 * (a & b).sum(axes) / np.maximum(total, 1), np.nan)


def _nanmean(values: np.ndarray, axis: int, empty: float) -> np.ndarray:
    counts = np.sum(~np.isnan(values), axis=axis)
    sums = np.nansum(values, axis=axis)
    return np.where(counts > 0, sums / np.maximum(counts, 1), empty)


def _unringed_lv(labels: np.ndarray) -> np.ndarray:
    """(S,) fraction of LV-cavity border pixels whose outside neighbour is not myocardium (0 where no cavity)."""
    lv = labels == LV_CAVITY
    outside_not_myo = np.zeros(labels.shape[0])
    border = np.zeros(labels.shape[0])
    for axis in (1, 2):
        for step in (1, -1):
            neighbour = np.roll(labels, step, axis=axis)
            edge = lv & (neighbour != LV_CAVITY)
            border += edge.sum((1, 2))
            outside_not_myo += (edge & (neighbour != LV_MYOCARDIUM)).sum((1, 2))
    return np.where(border > 0, outside_not_myo / np.maximum(border, 1), 0.0)


def frame_features(signals: SliceSignals) -> Dict[str, np.ndarray]:
    """Per-slice features (arrays of length S) and volume features (floats) of one frame, by name.

    Volume features are under their own names; per-slice ones under ``slice_<name>``.
    """
    initial, refined = signals.initial, signals.refined
    count = refined.shape[0]
    per_structure = np.stack([_dice(initial == code, refined == code, (1, 2)) for code in STRUCTURE_CODES], axis=1)
    volume_structure = np.array([_dice(initial == code, refined == code, None) for code in STRUCTURE_CODES],
                                dtype=float)
    heart = refined > 0
    heart_pixels = heart.sum((1, 2))
    empty = heart_pixels == 0
    present = np.stack([(refined == code).any((1, 2)) for code in STRUCTURE_CODES], axis=1)
    missing = (~empty) & ~present.all(axis=1)
    unringed = _unringed_lv(refined)
    # Continuity: Dice of the heart mask with each neighbouring slice, averaged (NaN for a lone slice).
    between = _dice(heart[1:], heart[:-1], (1, 2)) if count > 1 else np.zeros(0)
    neighbours = np.full((count, 2), np.nan)
    if count > 1:
        neighbours[1:, 0], neighbours[:-1, 1] = between, between
    continuity = _nanmean(neighbours, axis=1, empty=1.0)
    ml = {code: float((refined == code).sum()) * signals.pixel_ml for code in STRUCTURE_CODES}
    out_of_range = sum(max(0.0, math.log(low / max(ml[code], 1e-3)), math.log(max(ml[code], 1e-3) / high))
                       for code, (low, high) in PHYSIOLOGICAL_ML.items())
    weights = heart_pixels / max(heart_pixels.sum(), 1)
    agreement = float(np.nanmean(volume_structure)) if np.isfinite(volume_structure).any() else 0.0
    features: Dict[str, Any] = {
        "agreement": agreement,
        "agreement_min": float(np.nanmin(volume_structure)) if np.isfinite(volume_structure).any() else 0.0,
        "entropy_stn": float((signals.entropy_stn * weights).sum()),
        "entropy_ftn": float((signals.entropy_ftn * weights).sum()),
        "reconstruction": float(np.mean(signals.reconstruction)),
        "reconstruction_max": float(np.max(signals.reconstruction)),
        "empty": float(empty.all()),
        "empty_slices": float(empty.mean()),
        "missing_structure": float(missing.sum() / max((~empty).sum(), 1)),
        "unringed_lv": float((unringed * weights).sum()),
        "volume_out_of_range": float(min(out_of_range, 10.0)),
        "continuity": float((continuity * weights).sum()) if not empty.all() else 0.0,
        "log_heart_ml": math.log1p(sum(ml.values())),
        **{f"agreement_{s.column}": float(np.nan_to_num(volume_structure[k], nan=0.0))  # absent on both: failed
           for k, s in enumerate(STRUCTURES)},
        **{f"log_ml_{s.column}": math.log1p(ml[s.code]) for s in STRUCTURES},
        **{f"missing_{s.column}": float(((~empty) & ~present[:, k]).sum() / max((~empty).sum(), 1))
           for k, s in enumerate(STRUCTURES)},
        "slice_agreement": _nanmean(per_structure, axis=1, empty=1.0) * (~empty) + 0.0,
        "slice_entropy_stn": signals.entropy_stn,
        "slice_entropy_ftn": signals.entropy_ftn,
        "slice_reconstruction": signals.reconstruction,
        "slice_empty": empty.astype(float),
        "slice_missing_structure": missing.astype(float),
        "slice_unringed_lv": unringed,
        "slice_continuity": continuity,
        "slice_heart_fraction": heart_pixels / max(heart_pixels.max(), 1),
        # 0 at the stack's middle, 1 at either end: apical and basal slices are the hard ones.
        "slice_position": np.abs(np.linspace(-1.0, 1.0, count)) if count > 1 else np.zeros(1),
    }
    if signals.flipped is not None:
        features.update(flip_features(refined[signals.flipped_slices], signals.flipped))
    return features


# --- the calibrated map -----------------------------------------------------------------------------------------
def apply_logistic(features: np.ndarray, model: Mapping[str, Any]) -> np.ndarray:
    """sigmoid(w . (x - mean) / scale + b) for rows of ``features`` in the model's feature order."""
    mean, scale = np.asarray(model["mean"], float), np.asarray(model["scale"], float)
    z = (features - mean) / scale @ np.asarray(model["weights"], float) + float(model["bias"])
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def volume_matrix(features: Sequence[Mapping[str, Any]], names: Sequence[str] = VOLUME_FEATURES) -> np.ndarray:
    return np.array([[float(f[name]) for name in names] for f in features], dtype=float).reshape(-1, len(names))


def slice_matrix(features: Mapping[str, Any], volume_logit: float, names: Sequence[str] = SLICE_FEATURES) -> np.ndarray:
    """(S, F) per-slice feature rows; ``volume_logit`` (the frame's volume estimate as a logit) is context."""
    count = len(features["slice_agreement"])
    columns = [np.full(count, volume_logit) if name == "volume_logit" else np.asarray(features[f"slice_{name}"], float)
               for name in names]
    return np.stack(columns, axis=1)


def to_logit(value: float) -> float:
    value = min(max(value, 1e-4), 1 - 1e-4)
    return math.log(value / (1 - value))


def check_calibration(calibration: Mapping[str, Any], source: str) -> None:
    """Raise ValueError naming ``source`` when a stored calibration is not one this code can apply. Each model names
    its own features, so calibrations fitted before a feature was added keep working."""
    if not isinstance(calibration, Mapping) or not isinstance(calibration.get("stages", {}), Mapping):
        raise ValueError(f"{source}: the quality calibration in the metadata is not a JSON object; re-run coopseg "
                         "calibrate")
    if calibration.get("format") != CALIBRATION_FORMAT:
        raise ValueError(f"{source}: quality calibration format {calibration.get('format')!r} is not supported")
    volume_names = set(VOLUME_FEATURES).union(*(structure_features(c) for c in STRUCTURE_COLUMNS))
    for stage, models in (calibration.get("stages") or {}).items():
        parts = [("volume", models.get("volume"), volume_names), ("slice", models.get("slice"), set(SLICE_FEATURES))]
        parts += [(f"structure {c}", m, volume_names) for c, m in (models.get("structures") or {}).items()]
        for part, model, known in parts:
            names = list((model or {}).get("features", []))
            if not names or not set(names) <= known or len(model.get("weights", [])) != len(names):
                raise ValueError(f"{source}: quality calibration for stage {stage} ({part}) does not match the "
                                 f"features this CoopSeg measures; re-run coopseg calibrate")
        unknown = set(models.get("structures") or {}) - set(STRUCTURE_COLUMNS)
        if unknown:
            raise ValueError(f"{source}: quality calibration for stage {stage} has unknown structures "
                             f"{', '.join(sorted(unknown))}; re-run coopseg calibrate")


def apply_model(model: Mapping[str, Any], features: Sequence[Mapping[str, Any]]) -> np.ndarray:
    """A fitted volume-level model (volume or structure) applied to frames' features, in its own feature order."""
    return apply_logistic(volume_matrix(features, model["features"]), model)


def estimate_frame(features: Mapping[str, Any], calibration: Optional[Mapping[str, Any]],
                   stage: str) -> tuple:
    """(volume estimate, per-slice estimates) of one frame; the fallback without a calibration."""
    models = (calibration or {}).get("stages", {}).get(stage)
    if models is None:  # uncalibrated: the shape prior's verdict alone, an empty output counts as failed
        volume = 0.0 if features["empty"] else float(features["agreement"])
        return volume, np.asarray(features["slice_agreement"], float)
    volume = float(apply_model(models["volume"], [features])[0])
    slices = apply_logistic(slice_matrix(features, to_logit(volume), models["slice"]["features"]), models["slice"])
    return volume, slices


def estimate_structures(features: Mapping[str, Any], calibration: Optional[Mapping[str, Any]],
                        stage: str) -> tuple:
    """({column: estimated Dice}, calibrated) of one frame; without a structure calibration each structure's
    FTN-STN agreement (0 for an empty output)."""
    models = ((calibration or {}).get("stages", {}).get(stage) or {}).get("structures")
    if not models:
        return {c: 0.0 if features["empty"] else float(features[f"agreement_{c}"]) for c in STRUCTURE_COLUMNS}, False
    return {c: float(apply_model(models[c], [features])[0]) for c in STRUCTURE_COLUMNS}, True


def estimate_quality(frames: Sequence[Mapping[str, Any]], stack_indices: Sequence[np.ndarray],
                     calibration: Optional[Mapping[str, Any]], stage: str,
                     label_like_input: bool = False) -> QualityEstimate:
    """The estimate of a written label map from each frame's features (``frame_features``).

    ``label_like_input``: the input was a label map segmented anyway. The features were calibrated on MR images,
    and on a label map they can look good (ACDC's _gt files: estimate 0.74, true Dice 0.48), so it is flagged
    for review whatever the estimate.
    """
    calibrated = bool(calibration and stage in calibration.get("stages", {}))
    threshold = float((calibration or {}).get("threshold", DEFAULT_THRESHOLD)) if calibrated else DEFAULT_THRESHOLD
    volumes, slices, frame_of, indices, structures = [], [], [], [], []
    structures_calibrated = False
    for number, (features, stack) in enumerate(zip(frames, stack_indices)):
        volume, per_slice = estimate_frame(features, calibration, stage)
        per_structure, structures_calibrated = estimate_structures(features, calibration, stage)
        structures.append(per_structure)
        volumes.append(volume)
        slices.append(per_slice)
        frame_of.append(np.full(len(per_slice), number))
        indices.append(np.asarray(stack))
    volume = float(np.mean(volumes))
    summary = {name: float(np.mean([f[name] for f in frames])) for name in VOLUME_FEATURES
               if all(name in f for f in frames)}  # the flipped look's only where it was taken
    by_structure = {c: float(np.mean([s[c] for s in structures])) for c in STRUCTURE_COLUMNS}
    structure_threshold = float((calibration or {}).get("structure_threshold", STRUCTURE_THRESHOLD))
    poor_structure = structures_calibrated and min(by_structure.values()) < structure_threshold
    return QualityEstimate(
        volume=volume, flag=REVIEW if volume < threshold or poor_structure or label_like_input else OK,
        slices=np.concatenate(slices), slice_frame=np.concatenate(frame_of), slice_index=np.concatenate(indices),
        calibrated=calibrated, threshold=threshold, features=summary, frames=volumes, frame_features=list(frames),
        structures=by_structure, structures_calibrated=structures_calibrated, structure_threshold=structure_threshold,
        label_like_input=label_like_input,
    )
