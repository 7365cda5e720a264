"""Latent-space masking: random channel dropout (G_dp), targeted channel-wise (G_ch) and spatial-wise (G_sp) masks."""

from CoopSegLib.masking.chooser import MASKING_SCHEMES, LatentMasker, MaskedCode, mask_code
from CoopSegLib.masking.dropout import random_dropout_mask
from CoopSegLib.masking.fraction import masked_count
from CoopSegLib.masking.targeted import (
    channel_saliency,
    spatial_saliency,
    targeted_channel_mask,
    targeted_spatial_mask,
    task_gradient,
)

__all__ = [
    "MASKING_SCHEMES",
    "LatentMasker",
    "MaskedCode",
    "channel_saliency",
    "mask_code",
    "masked_count",
    "random_dropout_mask",
    "spatial_saliency",
    "targeted_channel_mask",
    "targeted_spatial_mask",
    "task_gradient",
]
