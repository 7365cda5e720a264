"""Small synthetic cardiac-like slices with exact labels, for fast CPU tests, and the small network widths the tests
train (not a test module)."""

from __future__ import annotations

import math

import torch

SMALL_WIDTHS = (8, 16, 32, 32)  # three down blocks: inputs must be multiples of 8


def ring_slices(count: int, size: int = 48, seed: int = 0) -> tuple:
    """``count`` images (N x 1 x size x size, [0, 1]) and labels (N x size x size) of a toy short-axis slice:
    a bright LV blood pool (1) inside a dark myocardial ring (2), a bright RV crescent (3) beside it, on a grey
    noisy background, each with a random centre and size."""
    generator = torch.Generator().manual_seed(seed)
    coords = torch.arange(size, dtype=torch.float32)
    yy, xx = torch.meshgrid(coords, coords, indexing="ij")
    images, labels = [], []
    for _ in range(count):
        u = torch.rand(6, generator=generator)
        cy, cx = size * (0.4 + 0.2 * u[0]), size * (0.45 + 0.2 * u[1])
        radius = size * (0.12 + 0.06 * u[2])
        wall = radius * (0.35 + 0.2 * u[3])
        angle = math.pi * (0.8 + 0.4 * u[4])
        distance = torch.hypot(yy - cy, xx - cx)
        label = torch.zeros(size, size, dtype=torch.long)
        rv_centre = (cy + (radius + wall) * 1.1 * math.sin(angle), cx + (radius + wall) * 1.1 * math.cos(angle))
        rv = torch.hypot(yy - rv_centre[0], xx - rv_centre[1]) < radius * 1.2
        label[rv & (distance > radius + wall)] = 3
        label[distance < radius + wall] = 2
        label[distance < radius] = 1
        intensity = torch.tensor([0.35, 0.85, 0.2, 0.8])[label]
        image = intensity * (0.8 + 0.4 * u[5]) + 0.05 * torch.randn(size, size, generator=generator)
        images.append(image.clamp(0, 1)[None])
        labels.append(label)
    return torch.stack(images), torch.stack(labels)
