"""Cooperative training: losses, hard-example generation, the cooperative objective, its settings and the trainer.

The networks and the model they make up live in ``CoopSegLib.networks``; this package only trains them.
"""

from CoopSegLib.cooperative.config import VARIANTS, CooperativeConfig
from CoopSegLib.cooperative.hard_examples import HardExamples, frozen_batchnorm_statistics, generate_hard_examples
from CoopSegLib.cooperative.losses import reconstruction_loss, segmentation_loss
from CoopSegLib.cooperative.objective import CooperativeLoss, CooperativeObjective
from CoopSegLib.cooperative.trainer import CooperativeTrainer
from CoopSegLib.runtime import resolve_device  # its home is CoopSegLib.runtime; kept here for existing callers

__all__ = [
    "VARIANTS",
    "CooperativeConfig",
    "CooperativeLoss",
    "CooperativeObjective",
    "CooperativeTrainer",
    "HardExamples",
    "frozen_batchnorm_statistics",
    "generate_hard_examples",
    "reconstruction_loss",
    "resolve_device",
    "segmentation_loss",
]
