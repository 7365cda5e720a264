"""Which settings change a training run's weights on this machine: repeats, thread counts, precisions.

    python bench/determinism.py                            # the embedded default's step at 96 x 96, 3 steps
    python bench/determinism.py --threads 1,2 --precisions bf16,fp32 --steps 3 --batch 8 --size 96

For every (precision, thread count) it trains the embedded default's cooperative model from the same seed on the
same batches (the same slices each time: data order and augmentation are seeded separately and are not what is
measured here) twice, and compares the weights bit for bit: with each other (is a run repeatable?) and with the
first thread count's (does the thread count change the result?). The last line printed is JSON.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from a checkout without installing

from machine import machine_fields  # noqa: E402  (bench/machine.py)
from CoopSegLib.cooperative import CooperativeTrainer  # noqa: E402
from CoopSegLib.runtime import cpu_has_fast_bf16  # noqa: E402
from CoopSegLib.training.settings import TrainingSettings  # noqa: E402


def train(threads: int, precision: str, steps: int, batch: int, size: int, seed: int) -> dict:
    """Weights after ``steps`` steps from ``seed``, with ``threads`` intra-op threads."""
    torch.set_num_threads(threads)
    torch.manual_seed(seed)
    trainer = CooperativeTrainer(TrainingSettings().method.config(), "cpu", precision)
    data = torch.Generator().manual_seed(seed + 1)
    for _ in range(steps):
        images = torch.rand(2 * batch, 1, size, size, generator=data)
        labels = torch.randint(0, 4, (2 * batch, size, size), generator=data)
        trainer.train_step(images, labels)
    return {name: value.detach().clone() for name, value in trainer.model.state_dict().items()}


def largest_difference(a: dict, b: dict) -> float:
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a if a[k].is_floating_point())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", default="1,2", help="comma-separated intra-op thread counts")
    parser.add_argument("--precisions", default="bf16,fp32", help="comma-separated: auto, bf16, fp32")
    parser.add_argument("--steps", type=int, default=3)
    parser.add_argument("--batch", type=int, default=8, help="slices drawn per step (the step sees twice as many)")
    parser.add_argument("--size", type=int, default=96)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    threads = [int(t) for t in args.threads.split(",")]
    results = []
    for precision in args.precisions.split(","):
        first = None
        for count in threads:
            a = train(count, precision, args.steps, args.batch, args.size, args.seed)
            b = train(count, precision, args.steps, args.batch, args.size, args.seed)
            first = a if first is None else first
            row = {"precision": precision, "threads": count, "repeat_identical": largest_difference(a, b) == 0.0,
                   "repeat_max_difference": largest_difference(a, b),
                   f"max_difference_to_{threads[0]}_threads": largest_difference(a, first)}
            print(row, flush=True)
            results.append(row)
    print(json.dumps({"steps": args.steps, "batch": args.batch, "size": args.size, "results": results,
                      "cpu_native_bf16": cpu_has_fast_bf16(), **machine_fields(torch.device("cpu"))}))


if __name__ == "__main__":
    main()
