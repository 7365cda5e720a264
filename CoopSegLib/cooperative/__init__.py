"""Cooperative training: losses, hard-example generation, the cooperative objective, its settings and the trainer.

The networks and the model they make up live in ``CoopSegLib.networks``; this package only trains them.
Its names load on first use (``CoopSegLib.lazy``): importing one module of the package (the previews take
``hard_examples``) never loads the trainer with its optimiser, weight average and DistributedDataParallel.
"""

from CoopSegLib.lazy import lazy_names

_HOMES = {
    "VARIANTS": "CoopSegLib.cooperative.config",
    "CooperativeConfig": "CoopSegLib.cooperative.config",
    "HardExamples": "CoopSegLib.cooperative.hard_examples",
    "frozen_batchnorm_statistics": "CoopSegLib.cooperative.hard_examples",
    "generate_hard_examples": "CoopSegLib.cooperative.hard_examples",
    "reconstruction_loss": "CoopSegLib.cooperative.losses",
    "segmentation_loss": "CoopSegLib.cooperative.losses",
    "soft_dice_loss": "CoopSegLib.cooperative.losses",
    "CooperativeLoss": "CoopSegLib.cooperative.objective",
    "CooperativeObjective": "CoopSegLib.cooperative.objective",
    "CooperativeTrainer": "CoopSegLib.cooperative.trainer",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
