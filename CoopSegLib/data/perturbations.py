"""Image-domain perturbations that calibrate the quality estimate: degraded inputs with known labels.

They are deliberately NOT the four TorchIO artefacts of the test sets (bias field, ghosting, motion, spike) nor any
other k-space simulation, so that scoring the estimate on those sets measures it on artefacts it never saw:

    noise       additive Gaussian noise, sigma a fraction of the volume's 99th percentile
    blur        in-plane Gaussian blur, sigma in voxels
    lowres      in-plane block averaging by an integer factor, then linear upsampling back
    gamma       intensity gamma (below or above 1) on the [0, 1]-scaled volume
    inversion   blend towards the inverted image (1 = fully inverted contrast)
    occlusion   a box over the image centre (where the heart usually is) filled with the volume's median
    impulse     a fraction of voxels set to the minimum or the 99th percentile (salt and pepper)

``severity`` is in [0, 1] for every kind (0 mild, 1 strong); each maps it onto its own parameter range.
"""

from __future__ import annotations

from typing import Callable, Dict

import numpy as np
import torch

from CoopSegLib.errors import CoopSegError


def _scale(array: np.ndarray) -> tuple:
    low, high = np.percentile(array, [0.0, 99.0])
    return float(low), float(max(high - low, 1e-6))


def _noise(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    _, scale = _scale(array)
    return array + rng.normal(0.0, (0.03 + 0.27 * severity) * scale, array.shape)


def _blur_axis(volume: torch.Tensor, sigma: float, axis: int) -> torch.Tensor:
    radius = max(1, int(3 * sigma))
    taps = torch.arange(-radius, radius + 1, dtype=torch.float64)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = (kernel / kernel.sum()).to(volume.dtype)
    moved = volume.movedim(axis, -1)
    shape = moved.shape
    flat = moved.reshape(-1, 1, shape[-1])
    padded = torch.nn.functional.pad(flat, (radius, radius), mode="replicate")
    return torch.nn.functional.conv1d(padded, kernel.view(1, 1, -1)).reshape(shape).movedim(-1, axis)


def _blur(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    sigma = 0.8 + 3.2 * severity
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32))
    for axis in (0, 1):  # in-plane: the first two voxel axes of a short-axis stack
        volume = _blur_axis(volume, sigma, axis)
    return volume.numpy()


def _lowres(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    factor = 2 + int(round(4 * severity))
    volume = torch.from_numpy(np.ascontiguousarray(array, dtype=np.float32)).permute(2, 0, 1)[:, None]
    small = torch.nn.functional.avg_pool2d(volume, factor, ceil_mode=True)
    back = torch.nn.functional.interpolate(small, size=volume.shape[-2:], mode="bilinear", align_corners=False)
    return back[:, 0].permute(1, 2, 0).numpy()


def _gamma(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    low, scale = _scale(array)
    unit = np.clip((array - low) / scale, 0.0, None)
    gamma = float(np.exp((0.4 + 1.0 * severity) * (1 if rng.random() < 0.5 else -1)))
    return low + scale * unit ** gamma


def _inversion(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    low, scale = _scale(array)
    weight = 0.4 + 0.6 * severity
    return (1 - weight) * array + weight * (low + scale - np.minimum(array, low + scale))


def _occlusion(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    out = np.array(array, dtype=np.float32, copy=True)
    fraction = 0.15 + 0.35 * severity
    starts = []
    for n in array.shape[:2]:
        width = max(1, int(round(n * fraction)))
        centre = n / 2 + rng.uniform(-0.1, 0.1) * n
        starts.append(slice(max(0, int(centre - width / 2)), min(n, int(centre + width / 2))))
    out[starts[0], starts[1], ...] = float(np.median(array))
    return out


def _impulse(array: np.ndarray, severity: float, rng: np.random.Generator) -> np.ndarray:
    low, scale = _scale(array)
    out = np.array(array, dtype=np.float32, copy=True)
    hit = rng.random(array.shape) < 0.02 + 0.18 * severity
    out[hit] = np.where(rng.random(int(hit.sum())) < 0.5, low, low + scale)
    return out


PERTURBATIONS: Dict[str, Callable[[np.ndarray, float, np.random.Generator], np.ndarray]] = {
    "noise": _noise, "blur": _blur, "lowres": _lowres, "gamma": _gamma, "inversion": _inversion,
    "occlusion": _occlusion, "impulse": _impulse,
}


def perturb_volume(array: np.ndarray, kind: str, severity: float, seed: int) -> np.ndarray:
    """A perturbed copy of a 3D volume (float32, same shape), deterministic for ``seed``."""
    if kind not in PERTURBATIONS:
        raise CoopSegError(f"unknown perturbation {kind!r}; use one of {', '.join(PERTURBATIONS)}")
    if not 0.0 <= severity <= 1.0:
        raise CoopSegError(f"perturbation severity must be in [0, 1], got {severity}")
    array = np.asarray(array, dtype=np.float32)
    if array.ndim != 3:
        raise CoopSegError(f"perturbations take a 3D volume, got shape {array.shape}")
    result = PERTURBATIONS[kind](array, float(severity), np.random.default_rng(seed))
    return np.asarray(result, dtype=np.float32)
