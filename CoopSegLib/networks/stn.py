"""Slow-thinking network (STN) C: a denoising shape autoencoder that refines a segmentation with a learned shape prior.

Its input is a per-class probability map: softmax(logits / T) for a prediction (temperature T = 2 as in the authors'
code) or the one-hot ground truth. Its output is refined segmentation logits.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from CoopSegLib.networks.blocks import initialise_weights
from CoopSegLib.networks.codec import PAPER_WIDTHS, Decoder, Encoder

DEFAULT_TEMPERATURE = 2.0


def soften(logits: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
    """The STN's view of a prediction: softmax(logits / T) over the class axis."""
    return torch.softmax(logits / temperature, dim=1)


def one_hot(labels: torch.Tensor, num_classes: int) -> torch.Tensor:
    """N x H x W integer labels -> N x classes x H x W float one-hot map."""
    return F.one_hot(labels.long(), num_classes).permute(0, 3, 1, 2).float()


class ShapeAutoencoder(nn.Module):
    """The STN C: a denoising autoencoder over per-class probability maps, the learned shape prior.

    Args:
        num_classes: classes of the maps it reads and the logits it writes, background included.
        widths: encoder channels, as for ``FastThinkingNetwork`` (inputs must be multiples of
            ``2 ** (len(widths) - 1)``).

    Examples:
        >>> import torch
        >>> stn = ShapeAutoencoder(widths=(8, 16, 32)).eval()
        >>> logits = torch.randn(2, 4, 32, 32)                  # an FTN's prediction
        >>> tuple(stn.refine(logits).shape)                      # refined logits, C(softmax(logits / 2))
        (2, 4, 32, 32)
        >>> truth = one_hot(torch.zeros(2, 32, 32, dtype=torch.long), 4)
        >>> tuple(stn(truth).shape)                              # training feeds one-hot ground truth as well
        (2, 4, 32, 32)
    """

    def __init__(self, num_classes: int = 4, widths: Sequence[int] = PAPER_WIDTHS):
        super().__init__()
        self.num_classes = num_classes
        self.encoder = Encoder(num_classes, widths)
        self.decoder = Decoder(num_classes, widths, upsampling="nearest")
        initialise_weights(self)

    def forward(self, probabilities: torch.Tensor) -> torch.Tensor:
        return self.decoder(self.encoder(probabilities))

    def refine(self, logits: torch.Tensor, temperature: float = DEFAULT_TEMPERATURE) -> torch.Tensor:
        """Refined logits for FTN logits: C(softmax(logits / T)).

        One pass. (The authors' iterative refinement loop fed the FTN logits again on every iteration, so extra
        iterations did nothing; we do not reproduce it.)
        """
        return self(soften(logits, temperature))
