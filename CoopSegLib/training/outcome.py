"""What a training run hands back: where it ran, how far it got, its bundle and its best validation."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from CoopSegLib.training.validation import ValidationResult


@dataclass
class TrainingOutcome:
    run_dir: Path
    step: int
    total_steps: int
    interrupted: Optional[str]  # the signal that stopped the run, or None when it completed
    bundle: Optional[Path] = None
    best: Optional[ValidationResult] = None  # the validation with the best FTN+STN Dice, and its step
    best_step: Optional[int] = None
    samples_per_s: float = float("nan")
