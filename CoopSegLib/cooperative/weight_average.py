"""The exponential moving average of the weights that validation and the bundle use, with an optional warm-up.

At a decay of 0.999 the average keeps 0.999^n of the first step's weights after n steps: 61% after 500 steps, so a
run from scratch validates an average that is mostly the untrained network for its first thousand steps (model v6's
fresh pilot scored 0.00 FTN+STN at steps 250 and 500 for that reason). With the warm-up the decay at the n-th update
is min(decay, (1 + n) / (10 + n)) (TensorFlow's ExponentialMovingAverage with num_updates): 0.5 at the first update,
0.98 after 500, the full decay after about 9,000 for 0.999. A run continued from trained weights needs no warm-up.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn


def warmed_decay(decay: float, updates: int) -> float:
    """The decay the n-th update of a warmed-up average uses (``updates`` counts the ones before it, from 1).

    >>> [round(warmed_decay(0.999, n), 3) for n in (1, 90, 500, 20000)]
    [0.182, 0.91, 0.982, 0.999]
    """
    return min(decay, (1.0 + updates) / (10.0 + updates))


def _warmed_ema(decay: float):
    @torch.no_grad()
    def update(averaged: list, current: list, updates: torch.Tensor) -> None:
        weight = 1.0 - warmed_decay(decay, int(updates))
        floats = [(a, c) for a, c in zip(averaged, current) if torch.is_floating_point(a)]
        if floats:
            torch._foreach_lerp_([a for a, _ in floats], [c for _, c in floats], weight)
        for a, c in zip(averaged, current):
            if not torch.is_floating_point(a):  # BatchNorm's batch counters: the latest count
                a.copy_(c)
    return update


def weight_average(model: nn.Module, decay: float, warmup: bool = False) -> AveragedModel:
    """An average of ``model``'s weights and buffers; its first update copies them, later ones move at ``decay``."""
    update = _warmed_ema(decay) if warmup else get_ema_multi_avg_fn(decay)
    return AveragedModel(model, multi_avg_fn=update, use_buffers=True)
