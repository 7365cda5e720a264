"""What is trained and how: one configuration selects the proposed method or any of its paper baselines/ablations.

Variants (``CooperativeConfig.variant(name)``):
  cooperative     the proposed method: L_std + L_hard, STN gradients flow into the FTN, all three mask generators
  standard        "standard training" (Table 1, first row): L_std only
  no_targeted     "w.o. G_ch, G_sp" (Table 2): random channel dropout is the only mask generator
  shared_code_a   "share code (a)" (Table 2): z_s = z_i, no decoupler H
  shared_code_b   "share code (b)" (Table 2): z_i = z_s = H(E(x)), the image decoder reads the shape code
  separate        "separate training" (Table 2): the STN learns from detached FTN outputs; no gradient reaches the FTN
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from CoopSegLib.errors import ConfigError
from CoopSegLib.masking import MASKING_SCHEMES
from CoopSegLib.masking.chooser import check_schemes
from CoopSegLib.masking.targeted import RANKINGS
from CoopSegLib.networks import CODE_SHARING, PAPER_WIDTHS
from CoopSegLib.networks.codec import check_widths

VARIANTS: dict = {
    "cooperative": {},
    "standard": {"hard_examples": False},
    "no_targeted": {"masking_schemes": ("dropout",)},
    "shared_code_a": {"code_sharing": "image"},
    "shared_code_b": {"code_sharing": "shape"},
    "separate": {"cooperative_gradients": False},
}


@dataclass(frozen=True)
class CooperativeConfig:
    # Networks
    in_channels: int = 1
    num_classes: int = 4
    widths: tuple = PAPER_WIDTHS
    code_sharing: str = "decoupled"
    # Losses
    hard_examples: bool = True  # add L_hard (eq. 5) to L_std (eq. 1)
    cooperative_gradients: bool = True  # L_shp(C(p), y) sends gradients into the FTN (False: separate training)
    # The paper's eq. 1 weighs every term 1; the authors' code weighed reconstruction 0.5. We follow the paper.
    reconstruction_weight: float = 1.0
    temperature: float = 2.0  # the STN sees softmax(logits / T)
    # The authors' code feeds the FTN x' = clamp(x + 0.05 N(0, 1), 0, 1) in L_std (the paper is silent):
    # kept; 0 disables it.
    input_noise_std: float = 0.05
    # Latent masking
    masking_schemes: tuple = MASKING_SCHEMES
    max_mask_fraction: float = 0.5
    soft_masking: bool = True
    # How G_ch and G_sp rank latent units: "magnitude" (mean |gradient|, as before) or "expected_loss"
    # (-sum of gradient x code, the first-order loss increase of masking; masking/targeted.py).
    mask_ranking: str = "magnitude"
    # Optimiser (Adam on every module, no scheduler, as in the paper)
    learning_rate: float = 1e-4

    def __post_init__(self):
        problems = []
        # The networks' and masker's own checks, run here so a bad setting fails before anything is built.
        for key, check in (("widths", check_widths), ("masking_schemes", check_schemes)):
            try:
                object.__setattr__(self, key, check(getattr(self, key)))
            except (TypeError, ValueError) as error:
                problems.append(f"{key}: {error}")
        if self.mask_ranking not in RANKINGS:
            problems.append(f"mask_ranking must be one of {RANKINGS}, got {self.mask_ranking!r}")
        if self.code_sharing not in CODE_SHARING:
            problems.append(f"code_sharing must be one of {CODE_SHARING}, got {self.code_sharing!r}")
        if not 0.0 <= self.max_mask_fraction <= 1.0:
            problems.append(f"max_mask_fraction must lie in [0, 1], got {self.max_mask_fraction}")
        for key in ("in_channels", "num_classes"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be at least 1, got {getattr(self, key)}")
        for key in ("temperature", "learning_rate"):
            if not getattr(self, key) > 0:
                problems.append(f"{key} must be positive, got {getattr(self, key)}")
        for key in ("reconstruction_weight", "input_noise_std"):
            if getattr(self, key) < 0:
                problems.append(f"{key} must not be negative, got {getattr(self, key)}")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def variant(cls, name: str, **overrides: Any) -> "CooperativeConfig":
        """The named method variant (see the module docstring), with optional overrides."""
        if name not in VARIANTS:
            raise ConfigError(f"unknown method variant {name!r}; choose one of {sorted(VARIANTS)}")
        return cls.from_dict({**VARIANTS[name], **overrides})

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "CooperativeConfig":
        """Build from plain values (a YAML section, a bundle's metadata); unknown keys are an error naming them."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown method setting(s) {unknown}; known settings: {sorted(known)}")
        try:
            return cls(**dict(values))
        except TypeError as error:
            raise ConfigError(f"invalid method setting: {error}") from None

    def to_dict(self) -> dict:
        """JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def replace(self, **changes: Any) -> "CooperativeConfig":
        return replace(self, **changes)
