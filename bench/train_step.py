"""Seconds per cooperative training step (full L_std + L_hard with latent masking, paper widths).

    python bench/train_step.py --batch 20 --size 192 --steps 3 --device cpu
    python bench/train_step.py --batch 20 --size 192 --steps 3 --device cpu --baseline   # the authors' set-up

``--baseline`` runs the same maths the way the authors' code ran it (fp32, contiguous tensors, gc.collect() and
torch.cuda.empty_cache() after every step), for side-by-side figures on the same machine.
The last line printed is JSON: median_s (seconds per step), peak_rss_mb, and the settings used.
"""

from __future__ import annotations

import argparse
import gc
import json
import statistics
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from CoopSegLib.cooperative import VARIANTS, CooperativeConfig, CooperativeTrainer  # noqa: E402


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--steps", type=int, default=3, help="timed steps, after --warmup untimed ones")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--channels-last", default="auto", choices=["auto", "on", "off"])
    parser.add_argument("--compile", action="store_true", help="torch.compile the encoders and decoders")
    parser.add_argument("--variant", default="cooperative", choices=sorted(VARIANTS))
    parser.add_argument("--baseline", action="store_true", help="fp32, contiguous, gc + empty_cache every step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    precision = "fp32" if args.baseline else args.precision
    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    if args.baseline:
        channels_last = False
    trainer = CooperativeTrainer(CooperativeConfig.variant(args.variant), args.device, precision, channels_last,
                                 compile=args.compile)
    device = trainer.device
    images = torch.rand(args.batch, 1, args.size, args.size)
    labels = torch.randint(0, 4, (args.batch, args.size, args.size))
    if device.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
        torch.cuda.reset_peak_memory_stats(device)

    times = []
    for step in range(args.warmup + args.steps):
        synchronise(device)
        start = time.perf_counter()
        losses = trainer.train_step(images, labels)
        if args.baseline:
            gc.collect()
            if device.type == "cuda":
                torch.cuda.empty_cache()
        synchronise(device)
        elapsed = time.perf_counter() - start
        timed = step >= args.warmup
        if timed:
            times.append(elapsed)
        label = f"step {step + 1}" + ("" if timed else " (warm-up)")
        print(f"{label}: {elapsed:.3f} s, loss {losses['total']:.4f}", flush=True)

    median = statistics.median(times)
    result = {
        "median_s": round(median, 4),
        "steps_per_s": round(1.0 / median, 3),
        "samples_per_s": round(args.batch / median, 1),
        **machine_fields(device),
        "precision": "bf16" if trainer.bf16 else "fp32",
        "channels_last": trainer.channels_last,
        "compile": args.compile,
        "baseline": args.baseline,
        "variant": args.variant,
        "batch": args.batch,
        "size": args.size,
        "steps": args.steps,
    }
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
