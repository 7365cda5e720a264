"""Hard-example generation in latent space (paper §2.3, Fig. 1b).

The detached codes z_i and z_s are each masked by a scheme the masker draws; the frozen decoders turn the masked
codes into a corrupted image x_hat = D_i(z_i_hat) and a corrupted segmentation p_hat = D_s(z_s_hat).
Generation touches no parameter gradient and no BatchNorm running statistic: the hard examples are data, not a
training signal for the decoders that made them.
"""

from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, NamedTuple

import torch
from torch import nn

from CoopSegLib.cooperative.losses import reconstruction_loss, segmentation_loss
from CoopSegLib.masking import MaskedCode, task_gradient
from CoopSegLib.networks import FastThinkingNetwork


# (z, gradient of the task loss for z) -> the masked code: a LatentMasker (training draws the scheme and fraction)
# or a fixed choice (previews, through masking.mask_code).
Masker = Callable[[torch.Tensor, Callable[[], torch.Tensor]], MaskedCode]


class HardExamples(NamedTuple):
    image: torch.Tensor  # x_hat, N x 1 x H x W in [0, 1]
    logits: torch.Tensor  # p_hat (logits), N x classes x H x W
    image_scheme: str  # masking scheme used on z_i
    image_fraction: float
    shape_scheme: str  # masking scheme used on z_s
    shape_fraction: float


@contextmanager
def frozen_batchnorm_statistics(*modules: nn.Module) -> Iterator[None]:
    """Inside: BatchNorm layers normalise exactly as before (batch statistics in training mode, running ones in
    eval mode) but never update their running statistics or batch counter."""
    layers = [m for module in modules for m in module.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    tracked = [layer.track_running_stats for layer in layers]
    for layer in layers:
        if layer.training:
            layer.track_running_stats = False  # training-mode BN then uses batch stats and skips the update
    try:
        yield
    finally:
        for layer, flag in zip(layers, tracked):
            layer.track_running_stats = flag


def generate_hard_examples(ftn: FastThinkingNetwork, masker: Masker, z_i: torch.Tensor, z_s: torch.Tensor,
                           images: torch.Tensor, labels: torch.Tensor) -> HardExamples:
    """Mask z_i and z_s independently (z_i first) and decode them into (x_hat, p_hat), both detached.

    Targeted schemes rank latent units by the gradient of the task loss on the clean targets: MSE(D_i(z_i), x) for
    z_i, CE(D_s(z_s), y) for z_s (the previews, without ground truth, pass the FTN's own clean labels as y).
    """
    z_i, z_s = z_i.detach(), z_s.detach()
    decoders = (ftn.image_decoder, ftn.segmentation_decoder)
    with frozen_batchnorm_statistics(*decoders):
        image_loss = lambda rec: reconstruction_loss(rec, images)  # noqa: E731
        shape_loss = lambda logits: segmentation_loss(logits, labels)  # noqa: E731
        masked_i = masker(z_i, lambda: task_gradient(z_i, ftn.reconstruct, image_loss))
        masked_s = masker(z_s, lambda: task_gradient(z_s, ftn.segment, shape_loss))
        with torch.no_grad():
            image = ftn.reconstruct(masked_i.code)
            logits = ftn.segment(masked_s.code)
    return HardExamples(image, logits, masked_i.scheme, masked_i.fraction, masked_s.scheme, masked_s.fraction)
