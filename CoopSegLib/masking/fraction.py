"""Shared pieces of the mask generators: how many units a fraction p masks, and top-k selection masks."""

from __future__ import annotations

from typing import Optional

import torch

MAX_MASK_FRACTION = 0.5  # p ~ U(0, 0.5) in the paper
MAX_SOFT_FACTOR = 0.5  # a ~ U(0, 0.5) for soft masks


def masked_count(p: float, units: int) -> int:
    """Number of channels (or positions) that a masking fraction p covers: round(p * units)."""
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"masking fraction p must lie in [0, 1], got {p}")
    return int(round(p * units))


def soft_factors(batch: int, soft_masking: bool, like: torch.Tensor,
                 generator: Optional[torch.Generator] = None, max_factor: float = MAX_SOFT_FACTOR,
                 factor: Optional[float] = None) -> torch.Tensor:
    """Per-sample value given to masked units: a ~ U(0, max_factor) for soft masks, 0 for hard masks.

    The paper writes the soft mask as a*1 (one scalar a for the masked units); the authors' code draws a per entry.
    We follow the paper: one a per sample. A given ``factor`` fixes a for every sample (previews show one chosen a).
    """
    if factor is not None:
        if not 0.0 <= factor <= 1.0:
            raise ValueError(f"soft factor a must lie in [0, 1], got {factor}")
        return torch.full((batch,), float(factor), device=like.device, dtype=like.dtype)
    if not soft_masking:
        return torch.zeros(batch, device=like.device, dtype=like.dtype)
    a = torch.rand(batch, generator=generator, device="cpu") * max_factor
    return a.to(device=like.device, dtype=like.dtype)


def top_k_mask(scores: torch.Tensor, k: int, fill: torch.Tensor) -> torch.Tensor:
    """Mask of the shape of ``scores`` (N x units): 1 everywhere, ``fill[n]`` at the k highest scores of row n."""
    mask = torch.ones_like(scores)
    if k == 0:
        return mask
    top = scores.topk(k, dim=1).indices
    return mask.scatter(1, top, fill[:, None].expand(-1, k).to(mask.dtype))
