"""Networks: residual blocks, the fast-thinking network (FTN) and the slow-thinking network (STN)."""

from CoopSegLib.networks.codec import PAPER_WIDTHS, Decoder, Encoder, size_divisor
from CoopSegLib.networks.ftn import CODE_SHARING, FastThinkingNetwork, FTNOutput
from CoopSegLib.networks.stn import DEFAULT_TEMPERATURE, ShapeAutoencoder, one_hot, soften

__all__ = [
    "CODE_SHARING",
    "DEFAULT_TEMPERATURE",
    "PAPER_WIDTHS",
    "Decoder",
    "Encoder",
    "FTNOutput",
    "FastThinkingNetwork",
    "ShapeAutoencoder",
    "one_hot",
    "size_divisor",
    "soften",
]
