"""``coopseg segment``: label maps for NIfTI / NRRD images, on each input's exact grid and affine."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, Dict, List

from CoopSegLib.cli.options import (add_device_option, add_label_like_option, add_model_option,
                                    add_second_look_option)
from CoopSegLib.errors import CoopSegError

EXIT_SOME_FAILED = 1  # some inputs could not be segmented; the others were written


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "segment",
        help="segment short-axis cardiac MR volumes (LV cavity 1, LV myocardium 2, RV cavity 3)",
        description="Segment 2D slices, 3D volumes or 4D cines (NIfTI .nii/.nii.gz or NRRD .nrrd/.nhdr) into "
        "DIR/<name>.nii.gz: a uint8 label map (0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity) on the "
        "input's exact grid and affine (a NIfTI input's header is copied). --probabilities adds "
        "<name>_probabilities.nii.gz (float32, the 4 classes on a trailing axis), --entropy adds "
        "<name>_entropy.nii.gz (float32, normalised entropy in [0, 1]). A 4D cine also gets <name>_curve.csv (one "
        "row per frame from 0: frame, lv_ml, myo_ml, rv_ml, quality), <name>_curve.png (LV and RV volume against "
        "frame, ED and ES marked; needs matplotlib) and <name>_indices.csv (coopseg indices' table from ED, the "
        "frame of largest LV cavity, and ES, the smallest, which its rows ed_frame and es_frame name). Written "
        "files are listed on stdout. "
        "An input that cannot be segmented gets one line on stderr and no output; the others are still "
        "processed. DIR/quality.csv gets one row per label map written: name, quality (estimated mean Dice of the "
        "stage written, 0-1), flag (ok / review below the bundle's threshold, 0.7 by default), then the suspect "
        "slices and the signals; each flagged output also gets one warning line on stderr. A bundle without a "
        "quality calibration (coopseg calibrate) gets the FTN-STN agreement as its uncalibrated estimate. "
        "An input that looks like a label map (at most 8 distinct values, all whole numbers, none negative: an "
        "ACDC _gt file, say) is refused unless --allow-label-like-input; segmented anyway, it is always flagged "
        "review. Exit status: 0 all written, 1 some inputs failed, 2 usage or model error.",
    )
    parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image file(s): .nii, .nii.gz, .nrrd, .nhdr")
    parser.add_argument("--output-dir", required=True, metavar="DIR", help="folder for the label maps")
    add_model_option(parser)
    parser.add_argument("--stage", choices=("ftn", "stn"), default="stn",
                        help="stn: FTN refined by the shape network (default); ftn: the fast network alone")
    add_second_look_option(parser)
    add_device_option(parser)
    parser.add_argument("--probabilities", action="store_true", help="also write per-class probabilities")
    parser.add_argument("--entropy", action="store_true", help="also write the per-voxel entropy")
    parser.add_argument("--largest-component", action="store_true",
                        help="keep each structure's largest connected 3D component (the rest becomes background)")
    add_label_like_option(parser)
    parser.add_argument("--max-slices", type=int, default=None, metavar="N",
                        help="slices per forward pass, at least 1 (bounds memory; default 32)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from CoopSegLib.data.nifti import strip_nifti_suffix
    from CoopSegLib.inference.engine import DEFAULT_MAX_SLICES, Segmenter
    from CoopSegLib.inference.files import segment_file_result
    from CoopSegLib.quality_file import QUALITY_FILE, QualityRecord, write_quality_file

    output_dir = Path(args.output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise CoopSegError(f"{output_dir}: exists and is not a folder")
    max_slices = DEFAULT_MAX_SLICES if args.max_slices is None else args.max_slices  # 0 is refused, not "default"
    segmenter = Segmenter(args.model, device=args.device, max_slices=max_slices)
    created = [folder for folder in (output_dir, *output_dir.parents) if not folder.exists()]
    output_dir.mkdir(parents=True, exist_ok=True)
    quality_rows: Dict[str, QualityRecord] = {}
    claimed: Dict[str, str] = {}  # output name -> the input that writes it
    failures = 0
    for path in args.inputs:
        name = strip_nifti_suffix(path)
        if name in claimed:
            print(f"coopseg segment: error: {path}: its output {name}.nii.gz would overwrite that of "
                  f"{claimed[name]}; rename one of them", file=sys.stderr)
            failures += 1
            continue
        claimed[name] = path
        try:
            written, result = segment_file_result(
                segmenter, path, output_dir, stage=args.stage, probabilities=args.probabilities,
                entropy=args.entropy, largest_component=args.largest_component,
                second_look=args.second_look, allow_label_like_input=args.allow_label_like_input)
        except CoopSegError as error:
            message = " ".join(str(error).split())  # one line, whatever the underlying library wrote
            message = message if message.startswith(str(path)) else f"{path}: {message}"
            print(f"coopseg segment: error: {message}", file=sys.stderr)
            failures += 1
            continue
        estimate = result.quality
        if segmenter.calibration is None and not quality_rows:  # said once, and only when a row is written
            print(f"coopseg segment: note: {segmenter.bundle.path} has no quality calibration; quality.csv holds the "
                  "FTN-STN agreement, uncalibrated (fit one with coopseg calibrate)", file=sys.stderr)
        record = quality_rows[name] = QualityRecord.from_estimate(name, estimate, args.stage, result.blurred)
        write_quality_file(output_dir, quality_rows)  # after each input: the table always matches the files
        if estimate.label_like_input:
            print(f"coopseg segment: warning: {name}: the input looks like a label map, not an MR image; this "
                  "segmentation is flagged review whatever its estimate", file=sys.stderr)
        elif record.needs_review:
            suspects = ", ".join(record.suspect_names()) or "none below it on their own"
            print(f"coopseg segment: warning: {name}: {estimate.review_reason()}; review this segmentation "
                  f"(suspect slices: {suspects})", file=sys.stderr)
        for output in written:
            print(output, flush=True)
    if quality_rows:
        print(output_dir / QUALITY_FILE, flush=True)  # the estimates of everything above, one row each
    if failures == len(args.inputs):
        remove_empty_folders(created)  # nothing was written: leave no empty output folder behind
    return EXIT_SOME_FAILED if failures else 0


def remove_empty_folders(folders: List[Path]) -> None:
    """Remove the folders this run created (deepest first) as long as they are still empty."""
    for folder in folders:
        try:
            folder.rmdir()
        except OSError:  # not empty (or no longer ours to remove): keep it and everything above it
            return
