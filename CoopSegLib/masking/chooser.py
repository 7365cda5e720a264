"""The random chooser: for each code, one masking scheme drawn uniformly, with p ~ U(0, 0.5) (paper §2.4, §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence

import torch

from CoopSegLib.masking.dropout import random_dropout_mask
from CoopSegLib.masking.fraction import MAX_FRACTION
from CoopSegLib.masking.targeted import RANKINGS, targeted_channel_mask, targeted_spatial_mask

MASKING_SCHEMES = ("dropout", "channel", "spatial")


def check_schemes(schemes: Sequence[str]) -> tuple:
    """The schemes as a tuple; a ValueError unless they are a non-empty subset of MASKING_SCHEMES."""
    schemes = tuple(schemes)
    if not schemes or set(schemes) - set(MASKING_SCHEMES):
        raise ValueError(f"masking schemes must be a non-empty subset of {MASKING_SCHEMES}, got {schemes}")
    return schemes


class MaskedCode(NamedTuple):
    code: torch.Tensor
    scheme: str
    fraction: float


@dataclass
class LatentMasker:
    """Masks a latent code with a scheme drawn from ``schemes``.

    ``schemes=("dropout",)`` is the "w.o. G_ch, G_sp" ablation. ``soft`` selects soft targeted masks
    (a ~ U(0, 0.5)); hard masks use a = 0. Dropout always zeros whole channels. ``ranking``: how targeted
    schemes rank units, one of RANKINGS (masking/targeted.py).
    """

    schemes: Sequence[str] = MASKING_SCHEMES
    max_fraction: float = MAX_FRACTION
    soft: bool = True
    ranking: str = "magnitude"

    def __post_init__(self):
        self.schemes = check_schemes(self.schemes)
        if self.ranking not in RANKINGS:
            raise ValueError(f"ranking must be one of {', '.join(RANKINGS)}, not {self.ranking!r}")
        if not 0.0 <= self.max_fraction <= 1.0:
            raise ValueError(f"max_fraction must lie in [0, 1], got {self.max_fraction}")

    def draw(self, generator: Optional[torch.Generator] = None) -> tuple:
        """(scheme, p): a scheme uniformly from ``schemes`` and p ~ U(0, max_fraction)."""
        scheme = self.schemes[int(torch.randint(len(self.schemes), (1,), generator=generator))]
        fraction = float(torch.rand(1, generator=generator)) * self.max_fraction
        return scheme, fraction

    def __call__(self, z: torch.Tensor, gradient: Callable[[], torch.Tensor],
                 generator: Optional[torch.Generator] = None) -> MaskedCode:
        """Mask z. ``gradient()`` returns the task-loss gradient for z; it is called only for targeted schemes."""
        scheme, fraction = self.draw(generator)
        if scheme == "dropout":
            mask = random_dropout_mask(z, fraction, generator)
        elif scheme == "channel":
            mask = targeted_channel_mask(gradient(), fraction, self.soft, generator, code=z, ranking=self.ranking)
        else:
            mask = targeted_spatial_mask(gradient(), fraction, self.soft, generator, code=z, ranking=self.ranking)
        return MaskedCode(z * mask, scheme, fraction)
