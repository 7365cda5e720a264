"""Fast-thinking network (FTN): shared encoder E, latent decoupler H, image decoder D_i, segmentation decoder D_s.

    z_i = E(x)          image code (reconstruction)       x_rec  = sigmoid(D_i(z_i))
    z_s = H(z_i)        shape code (sparse, after ReLU)   logits = D_s(z_s)

``code_sharing`` selects the Table 2 variants: "decoupled" (the proposed network), "image" (share code (a):
z_s = z_i, no decoupler) and "shape" (share code (b): z_i = z_s = H(E(x)), the image decoder reads the shape code).
"""

from __future__ import annotations

from typing import NamedTuple, Sequence

import torch
from torch import nn

from CoopSegLib.networks.blocks import conv_bn_act, initialise_weights
from CoopSegLib.networks.codec import PAPER_WIDTHS, Decoder, Encoder, check_widths

CODE_SHARING = ("decoupled", "image", "shape")


class Decoupler(nn.Module):
    """H: two 3x3 conv + BN layers; the ReLU at the end makes z_s sparse."""

    def __init__(self, channels: int):
        super().__init__()
        self.layers = nn.Sequential(
            conv_bn_act(channels, channels), conv_bn_act(channels, channels, nn.ReLU(inplace=True))
        )

    def forward(self, z_i: torch.Tensor) -> torch.Tensor:
        return self.layers(z_i)


class FTNOutput(NamedTuple):
    logits: torch.Tensor  # N x classes x H x W, segmentation logits p
    reconstruction: torch.Tensor  # N x 1 x H x W in [0, 1]
    z_i: torch.Tensor  # image code
    z_s: torch.Tensor  # shape code


class FastThinkingNetwork(nn.Module):
    """The FTN: an image in, segmentation logits, its reconstruction and both latent codes out (one forward pass).

    Args:
        in_channels: image channels (1 for MR).
        num_classes: segmentation classes, background included (4: background, LV, MYO, RV).
        widths: channels of the input block and of each down block; each entry after the first halves the
            resolution, so inputs must be multiples of ``2 ** (len(widths) - 1)`` (16 for the paper's widths).
        code_sharing: "decoupled" (the paper's network), "image" or "shape" (Table 2's shared-code variants).

    Note:
        No skip connections: everything the decoders see passes through the codes, which is what lets the
        latent masks of the hard-example generation reach the whole output.

    Examples:
        >>> import torch
        >>> ftn = FastThinkingNetwork(widths=(8, 16, 32)).eval()
        >>> out = ftn(torch.rand(2, 1, 32, 32))
        >>> tuple(out.logits.shape), tuple(out.reconstruction.shape), tuple(out.z_i.shape)
        ((2, 4, 32, 32), (2, 1, 32, 32), (2, 32, 8, 8))
        >>> bool(out.z_s.min() >= 0)  # the shape code is sparse: it ends in a ReLU
        True
    """

    def __init__(
        self,
        in_channels: int = 1,
        num_classes: int = 4,
        widths: Sequence[int] = PAPER_WIDTHS,
        code_sharing: str = "decoupled",
    ):
        super().__init__()
        if code_sharing not in CODE_SHARING:
            raise ValueError(f"code_sharing must be one of {CODE_SHARING}, not {code_sharing!r}")
        widths = check_widths(widths)
        self.code_sharing = code_sharing
        self.encoder = Encoder(in_channels, widths)
        # Share code (a) has no decoupler at all, so no parameter sits unused (DistributedDataParallel needs that).
        self.decoupler = Decoupler(widths[-1]) if code_sharing != "image" else None
        self.image_decoder = Decoder(in_channels, widths, upsampling="transposed")
        self.segmentation_decoder = Decoder(num_classes, widths, upsampling="nearest")
        initialise_weights(self)

    def codes(self, x: torch.Tensor) -> tuple:
        """(z_i, z_s) for images x, following ``code_sharing``."""
        z = self.encoder(x)
        if self.code_sharing == "image":
            return z, z
        z_s = self.decoupler(z)
        if self.code_sharing == "shape":
            return z_s, z_s
        return z, z_s

    def reconstruct(self, z_i: torch.Tensor) -> torch.Tensor:
        """D_i: image code -> image in [0, 1]."""
        return torch.sigmoid(self.image_decoder(z_i))

    def segment(self, z_s: torch.Tensor) -> torch.Tensor:
        """D_s: shape code -> segmentation logits."""
        return self.segmentation_decoder(z_s)

    def forward(self, x: torch.Tensor) -> FTNOutput:
        z_i, z_s = self.codes(x)
        return FTNOutput(self.segment(z_s), self.reconstruct(z_i), z_i, z_s)
