"""``coopseg calibrate``: fit a bundle's quality estimate on its validation subjects and store it in the bundle."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any, List

from CoopSegLib.cli.options import add_device_option, add_model_option
from CoopSegLib.errors import CoopSegError


def register(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "calibrate",
        help="fit the bundle's quality estimate (estimated Dice and ok/review flag) on its validation subjects",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="""\
Segment the bundle's validation subjects (ED and ES frames of an ACDC-layout folder) clean and under image-domain
perturbations (noise, blur, low resolution, gamma, contrast inversion, occlusion, impulse noise; --levels
severities each: never the test sets' TorchIO artefacts), measure the true Dice (MONAI) of every output, fit the
logistic models that turn the segmentation's signals into an estimated Dice, and store them in BUNDLE's
metadata.json under "quality" (the weights and their checksum are untouched). Training subjects and subjects the
bundle does not record are refused: the estimate must be fitted on data the model was not trained on.

  coopseg calibrate --model BUNDLE --data ACDC/training

--cross-validate then scores the estimate by leaving one subject out on the clean frames and the four artefact
test sets (bias, ghosting, motion, spike: --copies corrupted ES frames each), printing AUROC for Dice < 0.7 and
the mean absolute error per set; --samples FILE keeps the measurements (JSON lines). With --second-look it also
scores what `coopseg segment` writes: the answer the second look keeps (blurred passes while the held-out
subject's estimate, fitted on the other subjects, flags it), against that answer's estimate.""",
    )
    add_model_option(parser, required=True, help="model bundle folder to calibrate")
    parser.add_argument("--data", required=True, metavar="DIR", help="ACDC-layout folder holding the subjects")
    parser.add_argument("--subjects", default="validation", metavar="LIST",
                        help="'validation' (default: the bundle's recorded validation subjects) or a comma-separated "
                             "list of subject folders the bundle was not trained on")
    parser.add_argument("--levels", type=int, default=1, metavar="N", help="severities per perturbation (1)")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="perturbation seed (default 0)")
    add_device_option(parser)
    parser.add_argument("--samples", metavar="FILE", help="also write the measured samples here (JSON lines)")
    parser.add_argument("--cross-validate", action="store_true",
                        help="also report leave-one-subject-out AUROC and error on clean and artefact sets")
    parser.add_argument("--copies", type=int, default=3, metavar="N", help="artefact copies per ES frame (3)")
    parser.add_argument("--flipped-look", action=argparse.BooleanOptionalAction, default=True,
                        help="measure and fit the flipped look (the FTN again on every other slice mirrored), as the "
                             "shipped calibration does (default); segmentations with the bundle then take it too, "
                             "about +24%% time a volume (docs/quality.md). --no-flipped-look: without it, as "
                             "calibrations before 2026-12-07")
    parser.add_argument("--second-look", action="store_true",
                        help="with --cross-validate: also score the estimate of the answer the second look keeps, "
                             "as `coopseg segment` writes it")
    parser.set_defaults(func=run)


def calibration_subjects(metadata: dict, text: str, bundle: Path) -> List[str]:
    """The subjects to calibrate on: the recorded validation subjects, or a list none of which trained the model."""
    from CoopSegLib.bundle import recorded_subjects

    if text == "validation":
        subjects = recorded_subjects(metadata, "validation")
        if not subjects:
            raise CoopSegError(f"{bundle}: the model's metadata names no validation subjects; pass --subjects LIST")
        return subjects
    subjects = [s.strip() for s in text.split(",") if s.strip()]
    if not subjects:
        raise CoopSegError("--subjects: no subject given")
    trained = sorted(set(subjects) & set(recorded_subjects(metadata, "train")))
    if trained:
        raise CoopSegError(f"{bundle}: {', '.join(trained)} trained the model; calibrate on subjects it has not seen")
    return subjects


def run(args: argparse.Namespace) -> int:
    from CoopSegLib.bundle import read_metadata
    from CoopSegLib.data.readers import read_acdc_subject
    from CoopSegLib.evaluation.calibration import calibrate_bundle

    bundle, data = Path(args.model), Path(args.data)
    if args.second_look and not args.cross_validate:
        raise CoopSegError("--second-look scores the leave-one-subject-out estimate: add --cross-validate")
    subjects = calibration_subjects(read_metadata(bundle), args.subjects, bundle)
    for subject in subjects:  # fail before any work on a missing subject
        if not (data / subject).is_dir():
            raise CoopSegError(f"{data / subject}: subject folder not found")
    cases = [case for subject in subjects for case in read_acdc_subject(data / subject, ("ED", "ES"))]
    started = time.perf_counter()

    def report(done: int, total: int, item: Any) -> None:
        print(f"calibrate: {done + 1}/{total} {item.key} ({time.perf_counter() - started:.0f} s)", file=sys.stderr,
              flush=True)

    samples_file = Path(args.samples) if args.samples else None
    calibration, samples = calibrate_bundle(bundle, cases, args.levels, args.seed, args.device, report,
                                            samples_file, args.flipped_look)
    fitted = calibration["fitted_on"]
    print(f"calibrated {bundle}: {fitted['volumes']} volumes of {len(subjects)} subjects in "
          f"{time.perf_counter() - started:.0f} s; in-sample mean absolute error "
          + ", ".join(f"{stage} {mae:.3f}" for stage, mae in calibration["in_sample_mae"].items()))
    if args.cross_validate:
        print(cross_validated_report(bundle, data, cases, samples, args, report))
    return 0


def cross_validated_report(bundle: Path, data: Path, cases: list, fit_samples: list,
                           args: argparse.Namespace, report: Any) -> str:
    """Leave-one-subject-out scores on the clean frames (from the fitting run) and the four artefact sets."""
    from CoopSegLib.evaluation.calibration import (CalibrationItem, artefact_items, collect_samples, cross_validate,
                                                   cross_validate_structures, sample_to_json)
    from CoopSegLib.evaluation.quality_scores import markdown_quality, scores_by_set
    from CoopSegLib.evaluation.report import write_text_atomically
    from CoopSegLib.evaluation.test_sets import DEFAULT_SETS
    from CoopSegLib.inference.engine import Segmenter
    from CoopSegLib.inference.quality import STRUCTURE_COLUMNS

    artefacts = [name for name in DEFAULT_SETS if name != "clean"]
    subjects = sorted({case.subject for case in cases})
    items = list(artefact_items(data, subjects, artefacts, args.copies, args.seed))
    segmenter = Segmenter(bundle, device=args.device)
    scored = [s for s in fit_samples if s.set == "clean"]
    done = iter(range(len(items)))
    scored += collect_samples(segmenter, items, lambda item: report(next(done), len(items), item),
                              args.flipped_look)
    if args.samples:
        extra = Path(args.samples).with_suffix(".artefacts.jsonl")
        write_text_atomically(extra, "".join(sample_to_json(s) + "\n" for s in scored if s.set != "clean"))
    lines = []
    for stage in ("stn", "ftn"):
        rows = cross_validate(fit_samples, scored, stage)
        lines.append(f"leave-one-subject-out, stage {stage} (fitted on clean + perturbations of the other "
                     f"subjects, scored on the held-out subject's clean and artefact volumes):\n")
        lines.append(markdown_quality(scores_by_set(rows, ["clean", *artefacts])))
    structure_rows = cross_validate_structures(fit_samples, scored, "stn")
    for column in (c for c in STRUCTURE_COLUMNS if any(r["structure"] == c for r in structure_rows)):
        lines.append(f"leave-one-subject-out, stage stn, the {column.upper()} estimate against that structure's "
                     "own Dice:\n")
        lines.append(markdown_quality(scores_by_set([r for r in structure_rows if r["structure"] == column],
                                                    ["clean", *artefacts])))
    if args.second_look:
        clean = [CalibrationItem("clean", case.subject, case.key, case.image, case.label) for case in cases]
        lines.append(second_look_report(segmenter, fit_samples, clean + items, scored, args.flipped_look,
                                        ["clean", *artefacts]))
    return "\n".join(lines)


def second_look_report(segmenter: Any, fit_samples: list, items: list, scored: list, flipped_look: bool,
                       sets: List[str]) -> str:
    """``cross_validate_second_look``'s scores, with how many volumes took blurred passes and their time."""
    from CoopSegLib.evaluation.calibration import collect_samples
    from CoopSegLib.evaluation.quality_scores import markdown_quality, scores_by_set
    from CoopSegLib.evaluation.second_look_scoring import cross_validate_second_look
    from CoopSegLib.inference.quality import STRUCTURE_COLUMNS

    seconds: List[float] = []

    def measure(item: Any, sigma: float) -> Any:
        print(f"calibrate: second look at {item.key} (blur {sigma:g} px)", file=sys.stderr, flush=True)
        started = time.perf_counter()
        sample = collect_samples(segmenter, [item], flipped_look=flipped_look, blur=sigma)[0]
        seconds.append(time.perf_counter() - started)
        return sample

    rows = cross_validate_second_look(fit_samples, items, scored, measure, "stn")
    looked = sum(1 for row in rows if row["looks"])
    kept = sum(1 for row in rows if row["blur"])
    timing = f", {sum(seconds) / len(seconds):.1f} s each with the true Dice" if seconds else ""
    lines = [f"leave-one-subject-out, stage stn, with the second look (as `coopseg segment` writes: {looked} of "
             f"{len(rows)} volumes flagged by their fold's calibration took {len(seconds)} blurred passes{timing}; "
             f"a blurred answer was kept for {kept}):\n", markdown_quality(scores_by_set(rows, sets))]
    for column in STRUCTURE_COLUMNS:
        structure_rows = [{"set": row["set"], "dice": row["structures"][column][0],
                           "estimate": row["structures"][column][1]} for row in rows if column in row["structures"]]
        if structure_rows:
            lines.append(f"with the second look, the {column.upper()} estimate against that structure's own Dice:\n")
            lines.append(markdown_quality(scores_by_set(structure_rows, sets)))
    return "\n".join(lines)
