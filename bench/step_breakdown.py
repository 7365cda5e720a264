"""Where a cooperative training step's time goes: the parts of one step of the paper's networks, timed one by one.

    python bench/step_breakdown.py --batch 16 --size 160 --repeats 3 --precision fp32

A step (CooperativeObjective, L_std + L_hard) runs the FTN forward and backward twice (the batch, then its hard
examples), the STN forward and backward four times (on the FTN's answer, on the ground truth, on the answer for the
hard examples, on the corrupted segmentation p_hat), generates the hard examples once (two latent gradients through
the decoders, two masked decodes) and takes one Adam step; and the four STN passes as one batch of four times the size
(which would change BatchNorm's batch statistics), for comparison. Each part is timed alone on the same batch, in CPU
seconds of this process (steadier than wall time on a shared machine) and wall seconds; the parts' sum is printed
beside a whole step. The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Callable

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from CoopSegLib.cooperative import VARIANTS, CooperativeConfig, CooperativeTrainer  # noqa: E402
from CoopSegLib.cooperative.hard_examples import generate_hard_examples  # noqa: E402

# How often each part runs in one step of the cooperative variant.
PARTS_PER_STEP = {"ftn_forward_backward": 2, "stn_forward_backward": 4, "hard_example_generation": 1,
                  "optimiser_step": 1}


def seconds(run: Callable[[], object], repeats: int) -> tuple:
    """Median (CPU s, wall s) of ``run`` over ``repeats`` calls after one untimed call."""
    run()
    cpu, wall = [], []
    for _ in range(repeats):
        start, start_cpu = time.perf_counter(), time.process_time()
        run()
        wall.append(time.perf_counter() - start)
        cpu.append(time.process_time() - start_cpu)
    return statistics.median(cpu), statistics.median(wall)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=16, help="slices per FTN pass (the shipped recipe: 8 + 8)")
    parser.add_argument("--size", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--precision", default="auto", choices=["auto", "bf16", "fp32"])
    parser.add_argument("--variant", default="cooperative", choices=sorted(VARIANTS))
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    torch.manual_seed(args.seed)
    trainer = CooperativeTrainer(CooperativeConfig.variant(args.variant), "cpu", args.precision)
    model, objective = trainer.model.train(), trainer.objective.train()
    images = trainer.runtime.to_device(torch.rand(args.batch, 1, args.size, args.size))
    labels = torch.randint(0, 4, (args.batch, args.size, args.size))
    probabilities = trainer.runtime.to_device(torch.softmax(torch.randn(args.batch, 4, args.size, args.size), 1))

    def ftn_part():
        with trainer.autocast():
            out = model.ftn(images)
            loss = out.logits.float().mean() + out.reconstruction.float().mean()
        loss.backward()

    def stn_part(batch: torch.Tensor):
        with trainer.autocast():
            loss = model.stn(batch).float().mean()
        loss.backward()

    # The four STN passes as one batch, for comparison (it would change BatchNorm's batch statistics).
    four = torch.cat([probabilities] * 4)
    # The codes the hard examples are made from, computed once: only the generation itself is timed.
    with trainer.autocast(), torch.no_grad():
        easy = model.ftn(images)

    def hard_part():
        with trainer.autocast():
            generate_hard_examples(model.ftn, objective.masker, easy.z_i, easy.z_s, images, labels)

    parts = {"ftn_forward_backward": seconds(ftn_part, args.repeats),
             "stn_forward_backward": seconds(lambda: stn_part(probabilities), args.repeats),
             "hard_example_generation": seconds(hard_part, args.repeats),
             "optimiser_step": seconds(trainer.optimizer.step, args.repeats)}
    four_at_once = seconds(lambda: stn_part(four), args.repeats)
    trainer.optimizer.zero_grad(set_to_none=True)
    step = seconds(lambda: trainer.train_step(images, labels), args.repeats)
    counts = PARTS_PER_STEP if args.variant == "cooperative" else None
    result = {"step_cpu_s": round(step[0], 3), "step_wall_s": round(step[1], 3), "parts": {}}
    for name, (cpu, wall) in parts.items():
        times = counts[name] if counts else 1
        result["parts"][name] = {"cpu_s": round(cpu, 3), "wall_s": round(wall, 3), "per_step": times,
                                 "share_of_step_cpu": round(times * cpu / step[0], 3) if counts else None}
        print(f"{name:26s} {cpu:7.3f} CPU s ({wall:.3f} s wall) x {times} per step"
              + (f" = {100 * times * cpu / step[0]:5.1f} % of a step" if counts else ""))
    print(f"{'whole step':26s} {step[0]:7.3f} CPU s ({step[1]:.3f} s wall)")
    print(f"{'STN, 4 batches as one':26s} {four_at_once[0]:7.3f} CPU s ({four_at_once[1]:.3f} s wall), against "
          f"{4 * parts['stn_forward_backward'][0]:.3f} CPU s for four passes")
    result["stn_four_batches_as_one_cpu_s"] = round(four_at_once[0], 3)
    result.update(batch=args.batch, size=args.size, variant=args.variant,
                  precision="bf16" if trainer.bf16 else "fp32", channels_last=trainer.channels_last,
                  **machine_fields(trainer.device))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
