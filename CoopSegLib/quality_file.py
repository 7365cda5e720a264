"""``quality.csv``: the quality estimate of every label map ``coopseg segment`` (and the Slicer module's worker)
wrote, one row each. The one reader and writer of the file: the command line, ``coopseg evaluate`` and the Slicer
module all use it. The standard library only, so the Slicer module reads it without torch.

Columns, in the file's order (the first three are a contract other tools read):
    name            the output label map's file name without extension
    quality         estimated mean Dice (LV, MYO, RV) of the stage written, 0-1
    flag            ok / review (quality below the threshold, or a structure's own estimate below 0.5)
    quality_lv, quality_myo, quality_rv
                    the estimated Dice of each structure (LV cavity, LV myocardium, RV cavity), 0-1; with
                    calibrated false, each structure's FTN-STN agreement
    calibrated      true when the bundle holds a fitted calibration; false: quality is the FTN-STN agreement
    threshold       the flag's threshold
    stage           ftn or stn
    blurred         true when the labels come from the second look at an in-plane-blurred input (--second-look)
    suspect_slices  the slices whose own estimate is below the threshold, named in full: "slice 4; slice 7"
                    (input stack index, from 0), "frame 2 slice 4" in a cine; empty when there is none
    slice_quality   per-slice estimates in input stack order (frame 0 of a cine), space-separated
    agreement, reconstruction, entropy_stn, empty_slices, missing_structure, unringed_lv, volume_out_of_range
                    the main signals (see CoopSegLib.inference.quality)

A folder written to again keeps the rows of names this run did not write. Files written before the slices were
named (bare numbers: "4 7", "2:4") read the same.

>>> record = QualityRecord("case", 0.62, "review", threshold=0.7, suspect_slices=((0, 0), (0, 3)))
>>> record.row()["suspect_slices"]
'slice 0; slice 3'
>>> parse_suspect_slices("frame 1 slice 2; 3:5"), parse_suspect_slices("0 4")
(((1, 2), (3, 5)), ((0, 0), (0, 4)))
"""

from __future__ import annotations

import csv
import io
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Dict, Mapping, Optional, Tuple, Union

from CoopSegLib.errors import CoopSegError
from CoopSegLib.vocabulary import FLAGS, REVIEW, STAGES, STRUCTURES

if TYPE_CHECKING:  # the estimate needs numpy and torch; this module does not
    from CoopSegLib.inference.quality import QualityEstimate

QUALITY_FILE = "quality.csv"
REQUIRED_COLUMNS = ("name", "quality", "flag")
SIGNAL_COLUMNS = ("agreement", "reconstruction", "entropy_stn", "empty_slices", "missing_structure", "unringed_lv",
                  "volume_out_of_range")
STRUCTURE_QUALITY_COLUMNS = {s.column: f"quality_{s.column}" for s in STRUCTURES}  # "lv" -> "quality_lv"
COLUMNS = (*REQUIRED_COLUMNS, *STRUCTURE_QUALITY_COLUMNS.values(), "calibrated", "threshold", "stage", "blurred", "suspect_slices", "slice_quality",
           *SIGNAL_COLUMNS)

SuspectSlice = Tuple[int, int]  # (frame, slice index along the input's stack axis)
_NAMED = re.compile(r"^(?:frame\s+(\d+)\s+)?slice\s+(\d+)$")
_BARE = re.compile(r"^(?:(\d+):)?(\d+)$")


