"""G_dp: random channel-wise dropout of a latent code (paper eq. 2).

Whole channels are set to zero; survivors are NOT rescaled (the authors' code used F.dropout2d with a fixed
p = 0.5, which rescales survivors by 2; the paper masks with zeros at a random p, and we follow the paper).
Each sample loses exactly round(p * C) channels drawn uniformly at random, so every channel is dropped with
probability ~p as in the Bernoulli formulation, and the fraction masked is the p asked for.
"""

from __future__ import annotations

from typing import Optional

import torch

from CoopSegLib.masking.fraction import masked_count, top_k_mask


def random_dropout_mask(z: torch.Tensor, p: float, generator: Optional[torch.Generator] = None) -> torch.Tensor:
    """N x C x 1 x 1 mask of ones with round(p * C) random channels per sample set to zero."""
    batch, channels = z.shape[:2]
    scores = torch.rand(batch, channels, generator=generator, device="cpu").to(z.device)
    zeros = torch.zeros(batch, device=z.device, dtype=z.dtype)
    return top_k_mask(scores.to(z.dtype), masked_count(p, channels), zeros)[:, :, None, None]
