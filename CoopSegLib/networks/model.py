"""The CoopSeg model: the FTN and the STN built from one ``NetworkConfig``, with the one prediction path.

Every caller that wants a segmentation (the trainer's validation and pictures, the ``Segmenter``, the hard-example
previews, the Slicer module through the worker) calls ``predict(images, stage)``: the FTN's codes and logits, then
for stage "stn" the STN's refinement of softmax(float32 logits / T). The image decoder is not run (segmentation
does not need it); callers that want D_i call ``reconstruct`` on the returned image code. Nothing outside the
networks and the training objective reaches into ``ftn`` or ``stn``.
"""

from __future__ import annotations

from typing import NamedTuple, Optional

import torch
from torch import nn

from CoopSegLib.networks.config import NetworkConfig
from CoopSegLib.networks.ftn import FastThinkingNetwork
from CoopSegLib.networks.stn import ShapeAutoencoder
from CoopSegLib.vocabulary import STAGES  # output of the fast-thinking network alone, or refined by the STN



class Prediction(NamedTuple):
    initial: torch.Tensor  # FTN logits p, N x classes x H x W, float32
    refined: Optional[torch.Tensor]  # STN logits p' = C(softmax(p / T)), float32; None for stage "ftn"
    z_i: torch.Tensor  # image code E(x), as computed (bf16 under autocast)
    z_s: torch.Tensor  # shape code H(z_i)


class CoopSegModel(nn.Module):
    """The fast-thinking network (``ftn``) and the slow-thinking network (``stn``) of one architecture.

    Its state dict holds ``ftn.*`` and ``stn.*`` only, as bundles and training checkpoints store it. Numerics
    (device, bf16 autocast, channels_last) are the caller's: see ``CoopSegLib.runtime``.

    >>> import torch
    >>> model = CoopSegModel(NetworkConfig(widths=(8, 16, 32))).eval()
    >>> prediction = model.predict(torch.rand(2, 1, 32, 32), stage="stn")
    >>> prediction.initial.shape, prediction.refined.shape
    (torch.Size([2, 4, 32, 32]), torch.Size([2, 4, 32, 32]))
    >>> model.predict(torch.rand(2, 1, 32, 32), stage="ftn").refined is None
    True
    >>> model.reconstruct(prediction.z_i).shape
    torch.Size([2, 1, 32, 32])
    """

    def __init__(self, config: Optional[NetworkConfig] = None):
        super().__init__()
        self.config = config = config if config is not None else NetworkConfig()
        self.ftn = FastThinkingNetwork(config.in_channels, config.num_classes, config.widths, config.code_sharing)
        self.stn = ShapeAutoencoder(config.num_classes, config.widths)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, stage: str = "stn") -> Prediction:
        """FTN logits and, for ``stage`` "stn", their STN refinement for images N x in_channels x H x W in [0, 1].

        Runs in whatever mode (train/eval) the model is in. The logits are float32 whatever the autocast; the STN
        reads the float32 FTN logits, so bf16 and fp32 runs differ only by the networks' own rounding.
        """
        if stage not in STAGES:
            raise ValueError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        z_i, z_s = self.ftn.codes(images)
        initial = self.ftn.segment(z_s).float()
        refined = self.stn.refine(initial, self.config.temperature).float() if stage == "stn" else None
        return Prediction(initial, refined, z_i, z_s)

    @torch.no_grad()
    def reconstruct(self, z_i: torch.Tensor) -> torch.Tensor:
        """D_i(z_i): the image decoder's image in [0, 1] for an image code (``Prediction.z_i``, or part of one: the
        decoder has no skip connections, so a crop of the code decodes to the matching crop of the image)."""
        return self.ftn.reconstruct(z_i)