@dataclass(frozen=True)
class QualityRecord:
    """One row of quality.csv: the quality estimate of one written label map."""

    name: str  # the label map's file name without extension
    quality: float  # estimated mean Dice of the written stage, 0-1
    flag: str  # "ok" or "review"
    calibrated: Optional[bool] = None  # None: the file did not say (written by an older CoopSeg)
    threshold: Optional[float] = None
    stage: str = "stn"
    blurred: bool = False  # the labels come from the second look at an in-plane-blurred input
    suspect_slices: Tuple[SuspectSlice, ...] = ()
    slice_quality: Tuple[float, ...] = ()  # frame 0's per-slice estimates, input stack order
    signals: Dict[str, float] = field(default_factory=dict)
    cine: bool = False  # the input had several frames: suspect slices name their frame
    structures: Dict[str, float] = field(default_factory=dict)  # "lv", "myo", "rv" -> estimated Dice

    @classmethod
    def from_estimate(cls, name: str, estimate: "QualityEstimate", stage: str,
                      blurred: bool = False) -> "QualityRecord":
        """The record of a label map written with ``estimate`` (``Segmentation.quality``); ``blurred``:
        ``Segmentation.blurred``."""
        frames = [int(f) for f in estimate.slice_frame]
        indices = [int(i) for i in estimate.slice_index]
        values = [float(q) for q in estimate.slices]
        suspects = sorted((f, i) for f, i, q in zip(frames, indices, values) if q < estimate.threshold)
        first = sorted((i, q) for f, i, q in zip(frames, indices, values) if f == 0)
        return cls(name, float(estimate.volume), estimate.flag, bool(estimate.calibrated), float(estimate.threshold),
                   stage, bool(blurred), tuple(suspects), tuple(q for _, q in first),
                   {key: float(estimate.features[key]) for key in SIGNAL_COLUMNS if key in estimate.features},
                   cine=max(frames, default=0) > 0,
                   structures={c: float(v) for c, v in estimate.structures.items()})

    @property
    def needs_review(self) -> bool:
        return self.flag == REVIEW

    def suspect_names(self) -> Tuple[str, ...]:
        """The suspect slices as people read them: 'slice 4', or 'frame 2 slice 4' in a cine."""
        return tuple(f"frame {frame} slice {index}" if self.cine else f"slice {index}"
                     for frame, index in self.suspect_slices)

    def describe(self, suspects: bool = True) -> str:
        """One line for the GUI: 'Estimated quality: Dice 0.87 (ok)', saying when it is uncalibrated;
        ``suspects``: end with the suspect slices."""
        kind = "" if self.calibrated is not False else " (uncalibrated: the FTN-STN agreement, not a Dice estimate)"
        text = f"Estimated quality{kind}: Dice {self.quality:.2f}"
        if self.structures:
            text += " (" + ", ".join(f"{s.key} {self.structures[s.column]:.2f}" for s in STRUCTURES
                                     if s.column in self.structures) + ")"
        second = ", from the second look at the blurred image" if self.blurred else ""
        listed = f"; suspect: {', '.join(self.suspect_names())}" if suspects and self.suspect_slices else ""
        if self.needs_review:
            return f"{text}: review this segmentation before using it{second}{listed}"
        return f"{text} (ok){second}{listed}"

    def row(self) -> Dict[str, str]:
        """The record as quality.csv's text cells."""
        row = {
            "name": self.name, "quality": f"{self.quality:.4f}", "flag": self.flag,
            "calibrated": "" if self.calibrated is None else str(self.calibrated).lower(),
            "threshold": "" if self.threshold is None else f"{self.threshold:.3f}", "stage": self.stage,
            "blurred": str(self.blurred).lower(), "suspect_slices": "; ".join(self.suspect_names()),
            "slice_quality": " ".join(f"{q:.3f}" for q in self.slice_quality),
            **{STRUCTURE_QUALITY_COLUMNS[c]: f"{v:.4f}" for c, v in self.structures.items()},
        }
        row.update({key: f"{value:.5g}" for key, value in self.signals.items()})
        return row


def parse_suspect_slices(text: str) -> Tuple[SuspectSlice, ...]:
    """(frame, slice) pairs of a suspect_slices cell: named ("frame 1 slice 2; slice 3") or, as older files wrote
    them, bare ("1:2 3"); ValueError for anything else."""
    text = (text or "").strip()
    if not text:
        return ()
    tokens = [t.strip() for t in text.split(";")] if ";" in text or "slice" in text else text.split()
    pairs = []
    for token in tokens:
        match = _NAMED.match(token) or _BARE.match(token)
        if match is None:
            raise ValueError(f"{token!r} is not a slice ('slice 4', 'frame 2 slice 4')")
        pairs.append((int(match.group(1) or 0), int(match.group(2))))
    return tuple(pairs)


