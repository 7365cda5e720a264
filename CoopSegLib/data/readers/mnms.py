"""M&Ms (multi-centre, multi-vendor) reader: ``<code>/<code>_sa.nii.gz`` (4D cine) + ``<code>_sa_gt.nii.gz``.

ED and ES come from the dataset's information CSV (columns "External code", "ED", "ES"; frame numbers are 0-based
indices into the 4D array). Label codes on disk are already canonical (1 LV, 2 MYO, 3 RV) but are still checked.
"""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Tuple, Union

from CoopSegLib.data.case import Case, make_case
from CoopSegLib.data.labels import MNMS_TO_CANONICAL
from CoopSegLib.data.nifti import load_nifti
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]
IMAGE_SUFFIX = "_sa.nii.gz"
LABEL_SUFFIX = "_sa_gt.nii.gz"


def _find_csv(root: Path) -> Path:
    for candidate in sorted(root.rglob("*.csv")):
        with open(candidate, newline="") as handle:
            header = next(csv.reader(handle), [])
        if {"External code", "ED", "ES"} <= {name.strip() for name in header}:
            return candidate
    raise CoopSegError(f"{root}: no M&Ms information CSV (with 'External code', 'ED', 'ES' columns) found")


def read_mnms_info(csv_path: PathLike) -> Dict[str, Dict[str, str]]:
    """Rows of the M&Ms information CSV keyed by external code."""
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise CoopSegError(f"{csv_path}: file not found")
    with open(csv_path, newline="") as handle:
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None}
                for row in csv.DictReader(handle)]
    info = {}
    for number, row in enumerate(rows, start=2):
        code = row.get("External code", "")
        for key in ("ED", "ES"):
            if not row.get(key, "").isdigit():
                raise CoopSegError(f"{csv_path}: line {number}: missing or non-integer {key} for subject {code!r}")
        info[code] = row
    return info


def find_mnms_subjects(root: PathLike) -> Dict[str, Tuple[Path, Path]]:
    """Map external code -> (image path, label path) for every labelled subject under ``root``."""
    root = Path(root)
    if not root.is_dir():
        raise CoopSegError(f"{root}: M&Ms folder not found")
    found = {}
    for image in sorted(root.rglob(f"*{IMAGE_SUFFIX}")):
        code = image.name[: -len(IMAGE_SUFFIX)]
        found[code] = (image, image.with_name(code + LABEL_SUFFIX))
    if not found:
        raise CoopSegError(f"{root}: no *{IMAGE_SUFFIX} files found")
    return found


def read_mnms(
    root: PathLike,
    csv_path: Optional[PathLike] = None,
    subjects: Optional[Iterable[str]] = None,
    frames: Iterable[str] = ("ED", "ES"),
) -> List[Case]:
    """Read M&Ms subjects under ``root`` (all by default): ED and ES 3D frames with canonical labels."""
    root = Path(root)
    files = find_mnms_subjects(root)
    info = read_mnms_info(csv_path if csv_path is not None else _find_csv(root))
    codes = list(subjects) if subjects is not None else sorted(files)
    cases: List[Case] = []
    for code in codes:
        if code not in files:
            raise CoopSegError(f"{root}: subject {code} has no {code}{IMAGE_SUFFIX}")
        if code not in info:
            raise CoopSegError(f"subject {code} is not listed in the M&Ms information CSV")
        image_path, label_path = files[code]
        image, affine, _ = load_nifti(image_path, dims=4)
        label, label_affine, _ = load_nifti(label_path, dims=4)
        if label.shape != image.shape:
            raise CoopSegError(f"{label_path}: label shape {label.shape} does not match image {image.shape}")
        row = info[code]
        for frame in frames:
            index = int(row[frame])
            if index >= image.shape[3]:
                raise CoopSegError(f"{image_path}: {frame} frame {index} beyond the {image.shape[3]} frames")
            metadata = {"frame_number": index, "vendor": row.get("Vendor", ""), "centre": row.get("Centre", ""),
                        "dataset": "M&Ms"}
            cases.append(
                make_case(
                    code, frame, image[..., index], affine, label[..., index], label_affine, MNMS_TO_CANONICAL,
                    source=str(image_path), label_source=str(label_path), metadata=metadata,
                )
            )
    return cases
