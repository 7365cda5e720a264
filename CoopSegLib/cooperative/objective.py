"""The cooperative objective L_std + L_hard as a module whose forward pass is the training loss of a batch.

It holds the ``CoopSegModel`` it trains as a submodule, so a single DistributedDataParallel wrapper around the
objective covers both networks and one backward pass serves every loss term. The model itself stays free of the
objective: bundles and checkpoints store only its ``ftn.*`` / ``stn.*`` weights.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from CoopSegLib.cooperative.config import CooperativeConfig
from CoopSegLib.cooperative.hard_examples import HardExamples, generate_hard_examples
from CoopSegLib.cooperative.losses import reconstruction_loss, segmentation_loss
from CoopSegLib.masking import LatentMasker
from CoopSegLib.networks import CoopSegModel, one_hot, soften


class CooperativeLoss(NamedTuple):
    total: torch.Tensor
    terms: dict  # name -> scalar tensor: "std/rec", "std/seg", "std/shp_pred", "std/shp_gt", "hard/..." likewise
    hard: Optional[HardExamples]


class CooperativeObjective(nn.Module):
    """L_std + L_hard (paper eqs. 1 and 5) of ``model`` under ``config``'s objective settings.

    >>> import torch
    >>> config = CooperativeConfig.variant("standard", widths=(8, 16, 32))
    >>> objective = CooperativeObjective(config).train()
    >>> loss = objective(torch.rand(2, 1, 32, 32), torch.randint(0, 4, (2, 32, 32)))
    >>> sorted(loss.terms)
    ['std/rec', 'std/seg', 'std/shp_gt', 'std/shp_pred']
    """

    def __init__(self, config: Optional[CooperativeConfig] = None, model: Optional[CoopSegModel] = None):
        super().__init__()
        self.config = config = config if config is not None else CooperativeConfig()
        self.model = model if model is not None else CoopSegModel(config.network)
        if self.model.config != config.network:
            raise ValueError(f"the model's architecture {self.model.config} is not the config's {config.network}")
        self.masker = LatentMasker(config.masking_schemes, config.max_mask_fraction, config.soft_masking,
                                   config.mask_ranking)

    def shape_loss(self, logits: torch.Tensor, labels: torch.Tensor, to_ftn: bool) -> torch.Tensor:
        """L_shp(C(softmax(logits / T)), y); ``to_ftn`` lets its gradient reach whatever produced the logits."""
        probabilities = soften(logits, self.model.config.temperature)
        return segmentation_loss(self.model.stn(probabilities if to_ftn else probabilities.detach()), labels,
                                 self.config.dice_weight)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> CooperativeLoss:
        """The training objective for a batch: images N x 1 x H x W in [0, 1], labels N x H x W."""
        config, cooperative = self.config, self.config.cooperative_gradients
        dice = config.dice_weight
        ftn, stn = self.model.ftn, self.model.stn
        inputs = images
        if config.input_noise_std > 0:
            inputs = (images + config.input_noise_std * torch.randn_like(images)).clamp(0.0, 1.0)
        easy = ftn(inputs)
        terms = {
            "std/rec": reconstruction_loss(easy.reconstruction, images),
            "std/seg": segmentation_loss(easy.logits, labels, dice),
            "std/shp_pred": self.shape_loss(easy.logits, labels, to_ftn=cooperative),
            "std/shp_gt": segmentation_loss(stn(one_hot(labels, config.network.num_classes).to(images.dtype)),
                                            labels, dice),
        }
        hard = None
        if config.hard_examples:
            hard = generate_hard_examples(ftn, self.masker, easy.z_i, easy.z_s, images, labels)
            on_hard = ftn(hard.image)
            terms.update({
                "hard/rec": reconstruction_loss(on_hard.reconstruction, images),
                "hard/seg": segmentation_loss(on_hard.logits, labels, dice),
                "hard/shp_pred": self.shape_loss(on_hard.logits, labels, to_ftn=cooperative),
                "hard/shp_corrupt": self.shape_loss(hard.logits, labels, to_ftn=False),  # p_hat carries no gradient
            })
        weights = {name: config.reconstruction_weight if name.endswith("/rec") else 1.0 for name in terms}
        total = sum(weights[name] * value for name, value in terms.items())
        return CooperativeLoss(total, terms, hard)
