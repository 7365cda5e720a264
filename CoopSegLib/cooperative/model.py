"""The FTN and STN together, with the cooperative objective L_std + L_hard as the forward pass.

Keeping the whole objective in one module's forward lets a single DistributedDataParallel wrapper cover both
networks and lets one backward pass serve every loss term.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from CoopSegLib.cooperative.config import CooperativeConfig
from CoopSegLib.cooperative.hard_examples import HardExamples, generate_hard_examples
from CoopSegLib.cooperative.losses import reconstruction_loss, segmentation_loss
from CoopSegLib.masking import LatentMasker
from CoopSegLib.networks import FastThinkingNetwork, ShapeAutoencoder, one_hot, soften


class CooperativeLoss(NamedTuple):
    total: torch.Tensor
    terms: dict  # name -> scalar tensor: "std/rec", "std/seg", "std/shp_pred", "std/shp_gt", "hard/..." likewise
    hard: Optional[HardExamples]


class Prediction(NamedTuple):
    initial: torch.Tensor  # FTN logits p
    refined: torch.Tensor  # STN logits p' = C(softmax(p / T))
    reconstruction: torch.Tensor  # D_i(E(x))


class CooperativeModel(nn.Module):
    def __init__(self, config: Optional[CooperativeConfig] = None):
        super().__init__()
        config = config if config is not None else CooperativeConfig()
        self.config = config
        self.ftn = FastThinkingNetwork(config.in_channels, config.num_classes, config.widths, config.code_sharing)
        self.stn = ShapeAutoencoder(config.num_classes, config.widths)
        self.masker = LatentMasker(config.masking_schemes, config.max_mask_fraction, config.soft_masking,
                                   config.mask_ranking)

    def shape_loss(self, logits: torch.Tensor, labels: torch.Tensor, to_ftn: bool) -> torch.Tensor:
        """L_shp(C(softmax(logits / T)), y); ``to_ftn`` lets its gradient reach whatever produced the logits."""
        probabilities = soften(logits, self.config.temperature)
        return segmentation_loss(self.stn(probabilities if to_ftn else probabilities.detach()), labels)

    def forward(self, images: torch.Tensor, labels: torch.Tensor) -> CooperativeLoss:
        """The training objective for a batch: images N x 1 x H x W in [0, 1], labels N x H x W."""
        config, cooperative = self.config, self.config.cooperative_gradients
        inputs = images
        if config.input_noise_std > 0:
            inputs = (images + config.input_noise_std * torch.randn_like(images)).clamp(0.0, 1.0)
        easy = self.ftn(inputs)
        terms = {
            "std/rec": reconstruction_loss(easy.reconstruction, images),
            "std/seg": segmentation_loss(easy.logits, labels),
            "std/shp_pred": self.shape_loss(easy.logits, labels, to_ftn=cooperative),
            "std/shp_gt": segmentation_loss(self.stn(one_hot(labels, config.num_classes).to(images.dtype)), labels),
        }
        hard = None
        if config.hard_examples:
            hard = generate_hard_examples(self.ftn, self.masker, easy.z_i, easy.z_s, images, labels)
            on_hard = self.ftn(hard.image)
            terms.update({
                "hard/rec": reconstruction_loss(on_hard.reconstruction, images),
                "hard/seg": segmentation_loss(on_hard.logits, labels),
                "hard/shp_pred": self.shape_loss(on_hard.logits, labels, to_ftn=cooperative),
                "hard/shp_corrupt": self.shape_loss(hard.logits, labels, to_ftn=False),  # p_hat carries no gradient
            })
        weights = {name: config.reconstruction_weight if name.endswith("/rec") else 1.0 for name in terms}
        total = sum(weights[name] * value for name, value in terms.items())
        return CooperativeLoss(total, terms, hard)

    @torch.no_grad()
    def predict(self, images: torch.Tensor) -> Prediction:
        """FTN logits and their STN refinement, in whatever mode (train/eval) the model is in."""
        easy = self.ftn(images)
        return Prediction(easy.logits, self.stn.refine(easy.logits, self.config.temperature), easy.reconstruction)
