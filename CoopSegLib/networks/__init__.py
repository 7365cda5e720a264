"""Networks: residual blocks, the fast-thinking network (FTN), the slow-thinking network (STN), their architecture
settings (``NetworkConfig``) and the model that holds both and predicts (``CoopSegModel``)."""

from CoopSegLib.networks.codec import PAPER_WIDTHS, Decoder, Encoder, size_divisor
from CoopSegLib.networks.config import NetworkConfig
from CoopSegLib.networks.ftn import CODE_SHARING, FastThinkingNetwork, FTNOutput
from CoopSegLib.networks.model import STAGES, CoopSegModel, Prediction
from CoopSegLib.networks.stn import DEFAULT_TEMPERATURE, ShapeAutoencoder, one_hot, soften

__all__ = [
    "CODE_SHARING",
    "DEFAULT_TEMPERATURE",
    "PAPER_WIDTHS",
    "STAGES",
    "CoopSegModel",
    "Decoder",
    "Encoder",
    "FTNOutput",
    "FastThinkingNetwork",
    "NetworkConfig",
    "Prediction",
    "ShapeAutoencoder",
    "one_hot",
    "size_divisor",
    "soften",
]
