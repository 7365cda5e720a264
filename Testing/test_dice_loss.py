"""The opt-in soft-Dice term of L_seg and L_shp (CooperativeConfig.dice_weight)."""

import pytest
import torch
import torch.nn.functional as F

from CoopSegLib.cooperative import (CooperativeConfig, CooperativeObjective, segmentation_loss, soft_dice_loss)
from CoopSegLib.errors import ConfigError
from CoopSegLib.networks import CoopSegModel, one_hot
from CoopSegLib.training.settings import TrainingSettings

from toy_slices import SMALL_WIDTHS

SEGMENTATION_TERMS = ("std/seg", "std/shp_pred", "std/shp_gt", "hard/seg", "hard/shp_pred", "hard/shp_corrupt")


def test_soft_dice_is_batch_dice_over_the_foreground_classes():
    # Two slices of 1 x 2 pixels, three classes; logits = log(p), so softmax gives p back exactly.
    p = torch.tensor([[[0.2, 0.6], [0.6, 0.2], [0.2, 0.2]],  # slice 0: classes x pixels
                      [[0.2, 0.2], [0.2, 0.6], [0.6, 0.2]]])  # slice 1
    labels = torch.tensor([[[1, 0]], [[2, 2]]])
    logits = torch.log(p)[:, :, None, :]  # N x C x 1 x W
    # class 1: overlap 0.6, predicted 1.6, labelled 1; class 2: overlap 0.6 + 0.2, predicted 1.2, labelled 2.
    # Background is left out, and slice 0 (no class 2) does not count as a failure of its own: batch Dice.
    by_hand = 1 - (2 * 0.6 / (1.6 + 1) + 2 * 0.8 / (1.2 + 2)) / 2
    assert soft_dice_loss(logits, labels).item() == pytest.approx(by_hand, abs=1e-5)
    perfect = torch.log(F.one_hot(labels, 3).movedim(-1, 1).float() * 0.999999 + 1e-7)
    assert soft_dice_loss(perfect, labels).item() == pytest.approx(0.0, abs=1e-5)


def test_soft_dice_matches_monais_dice_loss():
    from monai.losses import DiceLoss

    generator = torch.Generator().manual_seed(3)
    logits = 3 * torch.randn(3, 4, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (3, 8, 8), generator=generator)
    monai = DiceLoss(include_background=False, to_onehot_y=True, softmax=True, batch=True,
                     smooth_nr=1e-5, smooth_dr=1e-5)(logits, labels[:, None])
    assert soft_dice_loss(logits, labels).item() == pytest.approx(monai.item(), abs=1e-6)


def test_segmentation_loss_adds_exactly_weight_times_dice():
    generator = torch.Generator().manual_seed(4)
    logits = torch.randn(2, 4, 8, 8, generator=generator)
    labels = torch.randint(0, 4, (2, 8, 8), generator=generator)
    cross_entropy = F.cross_entropy(logits, labels)
    assert torch.equal(segmentation_loss(logits, labels), cross_entropy)  # the default: the paper's loss, bit for bit
    assert torch.equal(segmentation_loss(logits, labels, 0.0), cross_entropy)
    dice = soft_dice_loss(logits, labels)
    assert dice.item() > 0.1
    assert segmentation_loss(logits, labels, 1.5).item() == pytest.approx((cross_entropy + 1.5 * dice).item(),
                                                                          rel=1e-6)


def objective_losses(model, images, labels, **settings):
    torch.manual_seed(0)  # the hard examples' masking draws
    config = CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS, input_noise_std=0.0, **settings)
    return CooperativeObjective(config, model).train()(images, labels)


def test_dice_weight_changes_only_the_segmentation_terms_by_weight_times_dice(rings):
    images, labels = rings
    torch.manual_seed(0)
    model = CoopSegModel(CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS).network)
    default = objective_losses(model, images, labels)
    zero = objective_losses(model, images, labels, dice_weight=0.0)
    one = objective_losses(model, images, labels, dice_weight=1.0)
    weighted = objective_losses(model, images, labels, dice_weight=2.5)
    assert torch.equal(zero.total, default.total)
    # Targeted masking ranks by the cross-entropy either way: the same hard examples.
    assert torch.equal(weighted.hard.image, zero.hard.image) and torch.equal(weighted.hard.logits, zero.hard.logits)
    # Training-mode BatchNorm uses the batch's statistics: a second forward repeats the objective's numbers.
    with torch.no_grad():
        logits = model.ftn(images).logits
        from_labels = model.stn(one_hot(labels, 4).to(images.dtype))
    assert torch.allclose(zero.terms["std/seg"], F.cross_entropy(logits, labels), rtol=1e-5)
    dice = {name: one.terms[name] - zero.terms[name] for name in SEGMENTATION_TERMS}
    assert dice["std/seg"].item() == pytest.approx(soft_dice_loss(logits, labels).item(), rel=1e-4)
    assert dice["std/shp_gt"].item() == pytest.approx(soft_dice_loss(from_labels, labels).item(), rel=1e-4)
    for name in SEGMENTATION_TERMS:
        assert dice[name].item() > 0.05, name
        assert (weighted.terms[name] - zero.terms[name]).item() == pytest.approx(2.5 * dice[name].item(), rel=1e-4)
    for name in ("std/rec", "hard/rec"):
        assert torch.equal(weighted.terms[name], zero.terms[name])
    added = sum(dice.values())
    assert (weighted.total - zero.total).item() == pytest.approx(2.5 * added.item(), rel=1e-4)


def test_dice_weight_is_a_method_setting_and_must_not_be_negative():
    settings = TrainingSettings.from_mapping({}, ["method.dice_weight=1.0"])
    assert settings.method.config().dice_weight == 1.0
    assert CooperativeConfig().dice_weight == 0.0
    # An old bundle's recorded objective has no dice_weight: it reads as the paper's loss.
    recorded = {k: v for k, v in CooperativeConfig(dice_weight=1.0).objective_dict().items() if k != "dice_weight"}
    assert CooperativeConfig.from_dict(recorded).dice_weight == 0.0
    with pytest.raises(ConfigError, match="dice_weight must not be negative"):
        TrainingSettings.from_mapping({}, ["method.dice_weight=-0.5"])
    with pytest.raises(ConfigError, match="dice_weight"):
        CooperativeConfig(dice_weight=float("nan"))
