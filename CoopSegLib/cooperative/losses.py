"""Loss terms by the paper's names: L_rec (MSE to the clean image), L_seg and L_shp (cross-entropy to the labels)."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def reconstruction_loss(reconstruction: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_rec: mean squared error between a reconstruction and the clean image x."""
    return F.mse_loss(reconstruction.float(), image.float())


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """L_seg / L_shp: pixel-wise cross-entropy of logits (N x C x H x W) against integer labels (N x H x W)."""
    return F.cross_entropy(logits.float(), labels.long())
