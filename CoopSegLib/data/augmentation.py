"""The paper's training augmentation for 2D short-axis slices, deterministic for a given torch.Generator.

Policy (reference/original-implementation.md): flips (p 0.2 per axis); contrast x U(0.8, 1.2) and brightness
+ U(-0.1, 0.1) (together, p 0.5); affine with rotation +-15 degrees, translation 10 % of the field of view and zoom
0.8-1.1 per axis; a rotation by a random multiple of 45 degrees; elastic deformation (p 0.5); per-slice min-max to
[0, 1] last.

Two backends draw the same parameters from the same generator:

- ``"torchio"``: TorchIO's Flip, Affine and RandomElasticDeformation on each slice (one SimpleITK resampling per
  transform). Its elastic deformation costs 25-65 ms per 192 x 192 slice on one core, so a batch of 20 takes
  about 0.5-1 s: over the 0.3 s budget for a batch.
- ``"torch"`` (default): the same flips, affine (composed exactly as TorchIO composes them), 45-degree rotation
  and a TorchIO-style elastic field (a 7 x 7
  grid of control-point displacements up to 7.5 mm, border points locked, smoothly interpolated) composed into one
  sampling grid and applied with a single ``grid_sample`` per batch. One interpolation instead of three also blurs
  the image less.

The contrast/brightness step is written here (TorchIO has no such transform). Its result is clipped to [0, 1]
before the final min-max; without clipping the min-max would undo it exactly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, Optional, Tuple, Union

import numpy as np
import torch
import torch.nn.functional as F

from CoopSegLib.data.geometry import MODEL_SPACING
from CoopSegLib.data.intensity_augmentation import IntensityAugmenter
from CoopSegLib.data.normalisation import minmax_per_slice
from CoopSegLib.errors import CoopSegError

BACKENDS = ("torch", "torchio")
# Training augmentations (data.augmentation): none; the paper's; the paper's + generic intensity transforms.
AUGMENTATIONS = ("none", "paper", "strong")


def augmentation_kind(value: Union[bool, str]) -> Optional[str]:
    """One of AUGMENTATIONS for a setting value (true means "paper", false "none"); None when not recognised."""
    if isinstance(value, bool):
        return "paper" if value else "none"
    kind = str(value).lower()
    return kind if kind in AUGMENTATIONS else None


@dataclass(frozen=True)
class AugmentationPolicy:
    """Parameters of the paper's augmentation (defaults) for slices at ``spacing`` mm per pixel."""

    flip_probability: float = 0.2
    intensity_probability: float = 0.5
    contrast: Tuple[float, float] = (0.8, 1.2)
    brightness: Tuple[float, float] = (-0.1, 0.1)
    degrees: float = 15.0
    translation: float = 0.1  # fraction of the field of view, each axis
    scales: Tuple[float, float] = (0.8, 1.1)  # > 1 enlarges the anatomy
    rotate_45: bool = True
    elastic_probability: float = 0.5
    elastic_control_points: int = 7
    elastic_max_displacement: float = 7.5  # mm, TorchIO's default
    spacing: float = MODEL_SPACING


def _uniform(generator: torch.Generator, low: float, high: float, count: int) -> torch.Tensor:
    return low + (high - low) * torch.rand(count, generator=generator, dtype=torch.float64)


def sample_parameters(policy: AugmentationPolicy, count: int, generator: torch.Generator) -> Dict[str, torch.Tensor]:
    """Draw per-slice augmentation parameters (float64 tensors of length ``count``; elastic (count, 2, n, n) mm).

    The number of draws does not depend on the outcomes, so slice i always gets the same parameters for a seed.
    """
    p = policy
    angle = _uniform(generator, -p.degrees, p.degrees, count)
    if p.rotate_45:
        angle = angle + 45.0 * torch.randint(0, 8, (count,), generator=generator).double()
    n = p.elastic_control_points
    elastic = _uniform(generator, -p.elastic_max_displacement, p.elastic_max_displacement, count * 2 * n * n)
    elastic = elastic.view(count, 2, n, n)
    elastic[:, :, [0, -1], :] = 0.0  # locked borders: the image edge does not move
    elastic[:, :, :, [0, -1]] = 0.0
    return {
        "flip_h": torch.rand(count, generator=generator, dtype=torch.float64) < p.flip_probability,
        "flip_w": torch.rand(count, generator=generator, dtype=torch.float64) < p.flip_probability,
        "intensity": torch.rand(count, generator=generator, dtype=torch.float64) < p.intensity_probability,
        "contrast": _uniform(generator, *p.contrast, count),
        "brightness": _uniform(generator, *p.brightness, count),
        "angle": angle,
        "scale_h": _uniform(generator, *p.scales, count),
        "scale_w": _uniform(generator, *p.scales, count),
        "shift_h": _uniform(generator, -p.translation, p.translation, count),
        "shift_w": _uniform(generator, -p.translation, p.translation, count),
        "elastic_on": torch.rand(count, generator=generator, dtype=torch.float64) < p.elastic_probability,
        "elastic": elastic,
    }


