"""How an evaluation was made: the model and its weights' checksum, the second look, the sets with their seed and
copies, and what the evaluated subjects had done for the model before (``coopseg evaluate`` writes it into
evaluation.md and as columns of evaluation.csv).

A subject's role comes from the bundle's own record: ``training`` (its slices were trained on), ``development``
(a validation subject: it chose the checkpoint, and the quality calibration was fitted on it), ``held out`` (the
bundle records its subjects and this one is not among them), or ``unknown`` (no model, or a bundle without a record).
Figures over development subjects flatter the model; evaluation.md labels them so.

>>> protocol = Protocol(second_look=False, sets=("clean",), roles={"patient042": "development"})
>>> protocol.title().startswith("Development figures"), "the paper's protocol" in protocol.title()
(True, True)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence

from CoopSegLib.data.corruption import CORRUPTIONS, DEVELOPMENT_SEED

TRAINING, DEVELOPMENT, HELD_OUT, UNKNOWN = "training", "development", "held out", "unknown"
TABLE = "Mean Dice over cases and structures (LV, MYO, RV)"


def shown_path(path: Any) -> str:
    """A path as the record shows it: relative to the working folder when it lies inside (the shipped bundle from a
    checkout reads ``CoopSegLib/weights/default.coopseg``, not one machine's absolute path), else absolute."""
    path = Path(path).resolve()
    try:
        return str(path.relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


def calibration_subjects(metadata: Mapping[str, Any]) -> List[str]:
    """The subjects a bundle's quality calibration was fitted on ([] when it records none)."""
    return list(((metadata.get("quality") or {}).get("fitted_on") or {}).get("subjects") or [])


def subject_roles(metadata: Mapping[str, Any], subjects: Sequence[str]) -> Dict[str, str]:
    """subject -> training / development / held out / unknown, from a bundle's training record and calibration."""
    from CoopSegLib.bundle import recorded_subjects

    trained = set(recorded_subjects(metadata, "train"))
    developed = set(recorded_subjects(metadata, "validation")) | set(calibration_subjects(metadata))
    recorded = bool(trained or developed)
    return {s: TRAINING if s in trained else DEVELOPMENT if s in developed else HELD_OUT if recorded else UNKNOWN
            for s in subjects}


@dataclass(frozen=True)
class Protocol:
    model: str = ""  # the bundle's folder; "" for label maps read from files
    run: str = ""  # the training run the bundle records
    weights_sha256: str = ""
    second_look: Optional[bool] = None  # None: label maps read from files (how they were made is not known here)
    sets: Sequence[str] = ()
    seed: int = DEVELOPMENT_SEED  # corruption seed of the artefact sets
    copies: int = 0  # corrupted copies per ES frame
    roles: Mapping[str, str] = field(default_factory=dict)  # subject -> role
    source: str = ""  # for label maps read from files: the folders
    calibrated_on: Sequence[str] = ()  # the subjects the bundle's quality calibration was fitted on
    numerics: str = ""  # device and precision: bf16 and fp32 move a mean Dice by a few ten-thousandths

    @classmethod
    def of_model(cls, bundle: Any, sets: Sequence[str], subjects: Sequence[str], seed: int, copies: int,
                 second_look: bool, runtime: Any = None) -> "Protocol":
        """The protocol of ``coopseg evaluate --model``: ``bundle`` is the loaded ``Bundle``, ``runtime`` the
        segmenter's ``Runtime``."""
        metadata = bundle.metadata
        numerics = f"{runtime.device}, {'bf16' if runtime.bf16 else 'fp32'}" if runtime is not None else ""
        return cls(shown_path(bundle.path), str((metadata.get("training") or {}).get("run", "")),
                   str(metadata["weights"]["sha256"]), second_look, tuple(sets), seed, copies,
                   subject_roles(metadata, subjects), calibrated_on=tuple(calibration_subjects(metadata)),
                   numerics=numerics)

    @property
    def artefact_sets(self) -> List[str]:
        return [s for s in self.sets if s in CORRUPTIONS]

    @property
    def one_pass(self) -> bool:
        """Each volume segmented once, as in the paper (the second look off)."""
        return self.second_look is False

    def role(self, subject: str) -> str:
        return self.roles.get(subject, UNKNOWN)

    def development_subjects(self) -> List[str]:
        return [s for s, role in self.roles.items() if role in (TRAINING, DEVELOPMENT)]

    def title(self) -> str:
        """The first table's heading: how the figures were made, and "Development figures" when subjects that chose
        anything (or were trained on) are among them."""
        if self.second_look is None:
            how = f"{TABLE}, of the label maps read from files"
        elif self.one_pass:
            how = f"{TABLE}, the paper's protocol (one pass; Table 1 of Chen et al., MICCAI 2021)"
        else:
            how = (f"{TABLE}, with the second look (not the paper's protocol: a flagged volume is segmented again on "
                   "blurred copies; --no-second-look gives one pass), in the shape of Table 1 of Chen et al.")
        developed = self.development_subjects()
        if developed:
            return (f"Development figures ({len(developed)} of {len(self.roles)} subjects chose the model or trained "
                    f"it): {how}")
        return how

    def markdown(self) -> str:
        """The "Protocol" section of evaluation.md."""
        lines = ["## Protocol", ""]
        if self.model:
            lines.append(f"- model: `{self.model}` (run {self.run or 'not recorded'}), weights sha256 "
                         f"`{self.weights_sha256}`")
        else:
            lines.append(f"- label maps read from files ({self.source}); the model that made them is not known here")
        if self.numerics:
            lines.append(f"- numerics: {self.numerics}")
        if self.second_look is not None:
            lines.append("- second look: " + (
                "on (a volume flagged for review is segmented again on copies blurred in-plane by 1.5 and 3 px, "
                "the answer with the highest quality estimate kept; the blurs were chosen on volumes of the shipped "
                "model's validation subjects)" if self.second_look else "off (one pass, as in the paper)"))
        for name in self.sets:
            if name in CORRUPTIONS:
                copies = f"{self.copies} corrupted cop{'y' if self.copies == 1 else 'ies'}"
                lines.append(f"- set {name}: ES frames, {copies} each, corruption seed {self.seed}")
            elif name == "site":
                lines.append("- set site: ED and ES frames of another site's folder")
            else:
                lines.append(f"- set {name}: ED and ES frames" if self.model else f"- set {name}")
        if self.artefact_sets and self.seed == DEVELOPMENT_SEED:
            lines.append(f"- **corruption seed {DEVELOPMENT_SEED} is the development seed**: the validation subjects' "
                         f"seed-{DEVELOPMENT_SEED} copies were looked at while the model, its levers and the second "
                         "look were chosen. For figures to report, evaluate with a fresh `--seed` (any other value).")
        counts: Dict[str, List[str]] = {}
        for subject, role in self.roles.items():
            counts.setdefault(role, []).append(subject)
        for role in (TRAINING, DEVELOPMENT, HELD_OUT, UNKNOWN):
            if role in counts:
                lines.append(f"- {role} subjects ({len(counts[role])}): {', '.join(counts[role])}")
        if DEVELOPMENT in counts or TRAINING in counts:
            lines.append("- development subjects chose the checkpoint (they are the model's validation subjects) "
                         "and fitted its quality calibration; training subjects were trained on: figures over "
                         "either are development figures, not an estimate for new data")
        return "\n".join(lines) + "\n"

    def quality_label(self) -> str:
        """", in-sample: ..." for the quality estimate's heading when the calibration was fitted on scored subjects."""
        fitted = [s for s in self.roles if s in set(self.calibrated_on)]
        if not fitted:
            return ""
        return (f", in-sample: the calibration was fitted on {len(fitted)} of these {len(self.roles)} subjects "
                "(their clean and image-domain perturbed frames; the TorchIO artefacts were never fitted on)")

    def columns(self, row: Any) -> Dict[str, Any]:
        """The protocol's columns of one evaluation.csv row (a ``ScoreRow``)."""
        artefact = row.set in CORRUPTIONS
        return {"role": self.role(row.subject) if row.subject else UNKNOWN,
                "model": self.model,
                "weights_sha256": self.weights_sha256,
                "second_look": "" if self.second_look is None else ("on" if self.second_look else "off"),
                "seed": self.seed if artefact else "",
                "copies": self.copies if artefact else ""}
