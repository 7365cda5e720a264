"""The learning rate as a pure function of the step and the run's planned length.

Because the rate depends only on (step, total steps), a run resumed from a checkpoint follows exactly the curve an
uninterrupted run follows, and ``--resume RUN --set train.steps=N`` re-plans the rest of the curve for N steps.

Schedules (``train.schedule``):
  constant  the paper's: ``method.learning_rate`` throughout (after the warm-up, if any)
  cosine    linear warm-up over ``train.warmup_steps``, then half a cosine from the base rate down to
            ``train.final_lr_fraction`` of it at the last step

>>> [round(learning_rate_at(step, 100, 1e-3, "cosine", warmup_steps=10), 6) for step in (1, 10, 55, 100)]
[0.0001, 0.001, 0.000505, 1e-05]
"""

from __future__ import annotations

import math

SCHEDULES = ("constant", "cosine")


def learning_rate_at(step: int, total_steps: int, base_rate: float, schedule: str = "constant",
                     warmup_steps: int = 0, final_fraction: float = 0.01) -> float:
    """The rate for optimiser step ``step`` (1-based) of a run planned for ``total_steps`` steps."""
    if schedule not in SCHEDULES:
        raise ValueError(f"schedule must be one of {', '.join(SCHEDULES)}, not {schedule!r}")
    if step < 1 or total_steps < 1:
        raise ValueError(f"step and total_steps must be positive, got {step} and {total_steps}")
    if warmup_steps > 0 and step <= warmup_steps:
        return base_rate * step / warmup_steps
    if schedule == "constant":
        return base_rate
    decay_steps = max(total_steps - warmup_steps, 1)
    progress = min(max(step - warmup_steps, 0) / decay_steps, 1.0)
    return base_rate * (final_fraction + (1.0 - final_fraction) * 0.5 * (1.0 + math.cos(math.pi * progress)))
