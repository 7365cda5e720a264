"""Reader for a folder of packed cases (``CoopSegLib.data.packed``): ``<subject>_<frame>.zip`` files.

``data.format: packed`` trains on such a folder exactly as on the ACDC folder it was packed from: the images,
affines and canonical label maps are the same arrays, so preprocessing gives the same slices. A pack may hold only
some of its source's subjects; ``subjects.json`` beside the cases lists all of them, so that a split drawn on the
pack (the paper's split draws from the sorted subject list) is the split drawn on the source.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterable, List, Optional, Union

from CoopSegLib.data.case import Case, make_case
from CoopSegLib.data.packed import PACKED_SUFFIX, read_packed_case
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]
SUBJECT_LIST = "subjects.json"  # every subject of the source the pack was made from


def packed_case_path(root: PathLike, subject: str, frame: str) -> Path:
    return Path(root) / f"{subject}_{frame}{PACKED_SUFFIX}"


def list_packed_subjects(root: PathLike) -> List[str]:
    """The source's subjects (``subjects.json``), or else those with a packed frame under ``root``; sorted."""
    root = Path(root)
    if not root.is_dir():
        raise CoopSegError(f"{root}: packed-case folder not found")
    if (root / SUBJECT_LIST).is_file():
        try:
            return sorted(json.loads((root / SUBJECT_LIST).read_text()))
        except (ValueError, TypeError) as error:
            raise CoopSegError(f"{root / SUBJECT_LIST}: not a JSON list of subject names ({error})") from None
    subjects = sorted({path.name.rsplit("_", 1)[0] for path in root.glob(f"*_*{PACKED_SUFFIX}")})
    if not subjects:
        raise CoopSegError(f"{root}: no packed cases (<subject>_<frame>{PACKED_SUFFIX}); make them with "
                           "Training/gpu_table1.py pack")
    return subjects


def read_packed_case_file(path: PathLike) -> Case:
    """One packed case as a Case (labels are stored in canonical codes already)."""
    image, affine, label, record = read_packed_case(path)
    return make_case(record["subject"], record["frame"], image, affine, label, affine, source=str(path),
                     label_source=str(path), metadata=dict(record.get("metadata", {})))


def read_packed(root: PathLike, subjects: Optional[Iterable[str]] = None,
                frames: Iterable[str] = ("ED", "ES")) -> List[Case]:
    """Cases of ``subjects`` (default: every packed subject) and ``frames`` under ``root``."""
    names = list(subjects) if subjects is not None else list_packed_subjects(root)
    absent = [name for name in names if not any(packed_case_path(root, name, frame).is_file() for frame in frames)]
    if absent:
        raise CoopSegError(f"{root}: subject(s) {', '.join(absent)} not packed; pack the subjects of every fold "
                           "you train (Training/gpu_table1.py pack --seeds ...)")
    return [read_packed_case_file(packed_case_path(root, name, frame)) for name in names for frame in frames]
