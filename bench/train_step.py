"""Seconds per cooperative training step (full L_std + L_hard with latent masking, paper widths).

    python bench/train_step.py --batch 20 --size 192 --steps 3 --device cpu
    python bench/train_step.py --batch 20 --size 192 --steps 3 --device cpu --baseline   # the authors' set-up
    python bench/train_step.py --batch 16 --size 160 --steps 4 --warmup 2 --compare channels_last

``--baseline`` runs the same maths the way the authors' code ran it (fp32, contiguous tensors, gc.collect() and
torch.cuda.empty_cache() after every step), for side-by-side figures on the same machine.
``--compare CHANGE`` times today's step (the other options as given) and the same step with one change (channels_last
flipped, or torch.compile of the encoders and decoders) side by side in one run: two trainers with identical
weights take turns on the same batch, so a machine that gets busier slows both alike; the first step's losses of
both are printed to show the change leaves the maths alone.
The last line printed is JSON: median_s (seconds per step), median_cpu_s (CPU seconds of this process per step:
on a machine shared with other work, steadier than wall time), peak_rss_mb and the settings used; with --compare
also the changed step's figures under "changed", and speedup and cpu_speedup (today's seconds over the changed).
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

CHANGES = ("channels_last", "compile")  # what --compare can change


def synchronise(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def make_trainer(args: argparse.Namespace, channels_last, compile: bool) -> CooperativeTrainer:
    torch.manual_seed(args.seed)  # the same initial weights for every trainer of a run
    return CooperativeTrainer(CooperativeConfig.variant(args.variant), args.device,
                              "fp32" if args.baseline else args.precision, channels_last, compile=compile)


def timed_step(trainer: CooperativeTrainer, images: torch.Tensor, labels: torch.Tensor, baseline: bool, seed: int):
    """One training step's wall seconds, CPU seconds of this process and losses; ``seed`` fixes its input noise and
    masking draws."""
    torch.manual_seed(seed)
    synchronise(trainer.device)
    start, start_cpu = time.perf_counter(), time.process_time()
    losses = trainer.train_step(images, labels)
    if baseline:
        gc.collect()
        if trainer.device.type == "cuda":
            torch.cuda.empty_cache()
    synchronise(trainer.device)
    return time.perf_counter() - start, time.process_time() - start_cpu, losses


def settings_fields(trainer: CooperativeTrainer, compile: bool) -> dict:
    return {"precision": "bf16" if trainer.bf16 else "fp32", "channels_last": trainer.channels_last,
            "compile": compile}


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
    parser.add_argument("--compare", choices=CHANGES,
                        help="also time the step with this changed (channels_last flipped, or compiled), side by side")
    parser.add_argument("--variant", default="cooperative", choices=sorted(VARIANTS))
    parser.add_argument("--baseline", action="store_true", help="fp32, contiguous, gc + empty_cache every step")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    channels_last = {"auto": None, "on": True, "off": False}[args.channels_last]
    if args.baseline:
        channels_last = False
    trainers = {"today": make_trainer(args, channels_last, args.compile)}
    compiled = {"today": args.compile}
    if args.compare == "channels_last":
        trainers["changed"] = make_trainer(args, not trainers["today"].channels_last, args.compile)
        compiled["changed"] = args.compile
    elif args.compare == "compile":
        trainers["changed"] = make_trainer(args, channels_last, not args.compile)
        compiled["changed"] = not args.compile
    device = trainers["today"].device
    generator = torch.Generator().manual_seed(args.seed)
    images = torch.rand(args.batch, 1, args.size, args.size, generator=generator)
    labels = torch.randint(0, 4, (args.batch, args.size, args.size), generator=generator)
    if device.type == "cuda":
        images, labels = images.pin_memory(), labels.pin_memory()
        torch.cuda.reset_peak_memory_stats(device)

    times = {name: [] for name in trainers}
    cpu_times = {name: [] for name in trainers}
    for step in range(args.warmup + args.steps):
        timed = step >= args.warmup
        cells = []
        # Take turns, and swap who goes first each step, so neither always runs on a warmer or quieter machine.
        order = list(trainers) if step % 2 == 0 else list(reversed(trainers))
        results = {name: timed_step(trainers[name], images, labels, args.baseline, args.seed + step)
                   for name in order}
        for name in trainers:
            elapsed, cpu, losses = results[name]
            if timed:
                times[name].append(elapsed)
                cpu_times[name].append(cpu)
            cells.append(f"{name} {elapsed:.3f} s (CPU {cpu:.3f} s), loss {losses['total']:.6f}" if len(trainers) > 1
                         else f"{elapsed:.3f} s (CPU {cpu:.3f} s), loss {losses['total']:.4f}")
        print(f"step {step + 1}{'' if timed else ' (warm-up)'}: " + " | ".join(cells), flush=True)

    median = {name: statistics.median(values) for name, values in times.items()}
    median_cpu = {name: statistics.median(values) for name, values in cpu_times.items()}
    today = trainers["today"]
    result = {
        "median_s": round(median["today"], 4),
        "steps_per_s": round(1.0 / median["today"], 3),
        "samples_per_s": round(args.batch / median["today"], 1),
        # CPU seconds of this process: on a machine shared with other work, steadier than wall time
        "median_cpu_s": round(median_cpu["today"], 4),
        **machine_fields(device),
        **settings_fields(today, args.compile),
        "baseline": args.baseline,
        "variant": args.variant,
        "batch": args.batch,
        "size": args.size,
        "steps": args.steps,
    }
    if args.compare:
        changed = trainers["changed"]
        result.update({
            "compare": args.compare,
            "changed": {"median_s": round(median["changed"], 4),
                        "samples_per_s": round(args.batch / median["changed"], 1),
                        "median_cpu_s": round(median_cpu["changed"], 4),
                        **settings_fields(changed, compiled["changed"])},
            "speedup": round(median["today"] / median["changed"], 3),
            "cpu_speedup": round(median_cpu["today"] / median_cpu["changed"], 3),
        })
    if device.type == "cuda":
        result["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated(device) / 2**20, 1)
    print(json.dumps(result))


if __name__ == "__main__":
    main()