def read_quality_file(path: Union[str, Path]) -> Dict[str, QualityRecord]:
    """name -> record of a quality.csv; a CoopSegError naming the file and line for a missing column or a bad
    value. Columns it does not know are ignored."""
    path = Path(path)
    try:
        with open(path, newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [column for column in REQUIRED_COLUMNS if column not in (reader.fieldnames or [])]
            if missing:
                raise CoopSegError(f"{path}: no column {', '.join(missing)} (a quality.csv has {', '.join(COLUMNS)})")
            rows = list(reader)
    except OSError as error:
        raise CoopSegError(f"{path}: cannot read ({error.strerror or error})") from None
    return {row["name"]: record_from_row(row, f"{path}, line {number}") for number, row in enumerate(rows, start=2)}


def record_from_row(row: Mapping[str, str], where: str) -> QualityRecord:
    """The record of one row's text cells (``QualityRecord.row()``'s inverse); a CoopSegError starting with
    ``where`` for a bad value."""
    quality = _number(row.get("quality"))
    if not 0.0 <= quality <= 1.0:
        raise CoopSegError(f"{where}: quality {row.get('quality')!r} is not a number in [0, 1]")
    if row.get("flag") not in FLAGS:
        raise CoopSegError(f"{where}: flag {row.get('flag')!r} is not one of {', '.join(FLAGS)}")
    stage = (row.get("stage") or "stn").strip()
    if stage not in STAGES:
        raise CoopSegError(f"{where}: stage {stage!r} is not one of {', '.join(STAGES)}")
    try:
        suspects = parse_suspect_slices(row.get("suspect_slices") or "")
        slices = tuple(float(q) for q in (row.get("slice_quality") or "").split())
    except ValueError as error:
        raise CoopSegError(f"{where}: {error}") from None
    calibrated = (row.get("calibrated") or "").strip().lower()
    threshold = _number(row.get("threshold"))
    signals = {key: _number(row.get(key)) for key in SIGNAL_COLUMNS if row.get(key)}
    cine = any(word in (row.get("suspect_slices") or "") for word in ("frame", ":"))
    structures = {}
    for column, name in STRUCTURE_QUALITY_COLUMNS.items():
        if row.get(name):
            value = _number(row[name])
            if not 0.0 <= value <= 1.0:
                raise CoopSegError(f"{where}: {name} {row[name]!r} is not a number in [0, 1]")
            structures[column] = value
    return QualityRecord(row["name"], quality, row["flag"], {"true": True, "false": False}.get(calibrated),
                         None if math.isnan(threshold) else threshold, stage,
                         (row.get("blurred") or "").strip().lower() == "true", suspects, slices, signals, cine,
                         structures)


def _number(text: Optional[str]) -> float:
    try:
        return float(text)
    except (TypeError, ValueError):
        return math.nan


def write_quality_file(folder: Union[str, Path], records: Mapping[str, QualityRecord]) -> Path:
    """Write ``records`` (by name) into folder/quality.csv atomically, keeping the rows of other names already
    there (a file that is not a quality.csv is replaced)."""
    from CoopSegLib.atomic import write_atomically

    path = Path(folder) / QUALITY_FILE
    kept: Dict[str, QualityRecord] = {}
    if path.is_file():
        try:
            kept = read_quality_file(path)
        except CoopSegError:
            kept = {}
    merged = {**kept, **records}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", restval="", lineterminator="\n")
    writer.writeheader()
    for name in sorted(merged):
        writer.writerow(merged[name].row())
    text = buffer.getvalue()
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, newline="", encoding="utf-8"))
