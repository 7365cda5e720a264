"""Residual convolution blocks shared by every encoder and decoder (paper Supple. Fig. 5).

The block layout follows the authors' "FCN_16_standard" network: a residual body of two 3x3 conv + BatchNorm
layers with LeakyReLU(0.2), a 1x1 convolution on the shortcut, the sum passed through LeakyReLU(0.2).
"""

from __future__ import annotations

import torch
from torch import nn

NEGATIVE_SLOPE = 0.2


def conv_bn_act(in_channels: int, out_channels: int, activation: nn.Module | None = None) -> nn.Sequential:
    """3x3 convolution (no bias: BatchNorm follows), BatchNorm, activation (LeakyReLU(0.2) by default)."""
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=False),
        nn.BatchNorm2d(out_channels),
        activation if activation is not None else nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True),
    )


class ResidualBody(nn.Module):
    """conv3x3-BN-LReLU-conv3x3-BN plus a 1x1 conv shortcut; the sum goes through LReLU(0.2)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.body = nn.Sequential(
            conv_bn_act(in_channels, out_channels),
            nn.Conv2d(out_channels, out_channels, kernel_size=3, padding=1, bias=False),
            nn.BatchNorm2d(out_channels),
        )
        self.shortcut = nn.Conv2d(in_channels, out_channels, kernel_size=1)
        self.activation = nn.LeakyReLU(NEGATIVE_SLOPE, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.activation(self.body(x) + self.shortcut(x))


class ResidualDownBlock(nn.Module):
    """Halve the resolution with a stride-2 3x3 conv (channels kept), then a residual body."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.down = nn.Conv2d(in_channels, in_channels, kernel_size=3, stride=2, padding=1)
        self.residual = ResidualBody(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(self.down(x))


class ResidualUpBlock(nn.Module):
    """Double the resolution, then a residual body.

    ``upsampling="nearest"`` for segmentation decoders (no checkerboard in label maps),
    ``"transposed"`` (2x2 transposed conv, stride 2) for the image decoder.
    """

    def __init__(self, in_channels: int, out_channels: int, upsampling: str = "nearest"):
        super().__init__()
        if upsampling == "nearest":
            self.up = nn.Upsample(scale_factor=2, mode="nearest")
        elif upsampling == "transposed":
            self.up = nn.ConvTranspose2d(in_channels, in_channels, kernel_size=2, stride=2)
        else:
            raise ValueError(f"upsampling must be 'nearest' or 'transposed', not {upsampling!r}")
        self.residual = ResidualBody(in_channels, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(self.up(x))


def initialise_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions, BatchNorm weight ~ N(1, 0.02), zero biases (the authors' initialisation)."""
    for layer in module.modules():
        if isinstance(layer, (nn.Conv2d, nn.ConvTranspose2d)):
            nn.init.kaiming_normal_(layer.weight, a=NEGATIVE_SLOPE, nonlinearity="leaky_relu")
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.BatchNorm2d):
            nn.init.normal_(layer.weight, 1.0, 0.02)
            nn.init.zeros_(layer.bias)
