"""G_ch and G_sp: masks targeted at the latent units the task loss is most sensitive to (paper eqs. 3-4).

Saliency is the mean gradient *magnitude* of the task loss with respect to the code, per channel (G_ch) or per
spatial position (G_sp). The paper calls the masked units "salient"; the authors' code ranked the signed mean,
which would spare units whose gradients are large but negative. We rank by magnitude.
"""

from __future__ import annotations

from typing import Callable, Optional

import torch

from CoopSegLib.masking.fraction import masked_count, soft_factors, top_k_mask


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


def channel_saliency(gradient: torch.Tensor) -> torch.Tensor:
    """N x C: mean |gradient| of each channel over its positions."""
    return gradient.abs().mean(dim=(2, 3))


def spatial_saliency(gradient: torch.Tensor) -> torch.Tensor:
    """N x (H*W): mean |gradient| at each position over channels."""
    return gradient.abs().mean(dim=1).flatten(1)


def targeted_channel_mask(gradient: torch.Tensor, p: float, soft: bool = True,
                          generator: Optional[torch.Generator] = None, factor: Optional[float] = None) -> torch.Tensor:
    """N x C x 1 x 1 mask: the round(p*C) most salient channels get a (soft, a ~ U(0, 0.5)) or 0 (hard).

    ``factor`` fixes a instead of drawing it.
    """
    batch, channels = gradient.shape[:2]
    fill = soft_factors(batch, soft, gradient, generator, factor=factor)
    return top_k_mask(channel_saliency(gradient), masked_count(p, channels), fill)[:, :, None, None]


def targeted_spatial_mask(gradient: torch.Tensor, p: float, soft: bool = True,
                          generator: Optional[torch.Generator] = None, factor: Optional[float] = None) -> torch.Tensor:
    """N x 1 x H x W mask: the round(p*H*W) most salient positions get a (soft) or 0 (hard), in every channel.

    ``factor`` fixes a instead of drawing it.
    """
    batch, _, height, width = gradient.shape
    fill = soft_factors(batch, soft, gradient, generator, factor=factor)
    mask = top_k_mask(spatial_saliency(gradient), masked_count(p, height * width), fill)
    return mask.view(batch, 1, height, width)
