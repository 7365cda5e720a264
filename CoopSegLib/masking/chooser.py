"""The random chooser: for each code, one masking scheme drawn uniformly, with p ~ U(0, 0.5) (paper §2.4, §3)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, NamedTuple, Optional, Sequence

import torch

from CoopSegLib.masking.dropout import random_dropout_mask
from CoopSegLib.masking.fraction import MAX_MASK_FRACTION
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


def mask_code(z: torch.Tensor, scheme: str, fraction: float, gradient: Callable[[], torch.Tensor],
              soft_masking: bool = True, soft_factor: Optional[float] = None, mask_ranking: str = "magnitude",
              generator: Optional[torch.Generator] = None) -> MaskedCode:
    """Mask z with one scheme at fraction p: the one entry point that training and the previews share.

    ``gradient()`` returns the task-loss gradient for z; it is called only for targeted schemes. Targeted masks
    give masked units a ~ U(0, 0.5) when ``soft_masking`` (0 otherwise), or ``soft_factor`` when given; dropout
    always zeros whole channels.
    """
    if scheme == "dropout":
        mask = random_dropout_mask(z, fraction, generator)
    else:
        make = targeted_channel_mask if scheme == "channel" else targeted_spatial_mask
        mask = make(gradient(), fraction, soft_masking, generator, factor=soft_factor, code=z, ranking=mask_ranking)
    return MaskedCode(z * mask, scheme, fraction)


@dataclass
class LatentMasker:
    """Masks a latent code with a scheme drawn from ``schemes`` at p ~ U(0, ``max_mask_fraction``).

    ``schemes=("dropout",)`` is the "w.o. G_ch, G_sp" ablation. ``soft_masking`` selects soft targeted masks
    (a ~ U(0, 0.5)); hard masks use a = 0. Dropout always zeros whole channels. ``mask_ranking``: how targeted
    schemes rank units, one of RANKINGS (masking/targeted.py). The names are CooperativeConfig's.
    """

    schemes: Sequence[str] = MASKING_SCHEMES
    max_mask_fraction: float = MAX_MASK_FRACTION
    soft_masking: bool = True
    mask_ranking: str = "magnitude"

    def __post_init__(self):
        self.schemes = check_schemes(self.schemes)
        if self.mask_ranking not in RANKINGS:
            raise ValueError(f"mask_ranking must be one of {', '.join(RANKINGS)}, not {self.mask_ranking!r}")
        if not 0.0 <= self.max_mask_fraction <= 1.0:
            raise ValueError(f"max_mask_fraction must lie in [0, 1], got {self.max_mask_fraction}")

    def draw(self, generator: Optional[torch.Generator] = None) -> tuple:
        """(scheme, p): a scheme uniformly from ``schemes`` and p ~ U(0, max_mask_fraction)."""
        scheme = self.schemes[int(torch.randint(len(self.schemes), (1,), generator=generator))]
        fraction = float(torch.rand(1, generator=generator)) * self.max_mask_fraction
        return scheme, fraction

    def __call__(self, z: torch.Tensor, gradient: Callable[[], torch.Tensor],
                 generator: Optional[torch.Generator] = None) -> MaskedCode:
        """Mask z with a drawn scheme and fraction (see ``mask_code``)."""
        scheme, fraction = self.draw(generator)
        return mask_code(z, scheme, fraction, gradient, self.soft_masking, mask_ranking=self.mask_ranking,
                         generator=generator)
