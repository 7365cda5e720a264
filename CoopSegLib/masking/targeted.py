"""G_ch and G_sp: masks targeted at the latent units the task loss is most sensitive to (paper eqs. 3-4).

Two rankings of the latent units (``ranking``):
  magnitude      the mean gradient *magnitude* of the task loss with respect to the code, per channel (G_ch) or
                 per spatial position (G_sp). The paper calls the masked units "salient"; the authors' code ranked
                 the signed mean, which would spare units whose gradients are large but negative.
  expected_loss  the first-order loss increase of masking a unit: scaling z_k by a changes the loss by about
                 -(1 - a) g_k z_k, so units are ranked by -sum(g * z) over the channel (or position). Both codes are
                 non-negative (after ReLU), so this masks the units whose removal hurts most, not merely the ones
                 with steep gradients.
Scores are float32 whatever the code's precision: bf16 rounds many scores to ties, and top-k then prefers low indices.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from CoopSegLib.masking.fraction import masked_count, soft_factors, top_k_mask

RANKINGS = ("magnitude", "expected_loss")


def task_gradient(z: torch.Tensor, decode: Callable[[torch.Tensor], torch.Tensor],
                  loss: Callable[[torch.Tensor], torch.Tensor]) -> torch.Tensor:
    """d loss(decode(z)) / dz on a detached copy of z.

    Only z receives a gradient (torch.autograd.grad): the decoder's parameters get none, and nothing flows back
    into whatever produced z.
    """
    code = z.detach().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(loss(decode(code)), code)
    return gradient


def unit_scores(gradient: torch.Tensor, code: Optional[torch.Tensor], ranking: str) -> torch.Tensor:
    """N x C x H x W float32 scores per code entry, to be averaged per channel or position (see the module)."""
    if ranking not in RANKINGS:
        raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, not {ranking!r}")
    if ranking == "magnitude":
        return gradient.float().abs()
    if code is None:
        raise ValueError("the expected_loss ranking needs the code itself, not only its gradient")
    return -(gradient.float() * code.float())


def channel_saliency(gradient: torch.Tensor, code: Optional[torch.Tensor] = None,
                     ranking: str = "magnitude") -> torch.Tensor:
    """N x C: each channel's score averaged over its positions (mean |gradient| by default)."""
    return unit_scores(gradient, code, ranking).mean(dim=(2, 3))


def spatial_saliency(gradient: torch.Tensor, code: Optional[torch.Tensor] = None,
                     ranking: str = "magnitude") -> torch.Tensor:
    """N x (H*W): each position's score averaged over channels (mean |gradient| by default)."""
    return unit_scores(gradient, code, ranking).mean(dim=1).flatten(1)


def targeted_channel_mask(gradient: torch.Tensor, p: float, soft_masking: bool = True,
                          generator: Optional[torch.Generator] = None, factor: Optional[float] = None,
                          code: Optional[torch.Tensor] = None, ranking: str = "magnitude") -> torch.Tensor:
    """N x C x 1 x 1 mask: the round(p*C) top-ranked channels get a (soft, a ~ U(0, 0.5)) or 0 (hard).

    ``factor`` fixes a instead of drawing it; ``code`` (the z being masked) is needed for ranking "expected_loss".
    """
    batch, channels = gradient.shape[:2]
    fill = soft_factors(batch, soft_masking, gradient, generator, factor=factor)
    scores = channel_saliency(gradient, code, ranking)
    return top_k_mask(scores, masked_count(p, channels), fill.to(scores.dtype))[:, :, None, None].to(gradient.dtype)


def targeted_spatial_mask(gradient: torch.Tensor, p: float, soft_masking: bool = True,
                          generator: Optional[torch.Generator] = None, factor: Optional[float] = None,
                          code: Optional[torch.Tensor] = None, ranking: str = "magnitude") -> torch.Tensor:
    """N x 1 x H x W mask: the round(p*H*W) top-ranked positions get a (soft) or 0 (hard), in every channel.

    ``factor`` fixes a instead of drawing it; ``code`` (the z being masked) is needed for ranking "expected_loss".
    """
    batch, _, height, width = gradient.shape
    fill = soft_factors(batch, soft_masking, gradient, generator, factor=factor)
    scores = spatial_saliency(gradient, code, ranking)
    mask = top_k_mask(scores, masked_count(p, height * width), fill.to(scores.dtype))
    return mask.view(batch, 1, height, width).to(gradient.dtype)
