"""float32 vs float16 storage of a model bundle: file size, and what halving it does to the segmentations.

    python bench/bundle_storage.py --model CoopSegLib/weights/default.coopseg --data ../shared/data/ACDC/training

Saves a float16 copy of the bundle in a temporary folder, segments the clean ED and ES frames of the model's
validation subjects (--subjects to name others) with both, and prints, per stage: the mean Dice of each against the
reference, and the fraction of voxels where the two label maps differ. Inference runs in float32 either way; only
the stored weights are rounded. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from CoopSegLib.bundle import WEIGHTS_FILE, load_bundle, recorded_subjects, save_bundle  # noqa: E402
from CoopSegLib.data.readers import read_acdc_subject  # noqa: E402
from CoopSegLib.evaluation.metrics import overlap_scores  # noqa: E402
from CoopSegLib.inference import Segmenter  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", required=True, type=Path, help="a float32 model bundle")
    parser.add_argument("--data", required=True, type=Path, help="ACDC training/ folder")
    parser.add_argument("--subjects", help="comma-separated subject folders (default: the model's validation ones)")
    args = parser.parse_args()

    original = load_bundle(args.model, "cpu")
    subjects = args.subjects.split(",") if args.subjects else recorded_subjects(original.metadata, "validation")
    with tempfile.TemporaryDirectory() as folder:
        half = save_bundle(Path(folder) / "half.coopseg", original.model, original.metadata["preprocessing"],
                           original.metadata["training"], storage="float16")
        sizes = {name: (path / WEIGHTS_FILE).stat().st_size / 2**20 for name, path in
                 (("float32", args.model), ("float16", half))}
        segmenters = {"float32": Segmenter(args.model, device="cpu"), "float16": Segmenter(half, device="cpu")}
        dice = {(storage, stage): [] for storage in segmenters for stage in ("FTN", "FTN+STN")}
        differing = {"FTN": [], "FTN+STN": []}
        for subject in subjects:
            for case in read_acdc_subject(args.data / subject, ("ED", "ES")):
                results = {name: s.segment(case.image.array, case.image.affine) for name, s in segmenters.items()}
                for stage, attribute in (("FTN", "initial"), ("FTN+STN", "refined")):
                    maps = {name: getattr(result, attribute) for name, result in results.items()}
                    differing[stage].append(float(np.mean(maps["float32"] != maps["float16"])))
                    for name, labels in maps.items():
                        scores = overlap_scores(labels, case.label.array, case.image.spacing, distances=False)
                        dice[(name, stage)].append(float(np.nanmean([s.dice for s in scores.values()])))
    summary = {"volumes": len(differing["FTN"]), "weights_mb": {k: round(v, 2) for k, v in sizes.items()}}
    for (storage, stage), values in dice.items():
        summary[f"dice_{storage}_{stage}"] = round(float(np.mean(values)), 5)
        print(f"{storage:8s} {stage:8s} mean Dice {np.mean(values):.5f}")
    for stage, values in differing.items():
        summary[f"voxels_differing_{stage}"] = float(np.mean(values))
        print(f"{stage:8s} voxels where float16 and float32 labels differ: {100 * np.mean(values):.4f}%")
    print(json.dumps({**summary, **machine_fields(torch.device("cpu"))}))


if __name__ == "__main__":
    main()
