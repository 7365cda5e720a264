"""Seconds to prepare one training batch of 20 augmented 192 x 192 slices on one CPU core.

Usage: python bench/data_pipeline.py [--acdc DIR] [--batches 30] [--backend torch|torchio]
                                    [--augmentation paper|strong] [--crop PIXELS]
Prints one line per measurement and, last, a JSON line with at least ``median_s`` (target <= 0.3 s).
Volumes are preprocessed once (the in-memory cache) before timing, as in training; the timed part is what a
DataLoader worker does per batch: pick 20 slices, augment them, collate.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path

import torch
from torch.utils.data import default_collate

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from CoopSegLib.data.augmentation import SliceAugmenter  # noqa: E402
from CoopSegLib.data.intensity_augmentation import IntensityAugmenter  # noqa: E402
from CoopSegLib.data.phantom import phantom_cases  # noqa: E402
from CoopSegLib.data.slices import SliceDataset, VolumeCache, paired_collate  # noqa: E402


def time_batches(dataset: SliceDataset, per_batch: int, collate, batches: int, seed: int = 0) -> list:
    generator = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(batches):
        indices = torch.randint(0, len(dataset), (per_batch,), generator=generator).tolist()
        start = time.perf_counter()
        batch = collate([dataset[i] for i in indices])
        times.append(time.perf_counter() - start)
        assert batch["image"].shape[0] == 20
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--acdc", help="ACDC training folder (default: 10 synthetic phantom subjects)")
    parser.add_argument("--batches", type=int, default=30)
    parser.add_argument("--backend", choices=("torch", "torchio"), default="torch")
    parser.add_argument("--augmentation", choices=("paper", "strong"), default="paper",
                        help="strong adds the generic intensity transforms (data.augmentation: strong)")
    parser.add_argument("--crop", type=int, help="heart-centred training crops of this many pixels (data.crop)")
    args = parser.parse_args()
    torch.set_num_threads(1)
    try:  # TorchIO resamples with SimpleITK, which has its own thread pool
        import SimpleITK

        SimpleITK.ProcessObject.SetGlobalDefaultNumberOfThreads(1)
    except ImportError:
        pass

    start = time.perf_counter()
    if args.acdc:
        from CoopSegLib.data.readers.acdc import list_acdc_subjects, read_acdc

        cases = read_acdc(args.acdc, list_acdc_subjects(args.acdc)[:10])
        source = f"ACDC ({args.acdc}, 10 subjects)"
    else:
        cases = phantom_cases(10, seed=0)
        source = "phantom (10 subjects)"
    cache = VolumeCache()
    augmenter = SliceAugmenter(backend=args.backend,
                               intensity=IntensityAugmenter() if args.augmentation == "strong" else None)
    dataset = SliceDataset(cases, augmenter=augmenter, cache=cache, seed=0, crop=args.crop)
    paired = SliceDataset(cases, augmenter=augmenter, cache=cache, seed=0, paired=True, crop=args.crop)
    prepare_s = time.perf_counter() - start
    print(f"data: {source}; {len(dataset)} slices; load + preprocess + cache: {prepare_s:.2f} s "
          f"({cache.nbytes / 2**20:.0f} MiB cached)")

    time_batches(dataset, 20, default_collate, 2)  # warm-up
    full = time_batches(dataset, 20, default_collate, args.batches)
    half = time_batches(paired, 10, paired_collate, args.batches)
    results = {
        "median_s": statistics.median(full),
        "p90_s": sorted(full)[int(0.9 * (len(full) - 1))],
        "paired_10_plus_10_median_s": statistics.median(half),
        "batches": args.batches,
        "backend": args.backend,
        "augmentation": args.augmentation,
        "crop": args.crop,
        "threads": torch.get_num_threads(),
        "data": source,
        "target_s": 0.3,
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
    }
    print(f"20 augmented slices: median {results['median_s']:.3f} s, p90 {results['p90_s']:.3f} s")
    print(f"10 augmented + the same 10 clean (paper batch): median {results['paired_10_plus_10_median_s']:.3f} s")
    print(json.dumps(results))


if __name__ == "__main__":
    main()