def adjust_intensity(images: torch.Tensor, params: Dict[str, torch.Tensor]) -> torch.Tensor:
    """Contrast and brightness where ``params['intensity']`` is set, clipped to [0, 1]. ``images``: (B, H, W)."""
    on = params["intensity"].to(images.dtype)
    contrast = 1.0 + on * (params["contrast"].to(images.dtype) - 1.0)
    brightness = on * params["brightness"].to(images.dtype)
    return (images * contrast[:, None, None] + brightness[:, None, None]).clamp(0.0, 1.0)


def sampling_grid(params: Dict[str, torch.Tensor], size: Tuple[int, int], spacing: float) -> torch.Tensor:
    """One grid_sample grid (B, H, W, 2) for flips, affine, 45-degree rotation and elastic deformation.

    The output pixel at position q (normalised coordinates, centre 0) samples the input at
    F R^T (S^-1 q - t) + d(q), where F flips, R rotates, S zooms, t translates and d is the elastic field: the same
    composition as TorchIO's Flip then Affine (checked against it in the tests).
    """
    count = params["angle"].shape[0]
    height, width = size
    radians = -params["angle"] * math.pi / 180.0  # sign chosen to match TorchIO's Affine on these slices
    cos, sin = torch.cos(radians), torch.sin(radians)
    rotation_t = torch.stack([torch.stack([cos, sin], -1), torch.stack([-sin, cos], -1)], -2)
    flip = torch.stack([1.0 - 2.0 * params["flip_w"].double(), 1.0 - 2.0 * params["flip_h"].double()], -1)
    flip_rotation = flip[:, :, None] * rotation_t  # F R^T
    zoom = torch.stack([1.0 / params["scale_w"], 1.0 / params["scale_h"]], -1)  # S^-1 (grid order: w, h)
    matrix = flip_rotation * zoom[:, None, :]
    shift = torch.stack([2.0 * params["shift_w"], 2.0 * params["shift_h"]], -1)  # fraction of FOV -> [-1, 1] units
    theta = torch.cat([matrix, -(flip_rotation @ shift[:, :, None])], dim=2)
    grid = F.affine_grid(theta.float(), [count, 1, height, width], align_corners=False)
    on = params["elastic_on"]
    if bool(on.any()):
        # mm -> normalised units (the image spans 2 units); channels (h, w) -> grid order (x = w, y = h).
        elastic = params["elastic"][on].float()
        # Control values are cubic B-spline coefficients as in TorchIO: their value at a knot is (1, 4, 1) / 6
        # of the neighbours, which keeps displacements smaller and smoother than interpolating the draws directly.
        kernel = torch.tensor([1.0, 4.0, 1.0]) / 6.0
        channels = elastic.shape[1]
        elastic = F.conv2d(elastic, kernel.view(1, 1, 3, 1).repeat(channels, 1, 1, 1), padding=(1, 0), groups=channels)
        elastic = F.conv2d(elastic, kernel.view(1, 1, 1, 3).repeat(channels, 1, 1, 1), padding=(0, 1), groups=channels)
        scale = torch.tensor([2.0 / (height * spacing), 2.0 / (width * spacing)])
        field = F.interpolate(elastic * scale[None, :, None, None], size=(height, width), mode="bicubic",
                              align_corners=True)
        grid[on] = grid[on] + field.flip(1).permute(0, 2, 3, 1)
    return grid


