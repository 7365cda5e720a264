"""U-net-like encoder and decoder without skip connections (the latent code is the only path).

``widths`` lists the channels of the input block and of each down block: the paper's (16, 32, 64, 128, 128)
gives four down blocks (input size divisible by 16) and a 128-channel code, 128x12x12 for a 192x192 slice.
"""

from __future__ import annotations

from typing import Sequence

import torch
from torch import nn

from CoopSegLib.networks.blocks import ResidualDownBlock, ResidualUpBlock, conv_bn_act

PAPER_WIDTHS = (16, 32, 64, 128, 128)


def check_widths(widths: Sequence[int]) -> tuple:
    widths = tuple(int(w) for w in widths)
    if len(widths) < 2 or any(w <= 0 for w in widths):
        raise ValueError(
            f"widths needs at least two positive channel counts (input block, one down block), got {widths}"
        )
    return widths


def size_divisor(widths: Sequence[int]) -> int:
    """Input height and width must be multiples of this (one halving per down block)."""
    return 2 ** (len(widths) - 1)


def decoder_widths(widths: Sequence[int]) -> tuple:
    """Output channels of each up block: at every resolution, the encoder's width one level shallower.

    For the paper's widths this is 128 -> 64 -> 32 -> 16 -> 16, the authors' decoder.
    """
    depth = len(widths) - 1
    return tuple(widths[max(level - 1, 0)] for level in reversed(range(depth)))


class Encoder(nn.Module):
    """Input block, ``len(widths) - 1`` residual down blocks, then 1x1 conv + BN + ReLU to the latent code."""

    def __init__(self, in_channels: int, widths: Sequence[int] = PAPER_WIDTHS):
        super().__init__()
        widths = check_widths(widths)
        self.input_block = nn.Sequential(conv_bn_act(in_channels, widths[0]), conv_bn_act(widths[0], widths[0]))
        self.down_blocks = nn.Sequential(
            *(ResidualDownBlock(w_in, w_out) for w_in, w_out in zip(widths[:-1], widths[1:]))
        )
        self.to_code = nn.Sequential(
            nn.Conv2d(widths[-1], widths[-1], kernel_size=1, bias=False),
            nn.BatchNorm2d(widths[-1]),
            nn.ReLU(inplace=True),
        )
        self.divisor = size_divisor(widths)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        height, width = x.shape[-2:]
        if height % self.divisor or width % self.divisor:
            raise ValueError(
                f"input size {height}x{width} is not a multiple of {self.divisor}; pad or crop the slices first"
            )
        return self.to_code(self.down_blocks(self.input_block(x)))


class Decoder(nn.Module):
    """Residual up blocks back to full resolution, then a 1x1 conv to ``out_channels`` (no activation)."""

    def __init__(self, out_channels: int, widths: Sequence[int] = PAPER_WIDTHS, upsampling: str = "nearest"):
        super().__init__()
        widths = check_widths(widths)
        channels = (widths[-1],) + decoder_widths(widths)
        self.up_blocks = nn.Sequential(
            *(ResidualUpBlock(c_in, c_out, upsampling) for c_in, c_out in zip(channels[:-1], channels[1:]))
        )
        self.head = nn.Conv2d(channels[-1], out_channels, kernel_size=1)

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.head(self.up_blocks(z))
