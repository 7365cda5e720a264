"""Two runs' best validated weights on the same validation volumes, paired (issue 31's pilots, decided at equal CPU
time: is a difference larger than the subject-to-subject noise?).

    python Training/compare_checkpoints.py ../runs/acdc_v6_fresh ../runs/acdc_v6_code24

Each run's ``checkpoints/best.pt`` (the average that validated best, and its step) is scored again with the
training's own validation (``CoopSegLib.training.validation.validate``: 3D Dice on the model grid) on the
validation subjects the runs recorded, which must be the same. Printed: each run's step, FTN and FTN+STN means and
FTN+STN per structure (what its validation.csv holds for that step), then the paired difference second - first of
the per-volume FTN+STN means (over LV, MYO, RV) with a 95% bootstrap interval over subjects
(``CoopSegLib.evaluation.intervals.paired_difference``), and a JSON line. The interval measures how much the
validation subjects disagree about the difference, not how much another training seed would move it.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from CoopSegLib.errors import CoopSegError  # noqa: E402
from CoopSegLib.evaluation.intervals import by_subject, paired_difference  # noqa: E402
from CoopSegLib.inference.slice_predictor import SlicePredictor  # noqa: E402
from CoopSegLib.networks import CoopSegModel  # noqa: E402
from CoopSegLib.runtime import Runtime  # noqa: E402
from CoopSegLib.training.checkpoint import load_checkpoint  # noqa: E402
from CoopSegLib.training.loop import BEST_CHECKPOINT, LAST_CHECKPOINT, load_run_settings  # noqa: E402
from CoopSegLib.training.run_data import load_validation_data  # noqa: E402
from CoopSegLib.training.validation import ValidationResult, validate  # noqa: E402
from CoopSegLib.vocabulary import STRUCTURE_COLUMNS  # noqa: E402

STRUCTURES = tuple(STRUCTURE_COLUMNS.values())  # lv, myo, rv


def run_validation(run: Path, data_root: Optional[str]) -> tuple:
    """(settings, validation volumes, {volume key: subject}) exactly as the run validated: its own settings and
    split (``load_validation_data``: its validation subjects alone are read); ``data_root`` replaces a data.root
    written relative to another folder."""
    overrides = [f"data.root={data_root}"] if data_root else []
    settings = load_run_settings(run, overrides)
    split, validation = load_validation_data(settings)
    recorded = load_checkpoint(run / LAST_CHECKPOINT).get("split")  # runs since the stratified split record it
    if recorded is not None and sorted(recorded["validation"]) != sorted(split.validation):
        raise CoopSegError(f"{run}: its split today differs from the one it recorded; is --data the same data?")
    # A volume's key is its case's, "<subject>_<frame>" (the subject names of a split hold no "_" of their own).
    subject_of = {volume.key: next(s for s in split.validation if volume.key.startswith(f"{s}_"))
                  for volume in validation}
    return settings, validation, subject_of


def score_best(run: Path, settings: Any, volumes: Sequence[Any], device: str) -> tuple:
    """(step of best.pt, ValidationResult) of the run's best weights on ``volumes``."""
    if not (run / BEST_CHECKPOINT).is_file():
        raise CoopSegError(f"{run}: no {BEST_CHECKPOINT} (the run has not validated yet)")
    best = load_checkpoint(run / BEST_CHECKPOINT)
    model = CoopSegModel(settings.method.config().network)
    model.load_state_dict(best["model"])
    runtime = Runtime.create(device, settings.train.precision, None)
    return int(best["step"]), validate(SlicePredictor(model, runtime), volumes)


def volume_means(result: ValidationResult, subject_of: Dict[str, str]) -> Dict[str, list]:
    """Subject -> the FTN+STN mean Dice over the structures of each of its volumes."""
    pairs = []
    for row in result.per_volume:
        values = [row[f"stn_{name}"] for name in STRUCTURES if np.isfinite(row[f"stn_{name}"])]
        pairs.append((subject_of[str(row["volume"])], float(np.mean(values)) if values else 0.0))
    return by_subject(pairs)


def main(argv: Sequence[str] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("first", type=Path, help="run folder (the baseline)")
    parser.add_argument("second", type=Path, help="run folder compared with it")
    parser.add_argument("--data", metavar="DIR", help="the runs' data folder, where their data.root was relative to "
                        "another working folder")
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args(argv)
    try:
        first_settings, volumes, subject_of = run_validation(args.first, args.data)
        second_settings, second_volumes, second_subject_of = run_validation(args.second, args.data)
        if subject_of != second_subject_of:
            raise CoopSegError(f"{args.first} and {args.second} validate on different volumes: no paired comparison")
        scored = [(args.first, *score_best(args.first, first_settings, volumes, args.device)),
                  (args.second, *score_best(args.second, second_settings, volumes, args.device))]
    except CoopSegError as error:
        print(f"compare_checkpoints: error: {error}", file=sys.stderr)
        return 2
    print("| run | step | FTN | FTN+STN | LV | MYO | RV |\n|---|---:|---:|---:|---:|---:|---:|")
    for run, step, result in scored:
        parts = " | ".join(f"{result.dice['stn'][name]:.4f}" for name in STRUCTURES)
        print(f"| {run.name} | {step} | {result.mean('ftn'):.4f} | {result.mean('stn'):.4f} | {parts} |")
    (_, first_step, first), (_, second_step, second) = scored
    difference = paired_difference(volume_means(second, subject_of), volume_means(first, subject_of))
    print(f"\n{args.second.name} - {args.first.name}, FTN+STN per-volume mean Dice, paired over "
          f"{difference.subjects} validation subjects: {difference.mean:+.4f} "
          f"[{difference.low:+.4f}, {difference.high:+.4f}] (95% bootstrap over subjects)")
    print(json.dumps({"first": str(args.first), "first_step": first_step, "first_stn": first.mean("stn"),
                      "second": str(args.second), "second_step": second_step, "second_stn": second.mean("stn"),
                      "difference": difference.mean, "low": difference.low, "high": difference.high,
                      "subjects": difference.subjects}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
