"""Targeted masks rank latent units by gradient magnitude or by the expected loss increase of masking them."""

from __future__ import annotations

import pytest
import torch

from CoopSegLib.cooperative.losses import segmentation_loss
from CoopSegLib.masking import random_dropout_mask, targeted_channel_mask, targeted_spatial_mask
from CoopSegLib.masking.targeted import channel_saliency

from toy_slices import ring_slices
from inference_helpers import SIZE, trained_model


def test_expected_loss_ranking_picks_the_units_whose_removal_raises_the_loss():
    # Channel 0 has a steep gradient but carries nothing (z = 0): masking it changes nothing. Channel 1 has a
    # gentle negative gradient on a large code: masking it raises the loss.
    gradient = torch.zeros(1, 3, 2, 2)
    gradient[0, 0], gradient[0, 1], gradient[0, 2] = 5.0, -1.0, 0.5
    code = torch.zeros(1, 3, 2, 2)
    code[0, 1], code[0, 2] = 4.0, 1.0
    assert channel_saliency(gradient).argmax() == 0
    assert channel_saliency(gradient, code, "expected_loss").argmax() == 1
    mask = targeted_channel_mask(gradient, 1 / 3, soft_masking=False, code=code, ranking="expected_loss")
    assert mask.flatten().tolist() == [1.0, 0.0, 1.0]
    with pytest.raises(ValueError, match="needs the code"):
        targeted_channel_mask(gradient, 0.5, ranking="expected_loss")
    spatial = targeted_spatial_mask(gradient, 0.25, soft_masking=False, code=code, ranking="expected_loss")
    assert spatial.dtype == torch.float32


def test_scores_are_float32_for_bf16_codes():
    gradient = torch.randn(2, 8, 4, 4).bfloat16()
    assert channel_saliency(gradient, gradient.abs(), "expected_loss").dtype == torch.float32
    assert targeted_channel_mask(gradient, 0.5, code=gradient.abs(), ranking="expected_loss").dtype == torch.bfloat16


def test_on_a_trained_model_targeted_masks_raise_the_task_loss_more_than_random_dropout():
    model = trained_model()
    images, labels = ring_slices(16, SIZE, seed=77)
    with torch.no_grad():
        z_s = model.ftn.codes(images)[1]
    code = z_s.clone().requires_grad_(True)
    with torch.enable_grad():
        (gradient,) = torch.autograd.grad(segmentation_loss(model.ftn.segment(code), labels), code)

    def loss_with(mask):
        with torch.no_grad():
            return float(segmentation_loss(model.ftn.segment(z_s * mask), labels))

    clean = loss_with(torch.ones_like(z_s[:, :1]))
    for p in (0.1, 0.3):
        dropout = sum(loss_with(random_dropout_mask(z_s, p, torch.Generator().manual_seed(s))) for s in range(8)) / 8
        magnitude = loss_with(targeted_channel_mask(gradient, p, soft_masking=False))
        expected = loss_with(targeted_channel_mask(gradient, p, soft_masking=False, code=z_s, ranking="expected_loss"))
        assert expected > dropout > clean, (p, clean, dropout, magnitude, expected)
        assert expected >= magnitude, (p, magnitude, expected)
