"""Image filters that inference and training both apply: the second look's in-plane blur is this filter, and so is
the strong augmentation's blur (``intensity_augmentation``), so inference never imports augmentation."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F


def gaussian_blur(image: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable in-plane Gaussian blur of a (C, H, W) image, reflecting at the borders."""
    radius = max(1, math.ceil(3 * sigma))
    x = torch.arange(-radius, radius + 1, dtype=image.dtype)
    kernel = torch.exp(-0.5 * (x / sigma) ** 2)
    kernel = kernel / kernel.sum()
    out = F.pad(image[None], (radius, radius, radius, radius), mode="reflect")
    out = F.conv2d(out, kernel.view(1, 1, 1, -1).expand(image.shape[0], 1, 1, -1), groups=image.shape[0])
    out = F.conv2d(out, kernel.view(1, 1, -1, 1).expand(image.shape[0], 1, -1, 1), groups=image.shape[0])
    return out[0]
