"""Heart-centred training crops: a window of the slice that holds every labelled pixel, at a random offset.

Training on crops spends each step on the heart rather than on background; the network is fully convolutional, so
validation and inference still run on the whole field of view. A slice whose labelled pixels do not fit in the
window gets a window centred on them; an unlabelled slice gets a window anywhere.
"""

from __future__ import annotations

from typing import Tuple

import torch


def _start(low: int, high: int, length: int, size: int, draw: float) -> int:
    """First index of a window of ``size`` in [0, length) covering [low, high] (or centred on it), from ``draw``."""
    first, last = max(0, high - size + 1), min(low, length - size)
    if first > last:  # the labelled extent is larger than the window
        centre = (low + high + 1) // 2
        return min(max(centre - size // 2, 0), length - size)
    return first + min(int(draw * (last - first + 1)), last - first)


def heart_crop_window(label: torch.Tensor, size: int, generator: torch.Generator) -> Tuple[int, int]:
    """(top, left) of a ``size`` x ``size`` window of the (H, W) ``label`` holding its foreground.

    Two numbers are drawn from ``generator`` whatever the label, so later draws do not depend on it.

    >>> label = torch.zeros(64, 64, dtype=torch.long); label[20:30, 40:50] = 1
    >>> top, left = heart_crop_window(label, 32, torch.Generator().manual_seed(0))
    >>> bool(label[top:top + 32, left:left + 32].sum() == label.sum())
    True
    """
    height, width = label.shape[-2:]
    if size > height or size > width:
        raise ValueError(f"crop of {size} pixels is larger than the {height} x {width} slice")
    draws = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
    rows = torch.nonzero(label.reshape(height, width).any(dim=1)).flatten()
    columns = torch.nonzero(label.reshape(height, width).any(dim=0)).flatten()
    if len(rows) == 0:  # anywhere: every start from 0 to length - size alike
        return (min(int(draws[0] * (height - size + 1)), height - size),
                min(int(draws[1] * (width - size + 1)), width - size))
    return (_start(int(rows[0]), int(rows[-1]), height, size, draws[0]),
            _start(int(columns[0]), int(columns[-1]), width, size, draws[1]))


def heart_crop(image: torch.Tensor, label: torch.Tensor, size: int,
               generator: torch.Generator) -> Tuple[torch.Tensor, torch.Tensor]:
    """Crop (..., H, W) ``image`` and ``label`` to the same heart-holding ``size`` x ``size`` window."""
    top, left = heart_crop_window(label, size, generator)
    window = (..., slice(top, top + size), slice(left, left + size))
    return image[window], label[window]
