"""ACDC reader: ``patientNNN/Info.cfg`` + ``patientNNN_frameXX.nii.gz`` + ``patientNNN_frameXX_gt.nii.gz``."""

from __future__ import annotations

from pathlib import Path
from typing import Dict, Iterable, List, Optional, Union

from CoopSegLib.data.case import Case, make_case
from CoopSegLib.data.labels import ACDC_TO_CANONICAL
from CoopSegLib.data.nifti import load_nifti
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]


def read_info(path: PathLike) -> Dict[str, str]:
    """Parse ACDC's ``Info.cfg`` ("Key: value" lines)."""
    path = Path(path)
    if not path.is_file():
        raise CoopSegError(f"{path}: file not found (every ACDC subject folder has an Info.cfg)")
    info: Dict[str, str] = {}
    for line in path.read_text().splitlines():
        if ":" in line:
            key, value = line.split(":", 1)
            info[key.strip()] = value.strip()
    for key in ("ED", "ES"):
        if not info.get(key, "").isdigit():
            raise CoopSegError(f"{path}: missing or non-integer '{key}:' line")
    return info


def list_acdc_subjects(root: PathLike) -> List[str]:
    """Subject folder names (patientNNN) under an ACDC root, sorted."""
    root = Path(root)
    if not root.is_dir():
        raise CoopSegError(f"{root}: ACDC folder not found")
    subjects = sorted(p.name for p in root.iterdir() if p.is_dir() and p.name.startswith("patient"))
    if not subjects:
        raise CoopSegError(f"{root}: no patientNNN folders (point at ACDC's training/ or testing/ folder)")
    return subjects


def read_acdc_groups(root: PathLike, subjects: Optional[Iterable[str]] = None) -> Dict[str, str]:
    """Subject -> group (``Group:`` in Info.cfg: NOR, MINF, DCM, HCM, RV), reading only the Info.cfg files."""
    root = Path(root)
    groups = {}
    for name in (list(subjects) if subjects is not None else list_acdc_subjects(root)):
        path = root / name / "Info.cfg"
        group = read_info(path).get("Group", "")
        if not group:
            raise CoopSegError(f"{path}: no 'Group:' line (a split by group needs every subject's group)")
        groups[name] = group
    return groups


def read_acdc_subject(folder: PathLike, frames: Iterable[str] = ("ED", "ES"), labels: bool = True) -> List[Case]:
    """Read the ED and ES frames (and ground truth) of one ACDC subject folder."""
    folder = Path(folder)
    info = read_info(folder / "Info.cfg")
    cases = []
    for frame in frames:
        if frame not in ("ED", "ES"):
            raise CoopSegError(f"unknown ACDC frame {frame!r}; use 'ED' or 'ES'")
        number = int(info[frame])
        image_path = folder / f"{folder.name}_frame{number:02d}.nii.gz"
        image, affine, _ = load_nifti(image_path)
        label = label_affine = None
        label_path = folder / f"{folder.name}_frame{number:02d}_gt.nii.gz"
        if labels:
            label, label_affine, _ = load_nifti(label_path)
        metadata = {"frame_number": number, "group": info.get("Group", ""), "dataset": "ACDC"}
        cases.append(
            make_case(
                folder.name, frame, image, affine, label, label_affine, ACDC_TO_CANONICAL,
                source=str(image_path), label_source=str(label_path), metadata=metadata,
            )
        )
    return cases


def read_acdc(
    root: PathLike, subjects: Optional[Iterable[str]] = None, frames: Iterable[str] = ("ED", "ES"), labels: bool = True
) -> List[Case]:
    """Read ACDC subjects (all under ``root`` by default), ED and ES frames with remapped labels."""
    root = Path(root)
    names = list(subjects) if subjects is not None else list_acdc_subjects(root)
    cases: List[Case] = []
    for name in names:
        folder = root / name
        if not folder.is_dir():
            raise CoopSegError(f"{folder}: ACDC subject folder not found")
        cases.extend(read_acdc_subject(folder, frames, labels))
    return cases