class SliceAugmenter:
    """Apply the policy to a batch of slices: images (B, H, W) in [0, 1] and labels (B, H, W) integer codes.

    >>> augmenter = SliceAugmenter()
    >>> image, label = augmenter(torch.rand(2, 64, 64), torch.zeros(2, 64, 64, dtype=torch.long),
    ...                          torch.Generator().manual_seed(0))
    >>> image.shape, float(image.amin()), float(image.amax())
    (torch.Size([2, 64, 64]), 0.0, 1.0)

    ``intensity`` adds generic intensity transforms (data/intensity_augmentation.py) before the final min-max;
    they draw after the paper's parameters, so those stay the same for a seed with or without them.
    """

    def __init__(self, policy: AugmentationPolicy = AugmentationPolicy(), backend: str = "torch",
                 intensity: Optional[IntensityAugmenter] = None) -> None:
        if backend not in BACKENDS:
            raise CoopSegError(f"unknown augmentation backend {backend!r}; use one of {', '.join(BACKENDS)}")
        self.policy = policy
        self.backend = backend
        self.intensity = intensity

    def __call__(
        self, images: torch.Tensor, labels: torch.Tensor, generator: torch.Generator
    ) -> Tuple[torch.Tensor, torch.Tensor]:
        if images.ndim != 3 or labels.shape != images.shape:
            raise CoopSegError(f"expected images and labels of shape (B, H, W), got {tuple(images.shape)} and "
                               f"{tuple(labels.shape)}")
        params = sample_parameters(self.policy, images.shape[0], generator)
        images = adjust_intensity(images.float(), params)
        if self.backend == "torch":
            grid = sampling_grid(params, tuple(images.shape[1:]), self.policy.spacing)
            images = F.grid_sample(images[:, None], grid, mode="bilinear", padding_mode="zeros",
                                   align_corners=False)[:, 0]
            labels = F.grid_sample(labels[:, None].float(), grid, mode="nearest", padding_mode="zeros",
                                   align_corners=False)[:, 0].round().long()
        else:
            seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
            images, labels = _torchio_spatial(images, labels, params, self.policy, seed)
        if self.intensity is not None:
            images = torch.stack([self.intensity(image[None], generator)[0] for image in images])
        return minmax_per_slice(images), labels


def _torchio_spatial(
    images: torch.Tensor, labels: torch.Tensor, params: Dict[str, torch.Tensor], policy: AugmentationPolicy, seed: int
) -> Tuple[torch.Tensor, torch.Tensor]:
    """Spatial part of the policy with TorchIO transforms, one slice at a time (reference implementation)."""
    import torchio as tio

    affine = np.diag([policy.spacing, policy.spacing, 1.0, 1.0])
    out_images, out_labels = [], []
    height, width = images.shape[1:]
    # TorchIO's random elastic transform draws from torch's global generator: seed it, and restore it afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for b in range(images.shape[0]):
            subject = tio.Subject(
                image=tio.ScalarImage(tensor=images[b][None, :, :, None].float(), affine=affine),
                label=tio.LabelMap(tensor=labels[b][None, :, :, None].long(), affine=affine),
            )
            axes = tuple(axis for axis, key in ((0, "flip_h"), (1, "flip_w")) if bool(params[key][b]))
            transforms = [tio.Flip(axes=axes)] if axes else []
            transforms.append(tio.Affine(
                scales=(float(params["scale_h"][b]), float(params["scale_w"][b]), 1.0),
                degrees=(0.0, 0.0, float(params["angle"][b])),
                translation=(float(params["shift_h"][b]) * height * policy.spacing,
                             float(params["shift_w"][b]) * width * policy.spacing, 0.0),
                default_pad_value=0.0,
            ))
            if bool(params["elastic_on"][b]):
                transforms.append(tio.RandomElasticDeformation(
                    num_control_points=(policy.elastic_control_points, policy.elastic_control_points, 5),
                    max_displacement=(policy.elastic_max_displacement, policy.elastic_max_displacement, 0.0),
                ))
            result = tio.Compose(transforms)(subject)
            out_images.append(result["image"].data[0, :, :, 0])
            out_labels.append(result["label"].data[0, :, :, 0].long())
    return torch.stack(out_images), torch.stack(out_labels)
