"""The architecture of a CoopSeg model, and nothing else: what a bundle needs to rebuild the networks.

How the networks are trained (losses, hard examples, masking, learning rate) is ``CooperativeConfig``'s business.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any, Mapping

from CoopSegLib.errors import ConfigError
from CoopSegLib.networks.codec import PAPER_WIDTHS, check_widths
from CoopSegLib.networks.ftn import CODE_SHARING
from CoopSegLib.networks.stn import DEFAULT_TEMPERATURE


@dataclass(frozen=True)
class NetworkConfig:
    """Channels, classes, widths and code sharing of the FTN and STN, and the STN's softmax temperature.

    ``widths`` are the channels of the encoder's input block and of each down block (the paper's
    (16, 32, 64, 128, 128): four halvings, so slice sizes must be multiples of 16). ``code_sharing`` is
    "decoupled" (the proposed network), "image" or "shape" (Table 2's share-code variants). The STN reads
    softmax(logits / ``temperature``).

    >>> config = NetworkConfig(widths=(8, 16, 32))
    >>> config.num_classes, config.widths
    (4, (8, 16, 32))
    >>> NetworkConfig.from_dict(config.to_dict()) == config
    True
    """

    in_channels: int = 1
    num_classes: int = 4
    widths: tuple = PAPER_WIDTHS
    code_sharing: str = "decoupled"
    temperature: float = DEFAULT_TEMPERATURE

    def __post_init__(self):
        problems = []
        try:
            object.__setattr__(self, "widths", check_widths(self.widths))
        except (TypeError, ValueError) as error:
            problems.append(f"widths: {error}")
        if self.code_sharing not in CODE_SHARING:
            problems.append(f"code_sharing must be one of {CODE_SHARING}, got {self.code_sharing!r}")
        for key in ("in_channels", "num_classes"):
            if getattr(self, key) < 1:
                problems.append(f"{key} must be at least 1, got {getattr(self, key)}")
        if not self.temperature > 0:
            problems.append(f"temperature must be positive, got {self.temperature}")
        if problems:
            raise ConfigError("; ".join(problems))

    @classmethod
    def keys(cls) -> tuple:
        """The setting names, in order."""
        return tuple(f.name for f in fields(cls))

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> "NetworkConfig":
        """Build from plain values (a bundle's "network" section); unknown keys are an error naming them."""
        unknown = sorted(set(values) - set(cls.keys()))
        if unknown:
            raise ConfigError(f"unknown network setting(s) {unknown}; known settings: {list(cls.keys())}")
        try:
            return cls(**dict(values))
        except TypeError as error:
            raise ConfigError(f"invalid network setting: {error}") from None

    def to_dict(self) -> dict:
        """JSON-ready values (tuples become lists)."""
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    def replace(self, **changes: Any) -> "NetworkConfig":
        return replace(self, **changes)
