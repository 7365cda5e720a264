"""Loss terms by the paper's names: L_rec (MSE to the clean image), L_seg and L_shp (cross-entropy to the labels,
plus an opt-in soft-Dice term as nnU-Net trains: ``CooperativeConfig.dice_weight``)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

DICE_SMOOTH = 1e-5  # nnU-Net's smoothing: keeps a class absent from prediction and labels finite


def reconstruction_loss(reconstruction: torch.Tensor, image: torch.Tensor) -> torch.Tensor:
    """L_rec: mean squared error between a reconstruction and the clean image x."""
    return F.mse_loss(reconstruction.float(), image.float())


def soft_dice_loss(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """1 - mean soft Dice over the foreground classes (1..C-1) of softmax(logits) against integer labels.

    Batch Dice, as nnU-Net's: each class's overlap and sizes are summed over the whole batch before dividing, so a
    slice without a structure does not count as a failed one.

    >>> logits = torch.log(torch.tensor([[[[0.25, 0.75]], [[0.75, 0.25]]]]))  # 1 x 2 classes x 1 x 2 pixels
    >>> round(soft_dice_loss(logits, torch.tensor([[[1, 0]]])).item(), 4)  # Dice 2 * 0.75 / (1 + 1)
    0.25
    """
    probabilities = torch.softmax(logits.float(), dim=1)[:, 1:]
    targets = F.one_hot(labels.long(), logits.shape[1]).movedim(-1, 1)[:, 1:].to(probabilities.dtype)
    dims = (0, *range(2, probabilities.dim()))  # batch and pixels, per class
    overlap = (probabilities * targets).sum(dims)
    sizes = probabilities.sum(dims) + targets.sum(dims)
    return 1.0 - ((2.0 * overlap + DICE_SMOOTH) / (sizes + DICE_SMOOTH)).mean()


def segmentation_loss(logits: torch.Tensor, labels: torch.Tensor, dice_weight: float = 0.0) -> torch.Tensor:
    """L_seg / L_shp: pixel-wise cross-entropy of logits (N x C x H x W) against integer labels (N x H x W), plus
    ``dice_weight`` x ``soft_dice_loss`` where that weight is set (0: the paper's cross-entropy alone)."""
    loss = F.cross_entropy(logits.float(), labels.long())
    if dice_weight:
        loss = loss + dice_weight * soft_dice_loss(logits, labels)
    return loss
