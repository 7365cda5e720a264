"""Seconds per volume for `coopseg segment`'s work (read, preprocess, FTN+STN, map back, write) and peak RSS.

    python bench/inference.py                                  # an ACDC volume from ../shared/data, paper widths
    python bench/inference.py --precision fp32 --channels-last off   # plain fp32, for comparison
    python bench/inference.py --input scan.nii.gz --model model.coopseg

Without --model, a bundle with the paper's networks and randomly initialised weights is written to a temporary
folder: the time does not depend on the weights' values. The model is loaded once (as `coopseg segment` does for many
inputs); each timed repeat then reads the file, segments it and writes the label map. The last line printed is
JSON: median_s (seconds per volume after warm-up), first_volume_s (the first, with one-off kernel set-up), the
median of each step, peak_rss_mb and the settings used.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from volume_options import add_volume_options, apply_volume_options  # noqa: E402  (bench/volume_options.py)
from CoopSegLib.bundle import save_bundle  # noqa: E402
from CoopSegLib.networks import CoopSegModel  # noqa: E402
from CoopSegLib.data.geometry import MODEL_SIZE, MODEL_SPACING  # noqa: E402
from CoopSegLib.data.images import read_image  # noqa: E402
from CoopSegLib.inference.engine import Segmenter  # noqa: E402
from CoopSegLib.inference.files import output_paths, write_outputs  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "data" / "ACDC" / "training" / "patient001" / "patient001_frame01.nii.gz"


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def random_bundle(folder: Path) -> Path:
    torch.manual_seed(0)
    model = CoopSegModel()
    return save_bundle(folder / "random.coopseg", model, {"spacing_mm": MODEL_SPACING, "size": MODEL_SIZE})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_volume_options(parser, DEFAULT_INPUT, "bundle (default: paper widths, random weights)")
    parser.add_argument("--repeats", type=int, default=10, help="timed volumes, after --warmup untimed ones")
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    args = parser.parse_args()

    apply_volume_options(parser, args)
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        bundle = args.model or random_bundle(scratch)
        start = time.perf_counter()
        channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
        segmenter = Segmenter(bundle, device=args.device, precision=args.precision, channels_last=channels_last)
        load_s = time.perf_counter() - start
        device = segmenter.device
        steps = {"read": [], "segment": [], "write": [], "total": []}
        shape, first_s = None, None
        for repeat in range(args.warmup + args.repeats):
            synchronise(device)
            t0 = time.perf_counter()
            image = read_image(args.input)
            t1 = time.perf_counter()
            result = segmenter.segment(image.array, image.affine, stage=args.stage)
            synchronise(device)
            t2 = time.perf_counter()
            write_outputs(result, image.nifti, image.affine, output_paths(args.input, scratch))
            t3 = time.perf_counter()
            shape = image.array.shape
            first_s = t3 - t0 if first_s is None else first_s
            timed = repeat >= args.warmup
            if timed:
                for name, value in zip(steps, (t1 - t0, t2 - t1, t3 - t2, t3 - t0)):
                    steps[name].append(value)
            label = f"volume {repeat + 1}" + ("" if timed else " (warm-up)")
            print(f"{label}: {t3 - t0:.3f} s (read {t1 - t0:.3f}, segment {t2 - t1:.3f}, write {t3 - t2:.3f})",
                  flush=True)
        # The segment step split into its parts once more, for the record (not part of the median above).
        prepared = segmenter.prepare(image.array, image.affine)
        t0 = time.perf_counter()
        segmenter.predict(prepared.slices, args.stage)
        synchronise(device)
        network_s = time.perf_counter() - t0

    median = statistics.median(steps["total"])
    result = {
        "median_s": round(median, 4),
        "min_s": round(min(steps["total"]), 4),
        "max_s": round(max(steps["total"]), 4),
        "first_volume_s": round(first_s, 4),  # includes one-off kernel set-up: what a single-file command pays
        "read_s": round(statistics.median(steps["read"]), 4),
        "segment_s": round(statistics.median(steps["segment"]), 4),
        "network_s": round(network_s, 4),
        "write_s": round(statistics.median(steps["write"]), 4),
        "load_model_s": round(load_s, 3),
        "input": args.input.name,
        "shape": list(shape),
        "slices": int(prepared.slices.shape[0]),
        **machine_fields(device),
        "precision": "bf16" if segmenter.runtime.bf16 else "fp32",
        "channels_last": segmenter.runtime.channels_last,
        "stage": args.stage,
        "random_weights": args.model is None,
        "repeats": args.repeats,
        "numpy": np.__version__,
    }
    print(json.dumps(result))


if __name__ == "__main__":
    main()
