"""Generic image/label pairs: an nnU-Net-style folder (imagesTr/, labelsTr/, dataset.json) or a CSV of paths."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Union

from CoopSegLib.data.case import Case, make_case
from CoopSegLib.data.labels import BACKGROUND, IDENTITY, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from CoopSegLib.data.nifti import load_nifti, strip_nifti_suffix
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]

# Label names seen in public cardiac datasets (nnU-Net's ACDC task uses RV / MLV / LVC).
_NAME_TO_CANONICAL = {
    "background": BACKGROUND,
    "lv": LV_CAVITY, "lvc": LV_CAVITY, "lv cavity": LV_CAVITY, "lv blood pool": LV_CAVITY,
    "left ventricle": LV_CAVITY, "left ventricular cavity": LV_CAVITY,
    "myo": LV_MYOCARDIUM, "mlv": LV_MYOCARDIUM, "myocardium": LV_MYOCARDIUM, "lv myocardium": LV_MYOCARDIUM,
    "rv": RV_CAVITY, "rvc": RV_CAVITY, "rv cavity": RV_CAVITY, "right ventricle": RV_CAVITY,
    "right ventricular cavity": RV_CAVITY,
}
LABEL_SOURCE = "label_source"  # Case.metadata key: the label file read (names a refusal's evidence and culprit)
_FRAME_SUFFIX = re.compile(r"^(?P<subject>.+?)_(?P<frame>frame\d+|ED|ES|ed|es)$")


def split_case_name(name: str) -> tuple:
    """'patient001_frame01' -> ('patient001', 'frame01'); names without a frame suffix keep an empty frame."""
    match = _FRAME_SUFFIX.match(name)
    return (match["subject"], match["frame"]) if match else (name, "")


def label_map_from_names(names: Mapping[str, int], source: str = "dataset.json") -> Dict[int, int]:
    """Build a dataset-code -> canonical-code map from label names (e.g. nnU-Net's dataset.json)."""
    mapping = {}
    for name, code in names.items():
        key = re.sub(r"[_\-]+", " ", str(name)).strip().lower()
        if key not in _NAME_TO_CANONICAL:
            raise CoopSegError(
                f"{source}: label name {name!r} is not a known cardiac structure; pass an explicit label map"
            )
        mapping[int(code)] = _NAME_TO_CANONICAL[key]
    return mapping


def _read_dataset_json(path: Path) -> Optional[Dict[int, int]]:
    if not path.is_file():
        return None
    try:
        labels = json.loads(path.read_text()).get("labels", {})
    except (OSError, ValueError) as error:
        raise CoopSegError(f"{path}: cannot read ({error})") from error
    if labels and all(str(k).isdigit() for k in labels):  # nnU-Net v1: {"0": "background", ...}
        labels = {str(v): int(k) for k, v in labels.items()}
    return label_map_from_names(labels, str(path)) if labels else None


def nnunet_label_map(folder: PathLike) -> Optional[Dict[int, int]]:
    """The code map the label names in ``folder``/dataset.json give, or None when it names no labels."""
    return _read_dataset_json(Path(folder) / "dataset.json")


def read_nnunet(folder: PathLike, label_map: Optional[Mapping[int, int]] = None) -> List[Case]:
    """Read ``imagesTr/<case>_0000.nii.gz`` with ``labelsTr/<case>.nii.gz``.

    Label codes: ``label_map`` if given, else from dataset.json's label names, else assumed canonical.
    """
    folder = Path(folder)
    images = sorted((folder / "imagesTr").glob("*_0000.nii*"))
    if not images:
        raise CoopSegError(f"{folder}: no imagesTr/*_0000.nii.gz files (an nnU-Net raw dataset folder expected)")
    mapping = dict(label_map) if label_map is not None else (_read_dataset_json(folder / "dataset.json") or IDENTITY)
    cases = []
    for image_path in images:
        name = strip_nifti_suffix(image_path)[: -len("_0000")]
        label_path = folder / "labelsTr" / (name + image_path.name[len(name) + 5:])
        image, affine, _ = load_nifti(image_path)
        label, label_affine, _ = load_nifti(label_path)
        subject, frame = split_case_name(name)
        cases.append(make_case(subject, frame or name, image, affine, label, label_affine, mapping,
                               source=str(image_path), label_source=str(label_path),
                               metadata={LABEL_SOURCE: str(label_path)}))
    return cases


def read_pairs_csv(csv_path: PathLike, label_map: Mapping[int, int] = IDENTITY) -> List[Case]:
    """Read pairs listed in a CSV with columns ``image,label`` (optional ``subject``, ``frame``).

    Relative paths are relative to the CSV's folder. Rows without a label give unlabelled cases.
    """
    csv_path = Path(csv_path)
    if not csv_path.is_file():
        raise CoopSegError(f"{csv_path}: file not found")
    with open(csv_path, newline="") as handle:
        reader = csv.DictReader(handle)
        if reader.fieldnames is None or "image" not in [f.strip() for f in reader.fieldnames]:
            raise CoopSegError(f"{csv_path}: needs a header line with at least an 'image' column (and 'label')")
        rows = [{k.strip(): (v or "").strip() for k, v in row.items() if k is not None} for row in reader]
    cases = []
    for number, row in enumerate(rows, start=2):
        if not row.get("image"):
            raise CoopSegError(f"{csv_path}: line {number}: empty image path")
        image_path = (csv_path.parent / row["image"]).resolve()
        image, affine, _ = load_nifti(image_path)
        label = label_affine = None
        label_path = None
        if row.get("label"):
            label_path = (csv_path.parent / row["label"]).resolve()
            label, label_affine, _ = load_nifti(label_path)
        default_subject, default_frame = split_case_name(strip_nifti_suffix(image_path))
        cases.append(make_case(row.get("subject") or default_subject, row.get("frame") or default_frame,
                               image, affine, label, label_affine, label_map if label is not None else None,
                               source=str(image_path), label_source=str(label_path or ""),
                               metadata={LABEL_SOURCE: str(label_path)} if label_path else None))
    return cases
