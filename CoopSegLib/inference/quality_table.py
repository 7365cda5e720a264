"""``quality.csv``: the quality estimate of every label map ``coopseg segment`` wrote, one row each.

Columns (the first three are a contract other tools read):
    name            the output label map's file name without extension
    quality         estimated mean Dice (LV, MYO, RV) of the stage written, 0-1
    flag            ok / review (quality below the threshold)
    calibrated      true when the bundle holds a fitted calibration; false: quality is the FTN-STN agreement
    threshold       the flag's threshold
    stage           ftn or stn
    blurred         true when the labels come from the second look at an in-plane-blurred input (--second-look)
    suspect_slices  slices (input stack index; frame:slice for a cine) whose own estimate is below the threshold
    slice_quality   per-slice estimates in input stack order (frame 0 of a cine), space-separated
    agreement, reconstruction, entropy_stn, empty_slices, missing_structure, unringed_lv, volume_out_of_range
                    the main signals (see CoopSegLib.inference.quality)

A folder written to again keeps the rows of names this run did not write.
"""

from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Dict, List, Mapping, Union

import numpy as np

from CoopSegLib.inference.quality import QualityEstimate

QUALITY_FILE = "quality.csv"
SIGNAL_COLUMNS = ("agreement", "reconstruction", "entropy_stn", "empty_slices", "missing_structure", "unringed_lv",
                  "volume_out_of_range")
COLUMNS = ("name", "quality", "flag", "calibrated", "threshold", "stage", "blurred", "suspect_slices",
           "slice_quality", *SIGNAL_COLUMNS)


def suspect_tokens(estimate: QualityEstimate) -> List[str]:
    """Slices below the threshold: "z" for a single frame, "t:z" for a cine."""
    cine = bool(estimate.slice_frame.max(initial=0) > 0)
    chosen = np.flatnonzero(estimate.slices < estimate.threshold)
    ordered = sorted(chosen, key=lambda i: (int(estimate.slice_frame[i]), int(estimate.slice_index[i])))
    return [f"{estimate.slice_frame[i]}:{estimate.slice_index[i]}" if cine else str(estimate.slice_index[i])
            for i in ordered]


def quality_row(name: str, estimate: QualityEstimate, stage: str, blurred: bool = False) -> Dict[str, str]:
    """The row of one label map; ``blurred``: its labels come from the second look (``Segmentation.blurred``)."""
    first = estimate.slice_frame == 0
    order = np.argsort(estimate.slice_index[first])
    row = {
        "name": name, "quality": f"{estimate.volume:.4f}", "flag": estimate.flag,
        "calibrated": str(estimate.calibrated).lower(), "threshold": f"{estimate.threshold:.3f}", "stage": stage,
        "blurred": str(bool(blurred)).lower(),
        "suspect_slices": " ".join(suspect_tokens(estimate)),
        "slice_quality": " ".join(f"{q:.3f}" for q in estimate.slices[first][order]),
    }
    row.update({key: f"{estimate.features[key]:.5g}" for key in SIGNAL_COLUMNS})
    return row


def read_quality_table(path: Union[str, Path]) -> Dict[str, Dict[str, str]]:
    """Rows of an existing quality.csv by name ({} when absent or not one of ours)."""
    path = Path(path)
    if not path.is_file():
        return {}
    with open(path, newline="") as stream:
        reader = csv.DictReader(stream)
        if not reader.fieldnames or "name" not in reader.fieldnames:
            return {}
        return {row["name"]: row for row in reader}


def write_quality_table(folder: Union[str, Path], rows: Mapping[str, Mapping[str, str]]) -> Path:
    """Write ``rows`` (by name) into folder/quality.csv atomically, keeping other names already there."""
    from CoopSegLib.atomic import write_atomically

    path = Path(folder) / QUALITY_FILE
    merged = {**read_quality_table(path), **rows}
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=COLUMNS, extrasaction="ignore", restval="", lineterminator="\n")
    writer.writeheader()
    for name in sorted(merged):
        writer.writerow(merged[name])
    text = buffer.getvalue()
    return write_atomically(path, lambda temporary: Path(temporary).write_text(text, newline=""))
