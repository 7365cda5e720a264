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

from dataclasses import dataclass, field, fields, replace
from typing import Any, Mapping

from CoopSegLib.errors import ConfigError
from CoopSegLib.masking import MASKING_SCHEMES
from CoopSegLib.masking.chooser import check_schemes
from CoopSegLib.masking.targeted import RANKINGS
from CoopSegLib.networks.config import NetworkConfig

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
    """How a model is trained: its architecture (``network``) and the objective, hard examples and optimiser.

    Settings are read flat, as the YAML ``method:`` sections and old bundles write them: the architecture's keys
    (in_channels, num_classes, widths, code_sharing, temperature) go to ``network``, the rest stay here.

    >>> config = CooperativeConfig.variant("separate", widths=(8, 16, 32), learning_rate=3e-4)
    >>> config.cooperative_gradients, config.network.widths, config.learning_rate
    (False, (8, 16, 32), 0.0003)
    >>> CooperativeConfig.from_dict(config.to_dict()) == config
    True
    """

    network: NetworkConfig = field(default_factory=NetworkConfig)
    # Losses
    hard_examples: bool = True  # add L_hard (eq. 5) to L_std (eq. 1)
    cooperative_gradients: bool = True  # L_shp(C(p), y) sends gradients into the FTN (False: separate training)
    # The paper's eq. 1 weighs every term 1; the authors' code weighed reconstruction 0.5. We follow the paper.
    reconstruction_weight: float = 1.0
    # The authors' code feeds the FTN x' = clamp(x + 0.05 N(0, 1), 0, 1) in L_std (the paper is silent):
    # kept; 0 disables it.
    input_noise_std: float = 0.05
    # L_seg and L_shp are the paper's cross-entropy; a positive weight adds that times a soft (batch) Dice loss
    # over the foreground classes, as nnU-Net trains (a departure from the paper). Targeted masking still ranks
    # latent units by the cross-entropy's gradient.
    dice_weight: float = 0.0
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
        if not isinstance(self.network, NetworkConfig):
            problems.append(f"network must be a NetworkConfig, got {type(self.network).__name__}")
        try:  # the masker's own check, run here so a bad setting fails before anything is built
            object.__setattr__(self, "masking_schemes", check_schemes(self.masking_schemes))
        except (TypeError, ValueError) as error:
            problems.append(f"masking_schemes: {error}")
        if self.mask_ranking not in RANKINGS:
            problems.append(f"mask_ranking must be one of {RANKINGS}, got {self.mask_ranking!r}")
        if not 0.0 <= self.max_mask_fraction <= 1.0:
            problems.append(f"max_mask_fraction must lie in [0, 1], got {self.max_mask_fraction}")
        if not self.learning_rate > 0:
            problems.append(f"learning_rate must be positive, got {self.learning_rate}")
        for key in ("reconstruction_weight", "input_noise_std", "dice_weight"):
            if not getattr(self, key) >= 0:  # also catches NaN
                problems.append(f"{key} must not be negative, got {getattr(self, key)}")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def variant(cls, name: str, **overrides: Any) -> "CooperativeConfig":
        """The named method variant (see the module docstring), with optional overrides (flat keys)."""
        if name not in VARIANTS:
            raise ConfigError(f"unknown method variant {name!r}; choose one of {sorted(VARIANTS)}")
        return cls.from_dict({**VARIANTS[name], **overrides})

    @classmethod
    def keys(cls) -> tuple:
        """Every setting name a flat mapping may use: the network's and the objective's."""
        return NetworkConfig.keys() + tuple(f.name for f in fields(cls) if f.name != "network")

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "CooperativeConfig":
        """Build from plain values: flat (a YAML ``method:`` section, an old bundle's "architecture") or with the
        architecture nested under "network" (``to_dict``); unknown keys are an error naming them."""
        values = dict(values)
        network = values.pop("network", {})
        if isinstance(network, NetworkConfig):
            network = network.to_dict()
        known = set(cls.keys())
        unknown = sorted(set(values) - known) + sorted(set(network) - set(NetworkConfig.keys()))
        if unknown:
            raise ConfigError(f"unknown method setting(s) {unknown}; known settings: {sorted(known)}")
        network = {**network, **{k: values.pop(k) for k in NetworkConfig.keys() if k in values}}
        try:
            return cls(network=NetworkConfig(**network), **values)
        except TypeError as error:
            raise ConfigError(f"invalid method setting: {error}") from None

    def to_dict(self) -> dict:
        """JSON-ready values (tuples become lists), the architecture under "network"."""
        values = {f.name: getattr(self, f.name) for f in fields(self) if f.name != "network"}
        return {"network": self.network.to_dict(),
                **{k: list(v) if isinstance(v, tuple) else v for k, v in values.items()}}

    def objective_dict(self) -> dict:
        """The training settings alone, JSON-ready (what a bundle records beside its "network")."""
        return {k: v for k, v in self.to_dict().items() if k != "network"}

    def replace(self, **changes: Any) -> "CooperativeConfig":
        """A copy with some settings changed; flat network keys (e.g. ``widths``) change ``network``."""
        network = {k: changes.pop(k) for k in NetworkConfig.keys() if k in changes}
        if network:
            changes["network"] = changes.get("network", self.network).replace(**network)
        return replace(self, **changes)
