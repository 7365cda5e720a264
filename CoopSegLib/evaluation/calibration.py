"""Fitting the quality estimate: the true Dice of outputs on degraded validation images, and the model that predicts it.

    items = calibration_items(cases, levels=1, seed=0)       # each case clean and under every perturbation
    samples = collect_samples(segmenter, items)              # features + true Dice (MONAI) per volume and slice
    calibration = fit_calibration(samples)                   # logistic models, stored in the bundle's metadata

The perturbations (``CoopSegLib.data.perturbations``) exclude the four TorchIO artefacts of the test sets, so the
estimate scored on those sets is scored on artefacts it was never fitted on. ``cross_validate`` gives held-out
estimates by leaving one subject out: each subject's cases are estimated by a model fitted on the others.
The logistic models are fitted here with torch (L-BFGS, cross-entropy against the fractional Dice); applying one
needs numpy only (``CoopSegLib.inference.quality``).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, Iterator, List, Mapping, Optional, Sequence

import numpy as np
import torch

from CoopSegLib import __version__
from CoopSegLib.data.case import Case
from CoopSegLib.data.corruption import corruption_seed
from CoopSegLib.data.geometry import SliceMapping, Volume
from CoopSegLib.data.perturbations import PERTURBATIONS, perturb_volume
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.metrics import overlap_scores, slice_dice
from CoopSegLib.inference.quality import (CALIBRATION_FORMAT, DEFAULT_THRESHOLD, METADATA_KEY, SLICE_FEATURES,
                                          STRUCTURE_COLUMNS, STRUCTURE_THRESHOLD, VOLUME_FEATURES, apply_model,
                                          slice_matrix, structure_features, to_logit, volume_matrix)
from CoopSegLib.vocabulary import ALL_STAGES, STRUCTURE_COLUMNS as COLUMN_OF_CODE

STAGE_ATTRIBUTES = {s.name: s.attribute for s in ALL_STAGES}
L2_PENALTY = 0.05  # on standardised weights: a few hundred volumes, a dozen correlated features
# The volume and structure models take the penalty of these that estimates held-out subjects of the fitting samples
# best (``chosen_penalty``): chosen on the calibration's own images, never on the test artefacts. The slice model,
# whose rows hang on the volume model's estimate, keeps L2_PENALTY.
PENALTIES = (0.01, 0.05, 0.2, 1.0)


@dataclass
class CalibrationItem:
    set: str  # "clean", a perturbation kind, or a test set name
    subject: str
    key: str
    image: Volume
    label: Volume
    severity: float = 0.0


@dataclass
class CalibrationSample:
    """One segmented volume: its features (``frame_features``) and the true Dice of each stage."""

    set: str
    subject: str
    key: str
    severity: float
    features: Dict[str, Any]
    dice: Dict[str, float]  # stage -> mean Dice over LV, MYO, RV (3D)
    slice_dice: Dict[str, np.ndarray] = field(default_factory=dict)  # stage -> (S,) mean Dice, NaN if nothing there
    # stage -> structure column ("lv", "myo", "rv") -> 3D Dice (NaN where absent on both sides); {} in samples
    # measured before structures were estimated
    structure_dice: Dict[str, Dict[str, float]] = field(default_factory=dict)


def calibration_items(cases: Iterable[Case], levels: int = 1, seed: int = 0,
                      kinds: Sequence[str] = tuple(PERTURBATIONS)) -> Iterator[CalibrationItem]:
    """Every case clean, then under each perturbation at ``levels`` severities spread over [0, 1] (jittered)."""
    if levels < 1:
        raise CoopSegError(f"--levels must be at least 1, got {levels}")
    for case in cases:
        if case.label is None:
            raise CoopSegError(f"{case.source or case.key}: calibration needs a reference label map")
        yield CalibrationItem("clean", case.subject, case.key, case.image, case.label)
        for kind in kinds:
            for level in range(levels):
                item_seed = corruption_seed(seed, kind, case.key, level)
                jitter = np.random.default_rng(item_seed).uniform(0.0, 1.0)
                severity = float((level + jitter) / levels)
                array = perturb_volume(case.image.array, kind, severity, item_seed)
                yield CalibrationItem(kind, case.subject, f"{case.key}_{kind}_{level + 1}",
                                      Volume(array, case.image.affine), case.label, severity)


def true_dice(prediction: np.ndarray, reference: Volume, mapping: SliceMapping) -> tuple:
    """(3D mean Dice over the structures, (S,) per-slice mean Dice in the model's stack order, {column: 3D Dice})
    of a label map."""
    scores = overlap_scores(prediction, reference.array, reference.spacing, distances=False)
    values = [s.dice for s in scores.values() if not math.isnan(s.dice)]
    volume = float(np.mean(values)) if values else math.nan
    per_slice = slice_dice(mapping.to_canonical(prediction), mapping.to_canonical(reference.array))
    with np.errstate(invalid="ignore"):
        counts = np.sum(~np.isnan(per_slice), axis=1)
        slices = np.where(counts > 0, np.nansum(per_slice, axis=1) / np.maximum(counts, 1), np.nan)
    return volume, slices, {COLUMN_OF_CODE[code]: float(score.dice) for code, score in scores.items()}


def collect_samples(segmenter: Any, items: Iterable[CalibrationItem],
                    report: Optional[Callable[[CalibrationItem], None]] = None,
                    flipped_look: bool = False, blur: float = 0.0) -> List[CalibrationSample]:
    """Segment every item once (both stages) and record its features and true Dice; ``flipped_look`` also
    measures the flipped look's ``FLIP_FEATURES`` (then fitted on, and taken by every segmentation after);
    ``blur`` > 0 segments each item as the second look does, its model slices blurred by that many pixels."""
    # Only the features are kept, never the bundle's own estimate: measured without the calibration, which may need
    # features this measurement leaves out (the flipped look's). A shallow copy: the caller's segmenter is untouched.
    segmenter = copy.copy(segmenter)
    segmenter.calibration = None
    samples = []
    for item in items:
        if report is not None:
            report(item)
        # The fit uses every feature the samples hold.
        if blur > 0:
            result = segmenter.segment_blurred(item.image.array, item.image.affine, blur, "stn", flipped_look)
        else:
            result = segmenter.segment(item.image.array, item.image.affine, stage="stn", quality=True,
                                       flipped_look=flipped_look)
        mapping = SliceMapping.from_affine(item.image.shape, item.image.affine, segmenter.spacing, segmenter.size)
        dice, per_slice, per_structure = {}, {}, {}
        for stage, attribute in STAGE_ATTRIBUTES.items():
            dice[stage], per_slice[stage], per_structure[stage] = true_dice(getattr(result, attribute), item.label,
                                                                            mapping)
        samples.append(CalibrationSample(item.set, item.subject, item.key, item.severity,
                                         result.quality.frame_features[0], dice, per_slice, per_structure))
    return samples


# --- fitting ----------------------------------------------------------------------------------------------------
def fit_logistic(features: np.ndarray, targets: np.ndarray, names: Sequence[str],
                 l2: float = L2_PENALTY) -> Dict[str, Any]:
    """A logistic model sigmoid(w . standardised x + b) fitted to targets in [0, 1] (soft cross-entropy + L2)."""
    features, targets = np.asarray(features, float), np.clip(np.asarray(targets, float), 0.0, 1.0)
    if len(targets) < 2:
        raise CoopSegError("quality calibration needs at least two segmented volumes")
    mean = features.mean(axis=0)
    scale = features.std(axis=0)
    scale = np.where(scale > 1e-8, scale, 1.0)  # a constant feature keeps weight 0
    x = torch.from_numpy((features - mean) / scale)
    y = torch.from_numpy(targets)
    weights = torch.zeros(x.shape[1], dtype=torch.float64, requires_grad=True)
    bias = torch.tensor(to_logit(float(targets.mean())), dtype=torch.float64, requires_grad=True)
    optimiser = torch.optim.LBFGS([weights, bias], max_iter=500, tolerance_grad=1e-9, line_search_fn="strong_wolfe")

    def closure() -> torch.Tensor:
        optimiser.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(x @ weights + bias, y)
        loss = loss + l2 * (weights ** 2).sum() / 2
        loss.backward()
        return loss

    optimiser.step(closure)
    return {"features": list(names), "mean": mean.tolist(), "scale": scale.tolist(),
            "weights": weights.detach().tolist(), "bias": float(bias.detach()), "l2": float(l2)}


def chosen_penalty(samples: Sequence[CalibrationSample], names: Sequence[str],
                   target: Callable[[CalibrationSample], float]) -> float:
    """The L2 penalty of PENALTIES whose models, fitted on all subjects but one in turn, give the lowest mean
    absolute error on the subject left out (``target``: the value a sample's estimate should match). Fewer than
    three subjects leave too little to choose on: L2_PENALTY."""
    subjects = sorted({s.subject for s in samples})
    if len(subjects) < 3:
        return L2_PENALTY
    folds = [([s for s in samples if s.subject != subject], [s for s in samples if s.subject == subject])
             for subject in subjects]

    def held_out_error(l2: float) -> float:
        errors = []
        for training, held_out in folds:
            model = fit_logistic(volume_matrix([s.features for s in training], names),
                                 [target(s) for s in training], names, l2)
            estimates = apply_model(model, [s.features for s in held_out])
            errors.extend(abs(e - target(s)) for s, e in zip(held_out, estimates))
        return float(np.mean(errors))

    errors = {l2: held_out_error(l2) for l2 in PENALTIES}
    return min(PENALTIES, key=errors.get)  # ties: the first, the smaller penalty


def fit_selected(samples: Sequence[CalibrationSample], names: Sequence[str],
                 target: Callable[[CalibrationSample], float]) -> Dict[str, Any]:
    """``fit_logistic`` of ``names`` to ``target`` on every sample, with the penalty ``chosen_penalty`` picks."""
    return fit_logistic(volume_matrix([s.features for s in samples], names), [target(s) for s in samples], names,
                        chosen_penalty(samples, names, target))


def _slice_rows(samples: Sequence[CalibrationSample], stage: str,
                volume_model: Mapping[str, Any]) -> tuple:
    rows, targets = [], []
    for sample in samples:
        volume = float(apply_model(volume_model, [sample.features])[0])
        matrix = slice_matrix(sample.features, to_logit(volume))
        known = ~np.isnan(sample.slice_dice[stage])
        rows.append(matrix[known])
        targets.append(sample.slice_dice[stage][known])
    return np.concatenate(rows), np.concatenate(targets)


def measured_features(samples: Sequence[CalibrationSample], names: Sequence[str]) -> tuple:
    """The features of ``names`` every sample holds (sample files measured before a feature existed lack it)."""
    return tuple(name for name in names if all(name in s.features for s in samples))


def fit_stage(samples: Sequence[CalibrationSample], stage: str) -> Dict[str, Any]:
    usable = [s for s in samples if not math.isnan(s.dice[stage])]
    volume_model = fit_selected(usable, measured_features(usable, VOLUME_FEATURES), lambda s: s.dice[stage])
    rows, targets = _slice_rows(usable, stage, volume_model)
    fitted = {"volume": volume_model, "slice": fit_logistic(rows, targets, SLICE_FEATURES)}
    structures = fit_structures(usable, stage)
    if structures:
        fitted["structures"] = structures
    return fitted


def fit_structures(samples: Sequence[CalibrationSample], stage: str) -> Dict[str, Any]:
    """One logistic model per structure column ({} when the samples hold no structure Dice: older sample files)."""
    if not all(stage in s.structure_dice and f"agreement_{STRUCTURE_COLUMNS[0]}" in s.features for s in samples):
        return {}
    models = {}
    for column in STRUCTURE_COLUMNS:
        usable = [s for s in samples if not math.isnan(s.structure_dice[stage].get(column, math.nan))]
        models[column] = fit_selected(usable, measured_features(usable, structure_features(column)),
                                      lambda s, column=column: s.structure_dice[stage][column])
    return models


def fit_calibration(samples: Sequence[CalibrationSample], threshold: float = DEFAULT_THRESHOLD,
                    provenance: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """The calibration stored in a bundle: a volume and a slice model per stage, the flag threshold, provenance."""
    stages = {stage: fit_stage(samples, stage) for stage in STAGE_ATTRIBUTES}
    fitted = estimate_samples(samples, {"format": CALIBRATION_FORMAT, "stages": stages})
    return {
        "format": CALIBRATION_FORMAT,
        "threshold": float(threshold),
        "structure_threshold": STRUCTURE_THRESHOLD,
        "stages": stages,
        "fitted_on": {
            "subjects": sorted({s.subject for s in samples}),
            "sets": sorted({s.set for s in samples}),
            "volumes": len(samples),
            "coopseg_version": __version__,
            **dict(provenance or {}),
        },
        "in_sample_mae": {stage: float(np.nanmean([abs(e - s.dice[stage]) for s, e in zip(samples, fitted[stage])]))
                          for stage in STAGE_ATTRIBUTES},
    }


def estimate_samples(samples: Sequence[CalibrationSample], calibration: Mapping[str, Any]) -> Dict[str, List[float]]:
    """Volume estimates of each sample under ``calibration``, per stage."""
    out: Dict[str, List[float]] = {}
    for stage, models in calibration["stages"].items():
        out[stage] = apply_model(models["volume"], [s.features for s in samples]).tolist()
    return out


def subject_folds(fit_samples: Sequence[CalibrationSample],
                  score_samples: Sequence[CalibrationSample]) -> Iterator[tuple]:
    """(subject, the other subjects' ``fit_samples``, the subject's ``score_samples``) for each scored subject."""
    for subject in sorted({s.subject for s in score_samples}):
        training = [s for s in fit_samples if s.subject != subject]
        if not training:
            raise CoopSegError("leave-one-subject-out needs fitting volumes from at least two subjects")
        yield subject, training, [s for s in score_samples if s.subject == subject]


def cross_validate(fit_samples: Sequence[CalibrationSample], score_samples: Sequence[CalibrationSample],
                   stage: str = "stn") -> List[Dict[str, Any]]:
    """Leave one subject out: each subject's ``score_samples`` estimated by a model fitted on the other subjects'
    ``fit_samples``. Rows: set, subject, key, dice, estimate."""
    rows = []
    for subject, training, held_out in subject_folds(fit_samples, score_samples):
        models = {"stages": {stage: fit_stage(training, stage)}}
        for sample, estimate in zip(held_out, estimate_samples(held_out, models)[stage]):
            rows.append({"set": sample.set, "subject": subject, "key": sample.key, "dice": sample.dice[stage],
                         "estimate": estimate})
    return rows


def cross_validate_structures(fit_samples: Sequence[CalibrationSample], score_samples: Sequence[CalibrationSample],
                              stage: str = "stn") -> List[Dict[str, Any]]:
    """``cross_validate`` for the structure estimates: rows set, subject, key, structure, dice, estimate."""
    rows = []
    for subject in sorted({s.subject for s in score_samples}):
        models = fit_structures([s for s in fit_samples if s.subject != subject], stage)
        if not models:
            raise CoopSegError("the samples hold no structure Dice (measured before structures were estimated); "
                               "measure them again")
        for sample in (s for s in score_samples if s.subject == subject):
            for column, model in models.items():
                dice = sample.structure_dice[stage].get(column, math.nan)
                if math.isnan(dice):
                    continue
                estimate = float(apply_model(model, [sample.features])[0])
                rows.append({"set": sample.set, "subject": subject, "key": sample.key, "structure": column,
                             "dice": dice, "estimate": estimate})
    return rows


# --- samples on disk (one JSON object per line), so fitting and cross-validation can be redone without segmenting ---
def _plain(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [None if math.isnan(v) else float(v) for v in value.astype(float)]
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


def sample_to_json(sample: CalibrationSample) -> str:
    import json

    return json.dumps({
        "set": sample.set, "subject": sample.subject, "key": sample.key, "severity": sample.severity,
        "features": {k: _plain(v) for k, v in sample.features.items()},
        "dice": {k: _plain(v) for k, v in sample.dice.items()},
        "slice_dice": {k: _plain(v) for k, v in sample.slice_dice.items()},
        "structure_dice": {k: {c: _plain(v) for c, v in d.items()} for k, d in sample.structure_dice.items()},
    })


def _array(values: Sequence[Optional[float]]) -> np.ndarray:
    return np.array([math.nan if v is None else v for v in values], dtype=float)


def sample_from_json(line: str) -> CalibrationSample:
    import json

    data = json.loads(line)
    features = {k: (_array(v) if isinstance(v, list) else v) for k, v in data["features"].items()}
    return CalibrationSample(data["set"], data["subject"], data["key"], float(data["severity"]), features,
                             {k: (math.nan if v is None else float(v)) for k, v in data["dice"].items()},
                             {k: _array(v) for k, v in data["slice_dice"].items()},
                             {k: {c: (math.nan if v is None else float(v)) for c, v in d.items()}
                              for k, d in data.get("structure_dice", {}).items()})


def calibrate_bundle(bundle_path: Any, cases: Sequence[Case], levels: int = 1, seed: int = 0, device: str = "auto",
                     report: Optional[Callable[[int, int, CalibrationItem], None]] = None,
                     samples_file: Any = None, flipped_look: bool = False) -> tuple:
    """Fit the quality calibration of a bundle on ``cases`` (its validation subjects) and store it in its metadata.

    ``report(done, total, item)`` is called before each volume is segmented; ``samples_file`` (JSON lines) keeps
    the measured samples; ``flipped_look`` measures and fits the flipped look's features too (``collect_samples``).
    Returns (calibration, samples). The weights are not touched (their checksum stays valid).
    """
    from CoopSegLib.inference.engine import Segmenter

    cases = list(cases)
    if not cases:
        raise CoopSegError(f"{bundle_path}: no cases to calibrate the quality estimate on")
    segmenter = Segmenter(bundle_path, device=device)
    total = len(cases) * (1 + len(PERTURBATIONS) * levels)
    done = [0]

    def counted(item: CalibrationItem) -> None:
        if report is not None:
            report(done[0], total, item)
        done[0] += 1

    samples = collect_samples(segmenter, calibration_items(cases, levels, seed), counted, flipped_look)
    if samples_file is not None:
        from CoopSegLib.evaluation.report import write_text_atomically

        write_text_atomically(samples_file, "".join(sample_to_json(s) + "\n" for s in samples))
    return store_calibration(segmenter.bundle.path, samples, levels, seed), samples


def store_calibration(bundle_path: Any, samples: Sequence[CalibrationSample], levels: int = 1,
                      seed: int = 0) -> Dict[str, Any]:
    """Fit the calibration on measured ``samples`` and write it into the bundle's metadata; returns it."""
    from CoopSegLib.bundle import write_metadata_section

    calibration = fit_calibration(samples, provenance={"perturbations": list(PERTURBATIONS), "levels": levels,
                                                       "seed": seed})
    write_metadata_section(bundle_path, METADATA_KEY, calibration)
    return calibration


def artefact_items(data: Any, subjects: Sequence[str], sets: Sequence[str], copies: int = 3,
                   seed: int = 0) -> Iterator[CalibrationItem]:
    """The evaluation's test sets (e.g. clean and the four TorchIO artefacts) of ``subjects`` as calibration items,
    exactly the cases ``coopseg evaluate --sets ... --seed S`` builds."""
    from CoopSegLib.evaluation.test_sets import build_test_sets

    for case in build_test_sets(data, sets, subjects, copies, seed):
        subject = next(s for s in subjects if case.key.startswith(f"{s}_"))
        yield CalibrationItem(case.set, subject, case.key, case.image, case.label)
