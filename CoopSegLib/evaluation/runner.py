"""Running evaluations: a model over test sets, or label maps in one folder against references in another."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Callable, Dict, Iterable, List, Mapping, Optional, Union

import numpy as np

from CoopSegLib.data.geometry import Volume
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.metrics import overlap_scores, structure_name
from CoopSegLib.evaluation.report import ScoreRow
from CoopSegLib.evaluation.test_sets import EvaluationCase
from CoopSegLib.vocabulary import ALL_STAGES

if TYPE_CHECKING:  # the segmenter needs the networks; folder evaluation does not
    from CoopSegLib.inference import Segmenter

PathLike = Union[str, Path]
OUTPUT_SUFFIXES = ("_probabilities", "_entropy")  # extra files `coopseg segment` writes beside the label maps


def score_rows(set_name: str, case: str, stage: str, prediction: np.ndarray, reference: Volume,
               distances: bool = True, subject: str = "", frame: str = "", group: str = "") -> List[ScoreRow]:
    """Rows for one label map against its reference (Dice and HD95 per structure, at the reference's spacing)."""
    scores = overlap_scores(prediction, reference.array, reference.spacing, distances=distances)
    return [ScoreRow(set_name, case, stage, structure_name(code), s.dice, s.hd95, subject, frame, group)
            for code, s in scores.items()]


def evaluate_model(segmenter: "Segmenter", cases: Iterable[EvaluationCase],
                   report: Optional[Callable[[EvaluationCase], None]] = None,
                   distances: bool = True, largest_component: bool = False,
                   estimates: Optional[Dict[tuple, float]] = None, second_look: bool = False) -> List[ScoreRow]:
    """FTN and FTN+STN scores of every case (one segmentation pass gives both); HD95 too unless not ``distances``.

    ``largest_component`` scores the label maps after keeping each structure's largest 3D component (as
    ``coopseg segment --largest-component`` writes them). ``estimates``, when given, receives each case's quality
    estimate of its FTN+STN output under (set, case). ``second_look``: see ``Segmenter.segment``."""
    rows: List[ScoreRow] = []
    for case in cases:
        if report is not None:
            report(case)
        result = segmenter.segment(case.image.array, case.image.affine, stage="stn",
                                   largest_component=largest_component, quality=estimates is not None,
                                   second_look=second_look)
        if estimates is not None:
            estimates[(case.set, case.key)] = result.quality.volume
        for attribute, stage in ((s.attribute, s.title) for s in ALL_STAGES):
            rows += score_rows(case.set, case.key, stage, getattr(result, attribute), case.label, distances,
                               case.subject, case.frame, case.group)
    return rows


def _label_files(folder: Path, recursive: bool) -> Dict[str, Path]:
    """Image files under ``folder`` by name without extension."""
    from CoopSegLib.data.images import IMAGE_SUFFIXES
    from CoopSegLib.data.nifti import strip_nifti_suffix

    if not folder.is_dir():
        raise CoopSegError(f"{folder}: folder not found")
    found: Dict[str, Path] = {}
    for path in sorted(folder.rglob("*") if recursive else folder.iterdir()):
        if path.is_file() and path.name.lower().endswith(IMAGE_SUFFIXES) and not path.name.startswith("."):
            stem = strip_nifti_suffix(path)
            if stem in found:
                raise CoopSegError(f"{path}: name clashes with {found[stem]}; keep one file per case name")
            found[stem] = path
    return found


def match_references(predictions: Path, references: Path) -> Dict[Path, Path]:
    """Pair each label map in ``predictions`` with ``<name>_gt`` or else ``<name>`` anywhere under ``references``.

    ``_gt`` comes first because ACDC keeps each image (``<name>.nii.gz``) beside its reference.
    """
    predicted = {stem: path for stem, path in _label_files(predictions, recursive=False).items()
                 if not stem.endswith(OUTPUT_SUFFIXES)}
    if not predicted:
        raise CoopSegError(f"{predictions}: no label maps (.nii, .nii.gz, .nrrd, .nhdr) found")
    available = _label_files(references, recursive=True)
    pairs = {}
    for stem, path in predicted.items():
        reference = available.get(f"{stem}_gt") or available.get(stem)
        if reference is None:
            raise CoopSegError(f"{path}: no reference {stem}_gt.nii.gz or {stem}.nii.gz under {references}")
        pairs[path] = reference
    return pairs


def read_label_volume(path: Path, codes: Mapping[int, int]) -> Volume:
    """A 3D label map from a file, remapped to canonical codes (unknown values are an error naming the file)."""
    from CoopSegLib.data.images import read_image
    from CoopSegLib.data.labels import remap_labels

    image = read_image(path)
    if image.array.ndim != 3:
        raise CoopSegError(f"{path}: expected a 3D label map, got shape {image.array.shape}")
    return Volume(remap_labels(image.array, codes, str(path)), image.affine)


def evaluate_folders(predictions: PathLike, references: PathLike, reference_codes: Union[str, Mapping[int, int]],
                     set_name: Optional[str] = None, say: Callable[[str], None] = print) -> List[ScoreRow]:
    """Scores of the label maps in ``predictions`` (canonical codes) against their references.

    ``reference_codes``: a code mapping (``CODINGS[...]``), or "auto" to tell canonical from ACDC codes by how the
    references agree with the predictions (``evaluation.coding``; the decision and its evidence go to ``say``).
    """
    from CoopSegLib.data.labels import IDENTITY, remap_labels
    from CoopSegLib.data.nifti import strip_nifti_suffix
    from CoopSegLib.evaluation.coding import reference_codes as codes_for

    predictions, references = Path(predictions), Path(references)
    set_name = set_name or predictions.resolve().name
    loaded = []  # (prediction path, prediction, reference path, reference with its stored codes 0-3)
    for prediction_path, reference_path in match_references(predictions, references).items():
        prediction = read_label_volume(prediction_path, IDENTITY)
        reference = read_label_volume(reference_path, IDENTITY)  # every coding uses 0-3: remapped below
        if prediction.shape != reference.shape or not np.allclose(prediction.affine, reference.affine, atol=1e-2):
            raise CoopSegError(f"{prediction_path}: not on the grid of its reference {reference_path} "
                               f"(shapes {prediction.shape} and {reference.shape}, or different affines)")
        loaded.append((prediction_path, prediction, reference_path, reference))
    if isinstance(reference_codes, str):  # a coding's name, or "auto": decided from the pairs
        reference_codes = codes_for(reference_codes, [(p.array, r.array) for _, p, _, r in loaded],
                                    [strip_nifti_suffix(path) for _, _, path, _ in loaded], say)
    rows: List[ScoreRow] = []
    for prediction_path, prediction, reference_path, reference in loaded:
        reference = Volume(remap_labels(reference.array, reference_codes, str(reference_path)), reference.affine)
        rows += score_rows(set_name, strip_nifti_suffix(prediction_path), "prediction", prediction.array, reference)
    return rows
