"""Segmenting image files: read NIfTI or NRRD, segment, write NIfTI outputs on the input's exact grid.

Outputs for ``INPUT`` (name without its extension ``NAME``) in the output folder:

    NAME.nii.gz                 uint8 label map (0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity)
    NAME_probabilities.nii.gz   float32 per-class probabilities, classes on a trailing axis: (X, Y, Z, 4) for a
                                volume, (X, Y, Z, T, 4) for a cine (with ``probabilities=True``)
    NAME_entropy.nii.gz         float32 normalised entropy in [0, 1], the input's shape (with ``entropy=True``)
    NAME_initial.nii.gz         uint8 FTN label map beside the refined one (with ``initial=True``, stage stn;
                                the Slicer module's worker shows both)

and for a 4D cine (``CoopSegLib.evaluation.cine``):

    NAME_curve.csv              one row per frame (from 0): frame, lv_ml, myo_ml, rv_ml, quality (the frame's
                                estimated mean Dice)
    NAME_curve.png              LV and RV cavity volume against frame, ED and ES marked (when matplotlib is
                                installed)
    NAME_indices.csv            ``coopseg indices --output``'s table from ED (the frame of largest LV cavity) and ES
                                (smallest), led by two rows ed_frame and es_frame that name them

A NIfTI input's header (sform and qform) is copied exactly; a NRRD input gets a NIfTI whose sform and qform hold
its RAS affine, or with ``output_format="nrrd"`` NRRD files (``NAME.nrrd``, ...; a cine's frames as components, how
Slicer reads a sequence): the Slicer module's worker answers so, and Slicer's Python needs no nibabel. Every file
is written through a temporary file and a rename, and if any output of an input fails, those already written for it
are removed: an input gives all its outputs or none.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, List, Optional, Tuple, Union

import numpy as np

from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference.engine import Segmentation, Segmenter
from CoopSegLib.inference.monitor import ProgressCallback

PathLike = Union[str, Path]
OUTPUT_SUFFIXES = {"nifti": ".nii.gz", "nrrd": ".nrrd"}  # output_format -> image file extension
PROBABILITIES_SUFFIX = "_probabilities"
ENTROPY_SUFFIX = "_entropy"
INITIAL_SUFFIX = "_initial"
CURVE_SUFFIX = "_curve"
INDICES_SUFFIX = "_indices"


def output_paths(input_path: PathLike, output_dir: PathLike, probabilities: bool = False,
                 entropy: bool = False, initial: bool = False, output_format: str = "nifti") -> List[Path]:
    """The files ``segment_file`` writes for ``input_path``, label map first."""
    from CoopSegLib.data.nifti import strip_nifti_suffix

    if output_format not in OUTPUT_SUFFIXES:
        raise CoopSegError(f"output format must be one of {', '.join(OUTPUT_SUFFIXES)}, not {output_format!r}")
    stem, folder, suffix = strip_nifti_suffix(input_path), Path(output_dir), OUTPUT_SUFFIXES[output_format]
    paths = [folder / f"{stem}{suffix}"]
    if probabilities:
        paths.append(folder / f"{stem}{PROBABILITIES_SUFFIX}{suffix}")
    if entropy:
        paths.append(folder / f"{stem}{ENTROPY_SUFFIX}{suffix}")
    if initial:
        paths.append(folder / f"{stem}{INITIAL_SUFFIX}{suffix}")
    return paths


def cine_paths(input_path: PathLike, output_dir: PathLike) -> List[Path]:
    """The curve CSV, the curve picture (only when matplotlib is installed) and the indices CSV of a cine."""
    import importlib.util

    from CoopSegLib.data.nifti import strip_nifti_suffix

    stem, folder = strip_nifti_suffix(input_path), Path(output_dir)
    picture = [folder / f"{stem}{CURVE_SUFFIX}.png"] if importlib.util.find_spec("matplotlib") else []
    return [folder / f"{stem}{CURVE_SUFFIX}.csv", *picture, folder / f"{stem}{INDICES_SUFFIX}.csv"]


def cine_analysis(result: Segmentation, affine: np.ndarray) -> Any:
    """The ``CineAnalysis`` of a cine's segmentation: volume curve with per-frame quality, ED, ES, indices, and the
    frames below the quality threshold."""
    from CoopSegLib.evaluation.cine import analyse_cine

    estimate = result.quality
    if estimate is None:
        return analyse_cine(result.labels, affine)
    return analyse_cine(result.labels, affine, estimate.frames, threshold=estimate.threshold)


def write_cine_outputs(cine: Any, paths: List[Path], title: str = "") -> List[Path]:
    """Write ``cine_paths``' files for a ``CineAnalysis``; all or nothing."""
    from CoopSegLib.atomic import write_atomically
    from CoopSegLib.evaluation.cine import curve_csv
    from CoopSegLib.evaluation.indices import compare_indices, indices_csv
    from CoopSegLib.pictures import save_volume_curve_picture

    frames = [{"index": "ed_frame", "description": "end-diastolic frame (largest LV cavity)", "unit": "frame",
               "value": cine.ed},
              {"index": "es_frame", "description": "end-systolic frame (smallest LV cavity)", "unit": "frame",
               "value": cine.es}]
    written: List[Path] = []
    try:
        for path in paths:
            if path.suffix == ".png":
                written.append(save_volume_curve_picture(path, cine, title))
                continue
            text = curve_csv(cine.frames) if path.stem.endswith(CURVE_SUFFIX) else \
                indices_csv(compare_indices(cine.indices), frames)
            written.append(write_atomically(path, lambda temporary, text=text: Path(temporary).write_text(
                text, newline="")))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def write_outputs(result: Segmentation, reference: Any, affine: np.ndarray, paths: List[Path],
                  initial: bool = False) -> List[Path]:
    """Write the label map (and probabilities / entropy when present, the FTN labels with ``initial``) to
    ``paths`` (NIfTI, or NRRD for a .nrrd path); all or nothing."""
    from CoopSegLib.data.nifti import write_like, write_nifti
    from CoopSegLib.data.nrrd import write_nrrd

    arrays = [(result.labels, np.uint8)]
    if result.probabilities is not None:
        arrays.append((np.moveaxis(result.probabilities, 0, -1), np.float32))  # classes last, as NIfTI vectors
    if result.entropy is not None:
        arrays.append((result.entropy, np.float32))
    if initial:
        arrays.append((result.initial, np.uint8))
    written: List[Path] = []
    try:
        for (array, dtype), path in zip(arrays, paths):
            if path.suffix == OUTPUT_SUFFIXES["nrrd"]:
                written.append(write_nrrd(array, affine, path, dtype))
            elif reference is not None:
                written.append(write_like(array, reference, path, dtype))
            else:
                written.append(write_nifti(array, affine, path, dtype))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written


