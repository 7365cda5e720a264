"""Generic intensity augmentation beyond the paper's, of the kinds nnU-Net applies by default.

Applied to the augmented slice of each pair (``data.augmentation: strong``), after the paper's spatial and
contrast/brightness steps and before the final per-slice min-max:

  Gaussian noise          p 0.15, standard deviation U(0, 0.05) of the [0, 1] range
  Gaussian blur           p 0.2, sigma U(0.5, 1.5) pixels, in-plane
  multiplicative contrast p 0.15, x U(0.65, 1.5) about the slice mean
  simulated low resolution p 0.25, down to U(0.5, 1) of the size (nearest), back up (bicubic)
  gamma                   p 0.3, gamma U(0.7, 1.5); with p 0.1 on the inverted image

None of these simulates a k-space artefact: TorchIO's RandomBiasField, RandomGhosting, RandomMotion and RandomSpike
build the artefact test sets, which measure robustness to artefacts the model has never seen (DESIGN.md), so they
and anything like them stay out of training.

Every draw is taken whether or not its transform fires, so a slice's parameters depend only on its generator.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import torch
import torch.nn.functional as F

from CoopSegLib.data.filters import gaussian_blur


@dataclass(frozen=True)
class IntensityPolicy:
    noise_probability: float = 0.15
    noise_std: Tuple[float, float] = (0.0, 0.05)
    blur_probability: float = 0.2
    blur_sigma: Tuple[float, float] = (0.5, 1.5)  # pixels
    contrast_probability: float = 0.15
    contrast: Tuple[float, float] = (0.65, 1.5)
    low_resolution_probability: float = 0.25
    low_resolution_zoom: Tuple[float, float] = (0.5, 1.0)
    gamma_probability: float = 0.3
    gamma: Tuple[float, float] = (0.7, 1.5)
    gamma_invert_probability: float = 0.1


def _draw(generator: torch.Generator, low: float, high: float) -> float:
    return low + (high - low) * float(torch.rand(1, generator=generator, dtype=torch.float64))


def simulate_low_resolution(image: torch.Tensor, zoom: float) -> torch.Tensor:
    """Down-sample a (C, H, W) image to ``zoom`` of its size (nearest) and back up (bicubic)."""
    height, width = image.shape[-2:]
    small = (max(1, round(height * zoom)), max(1, round(width * zoom)))
    low = F.interpolate(image[None], size=small, mode="nearest")
    return F.interpolate(low, size=(height, width), mode="bicubic", align_corners=False)[0]


class IntensityAugmenter:
    """The generic intensity transforms on one (C, H, W) image in [0, 1]; the result is clipped to [0, 1].

    >>> augmenter = IntensityAugmenter()
    >>> image = torch.rand(1, 32, 32)
    >>> same = torch.equal(augmenter(image, torch.Generator().manual_seed(3)),
    ...                    augmenter(image, torch.Generator().manual_seed(3)))
    >>> same
    True
    """

    def __init__(self, policy: IntensityPolicy = IntensityPolicy()) -> None:
        self.policy = policy

    def __call__(self, image: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        p = self.policy
        fires = torch.rand(6, generator=generator, dtype=torch.float64).tolist()
        noise_std = _draw(generator, *p.noise_std)
        sigma = _draw(generator, *p.blur_sigma)
        contrast = _draw(generator, *p.contrast)
        zoom = _draw(generator, *p.low_resolution_zoom)
        gamma = _draw(generator, *p.gamma)
        noise = torch.randn(image.shape, generator=generator, dtype=torch.float32).to(image.dtype)
        out = image
        if fires[0] < p.noise_probability:
            out = out + noise_std * noise
        if fires[1] < p.blur_probability:
            out = gaussian_blur(out, sigma)
        if fires[2] < p.contrast_probability:
            mean = out.mean(dim=(-2, -1), keepdim=True)
            out = (out - mean) * contrast + mean
        if fires[3] < p.low_resolution_probability:
            out = simulate_low_resolution(out, zoom)
        out = out.clamp(0.0, 1.0)
        if fires[4] < p.gamma_probability:
            invert = fires[5] < p.gamma_invert_probability
            out = 1.0 - (1.0 - out) ** gamma if invert else out ** gamma
        return out
