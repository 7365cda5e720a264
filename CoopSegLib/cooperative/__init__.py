"""Cooperative training: losses, hard-example generation, the cooperative objective and the trainer."""

from CoopSegLib.cooperative.config import VARIANTS, CooperativeConfig
from CoopSegLib.cooperative.hard_examples import HardExamples, frozen_batchnorm_statistics, generate_hard_examples
from CoopSegLib.cooperative.losses import reconstruction_loss, segmentation_loss
from CoopSegLib.cooperative.model import CooperativeLoss, CooperativeModel, Prediction
from CoopSegLib.cooperative.trainer import CooperativeTrainer
from CoopSegLib.runtime import resolve_device  # its home is CoopSegLib.runtime; kept here for existing callers

__all__ = [
    "VARIANTS",
    "CooperativeConfig",
    "CooperativeLoss",
    "CooperativeModel",
    "CooperativeTrainer",
    "HardExamples",
    "Prediction",
    "frozen_batchnorm_statistics",
    "generate_hard_examples",
    "reconstruction_loss",
    "resolve_device",
    "segmentation_loss",
]