def segment_file(segmenter: Segmenter, input_path: PathLike, output_dir: PathLike, stage: str = "stn",
                 probabilities: bool = False, entropy: bool = False, largest_component: bool = False,
                 progress: Optional[ProgressCallback] = None, cancel: Any = None,
                 initial: bool = False, allow_label_like_input: bool = False) -> List[Path]:
    """Segment one image file into ``output_dir``; returns the files written (see the module docstring).

    Problems with the input raise a CoopSegError whose message starts with the file's path (a label map given as
    the image among them, unless ``allow_label_like_input``: see ``Segmenter.segment``). ``initial`` (stage
    stn only) also writes the FTN labels of the same pass.
    """
    return segment_file_result(segmenter, input_path, output_dir, stage, probabilities, entropy, largest_component,
                               progress, cancel, initial, allow_label_like_input=allow_label_like_input)[0]


def segment_file_result(segmenter: Segmenter, input_path: PathLike, output_dir: PathLike, stage: str = "stn",
                        probabilities: bool = False, entropy: bool = False, largest_component: bool = False,
                        progress: Optional[ProgressCallback] = None, cancel: Any = None,
                        initial: bool = False, second_look: bool = False,
                        allow_label_like_input: bool = False,
                        output_format: str = "nifti") -> Tuple[List[Path], Segmentation]:
    """``segment_file``, also returning the segmentation (with its quality estimate); ``second_look`` and
    ``allow_label_like_input``: see ``Segmenter.segment``; ``output_format``: nifti or nrrd image files."""
    from CoopSegLib.data.images import read_image
    from CoopSegLib.data.nifti import strip_nifti_suffix

    if initial and stage != "stn":
        raise CoopSegError("initial labels come beside the refined ones: use stage stn")
    input_path = Path(input_path)
    image = read_image(input_path)
    try:
        result = segmenter.segment(image.array, image.affine, stage=stage, probabilities=probabilities,
                                   entropy=entropy, largest_component=largest_component, progress=progress,
                                   cancel=cancel, second_look=second_look,
                                   allow_label_like_input=allow_label_like_input)
    except CoopSegError as error:
        if str(error).startswith(str(input_path)):
            raise
        raise type(error)(f"{input_path}: {error}") from None
    paths = output_paths(input_path, output_dir, probabilities, entropy, initial, output_format)
    written = write_outputs(result, image.nifti, image.affine, paths, initial)
    if result.labels.ndim == 4:  # a cine: its curve and indices beside the label map, or none of its files
        try:
            written += write_cine_outputs(cine_analysis(result, image.affine), cine_paths(input_path, output_dir),
                                          title=strip_nifti_suffix(input_path))
        except BaseException:
            for path in written:
                path.unlink(missing_ok=True)
            raise
    return written, result
