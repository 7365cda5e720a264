"""What the quality estimate costs: seconds per volume of Segmenter.segment with and without ``quality``.

    python bench/quality.py                          # an ACDC volume from ../shared/data, the shipped model
    python bench/quality.py --input scan.nii.gz --model model.coopseg --device cuda

Runs alternate (without, with, without, ...) so that a change in the machine's load hits both alike, and both wall
and process CPU seconds are kept: on a machine shared with other work the CPU seconds are the steadier figure
(with --threads 1 they are the work done). The
estimate's extra work: the STN for stage ftn, the image decoder on the central quarter of each slice, the entropy of
both stages, and the numpy features. A third run in each round adds the flipped look (the FTN on every other slice
mirrored, ``Segmenter.segment(flipped_look=True)``), whatever the bundle's calibration uses. The last line printed is
JSON: the median seconds of each, the overhead in per cent of the segmentation time (target <= 10 %), the flipped
look's in per cent of the segmentation with the estimate (target <= 25 %), and the settings.
"""

from __future__ import annotations

import argparse
import copy
import json
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from volume_options import add_volume_options, apply_volume_options  # noqa: E402  (bench/volume_options.py)
from CoopSegLib.data.images import read_image  # noqa: E402
from CoopSegLib.inference.engine import Segmenter  # noqa: E402

DEFAULT_INPUT = REPO.parent / "shared" / "data" / "ACDC" / "training" / "patient006" / "patient006_frame01.nii.gz"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_volume_options(parser, DEFAULT_INPUT, "bundle (default: the shipped model)")
    parser.add_argument("--repeats", type=int, default=10, help="timed rounds, after one untimed warm-up round")
    args = parser.parse_args()
    apply_volume_options(parser, args)
    segmenter = Segmenter(args.model, device=args.device)
    # The estimate without the flipped look, timed on the same networks without a calibration: a calibration that
    # uses the look (the shipped one) refuses to estimate without it, and applying the logistic models costs nothing.
    plain = copy.copy(segmenter)
    plain.calibration = None
    image = read_image(args.input)
    modes = {"segment": (segmenter, dict(quality=False)), "quality": (plain, dict(quality=True, flipped_look=False)),
             "flipped": (segmenter, dict(quality=True, flipped_look=True))}
    times = {mode: [] for mode in modes}
    cpu = {mode: [] for mode in modes}
    for repeat in range(args.repeats + 1):
        for mode, (model, options) in modes.items():
            if segmenter.device.type == "cuda":
                torch.cuda.synchronize(segmenter.device)
            start, start_cpu = time.perf_counter(), time.process_time()
            result = model.segment(image.array, image.affine, stage=args.stage, **options)
            if segmenter.device.type == "cuda":
                torch.cuda.synchronize(segmenter.device)
            elapsed, elapsed_cpu = time.perf_counter() - start, time.process_time() - start_cpu
            if repeat:
                times[mode].append(elapsed)
                cpu[mode].append(elapsed_cpu)
            print(f"round {repeat}{' (warm-up)' if not repeat else ''}: {mode} {elapsed:.3f} s "
                  f"({elapsed_cpu:.3f} CPU s)", flush=True)
    without, with_quality, flipped = (statistics.median(times[mode]) for mode in modes)
    without_cpu, with_quality_cpu, flipped_cpu = (statistics.median(cpu[mode]) for mode in modes)
    print(json.dumps({
        "segment_s": round(without, 4),
        "segment_with_quality_s": round(with_quality, 4),
        "overhead_percent": round(100 * (with_quality - without) / without, 1),
        "segment_cpu_s": round(without_cpu, 4),
        "segment_with_quality_cpu_s": round(with_quality_cpu, 4),
        "overhead_cpu_percent": round(100 * (with_quality_cpu - without_cpu) / without_cpu, 1),
        "segment_with_flipped_look_s": round(flipped, 4),
        "segment_with_flipped_look_cpu_s": round(flipped_cpu, 4),
        "flipped_look_percent": round(100 * (flipped - with_quality) / with_quality, 1),
        "flipped_look_cpu_percent": round(100 * (flipped_cpu - with_quality_cpu) / with_quality_cpu, 1),
        "quality": round(result.quality.volume, 4),
        "calibrated": result.quality.calibrated,
        "input": args.input.name,
        "shape": list(image.array.shape),
        "stage": args.stage,
        "precision": "bf16" if segmenter.runtime.bf16 else "fp32",
        "repeats": args.repeats,
        **machine_fields(segmenter.device),
    }))


if __name__ == "__main__":
    main()
