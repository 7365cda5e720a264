"""Clinical indices from end-diastolic (ED) and end-systolic (ES) label maps (canonical codes).

    volume (mL)       = voxel count x voxel volume (|det| of the affine's 3x3 part, mm^3) / 1000
    LV / RV EDV, ESV  = volume of the LV cavity (1) / RV cavity (3) at ED, ES
    stroke volume     = EDV - ESV (mL)
    ejection fraction = stroke volume / EDV x 100 (%), undefined (NaN) when EDV is 0
    LV mass (g)       = ED LV myocardium (2) volume x 1.05 g/mL (myocardial density, as in ACDC's evaluation)

Each frame's own affine gives its voxel volume, so ED and ES may come from different grids.

>>> import numpy as np
>>> ed = np.zeros((4, 4, 2), np.uint8); ed[:2, :2, 0] = 1; ed[2:, 2:, 1] = 2
>>> es = np.zeros((4, 4, 2), np.uint8); es[0, 0, 0] = 1
>>> affine = np.diag([10.0, 10.0, 10.0, 1.0])  # 1 mL voxels
>>> clinical_indices(ed, affine, es, affine).lv_ef
75.0
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Dict, List, Optional, Sequence

import numpy as np

from CoopSegLib.data.labels import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY
from CoopSegLib.errors import CoopSegError

MYOCARDIAL_DENSITY = 1.05  # g/mL

# Index name -> (description, unit), in reporting order.
INDICES: Dict[str, tuple] = {
    "lv_edv": ("LV end-diastolic volume", "mL"),
    "lv_esv": ("LV end-systolic volume", "mL"),
    "lv_sv": ("LV stroke volume", "mL"),
    "lv_ef": ("LV ejection fraction", "%"),
    "lv_mass": ("LV myocardial mass", "g"),
    "rv_edv": ("RV end-diastolic volume", "mL"),
    "rv_esv": ("RV end-systolic volume", "mL"),
    "rv_sv": ("RV stroke volume", "mL"),
    "rv_ef": ("RV ejection fraction", "%"),
}


@dataclass(frozen=True)
class ClinicalIndices:
    lv_edv: float
    lv_esv: float
    lv_sv: float
    lv_ef: float
    lv_mass: float
    rv_edv: float
    rv_esv: float
    rv_sv: float
    rv_ef: float

    def as_dict(self) -> Dict[str, float]:
        return asdict(self)


@dataclass(frozen=True)
class IndexComparison:
    name: str
    description: str
    unit: str
    value: float
    reference: Optional[float]
    difference: Optional[float]  # value - reference


def voxel_volume_ml(affine: np.ndarray) -> float:
    """Volume of one voxel in mL from a 4x4 voxel-to-world affine in mm."""
    affine = np.asarray(affine, dtype=np.float64)
    if affine.shape != (4, 4) or not np.all(np.isfinite(affine)):
        raise CoopSegError(f"expected a finite 4x4 affine, got shape {affine.shape}")
    volume = abs(float(np.linalg.det(affine[:3, :3]))) / 1000.0
    if volume <= 0:
        raise CoopSegError("the affine is singular (a voxel spacing is zero)")
    return volume


def _ejection_fraction(edv: float, esv: float) -> float:
    return (edv - esv) / edv * 100.0 if edv > 0 else math.nan


def clinical_indices(ed: np.ndarray, ed_affine: np.ndarray, es: np.ndarray, es_affine: np.ndarray) -> ClinicalIndices:
    """Indices from ED and ES label maps (any dimensionality; codes 1 LV cavity, 2 LV myocardium, 3 RV cavity)."""
    ed_voxel, es_voxel = voxel_volume_ml(ed_affine), voxel_volume_ml(es_affine)
    ed, es = np.asarray(ed), np.asarray(es)

    def volume(labels: np.ndarray, code: int, voxel: float) -> float:
        return float(np.count_nonzero(labels == code)) * voxel

    lv_edv, lv_esv = volume(ed, LV_CAVITY, ed_voxel), volume(es, LV_CAVITY, es_voxel)
    rv_edv, rv_esv = volume(ed, RV_CAVITY, ed_voxel), volume(es, RV_CAVITY, es_voxel)
    return ClinicalIndices(
        lv_edv=lv_edv, lv_esv=lv_esv, lv_sv=lv_edv - lv_esv, lv_ef=_ejection_fraction(lv_edv, lv_esv),
        lv_mass=volume(ed, LV_MYOCARDIUM, ed_voxel) * MYOCARDIAL_DENSITY,
        rv_edv=rv_edv, rv_esv=rv_esv, rv_sv=rv_edv - rv_esv, rv_ef=_ejection_fraction(rv_edv, rv_esv),
    )


def compare_indices(values: ClinicalIndices, reference: Optional[ClinicalIndices] = None) -> List[IndexComparison]:
    """One row per index, with the reference value and the difference (value - reference) when given."""
    rows = []
    for name, (description, unit) in INDICES.items():
        value = getattr(values, name)
        ref = getattr(reference, name) if reference is not None else None
        rows.append(IndexComparison(name, description, unit, value, ref, value - ref if ref is not None else None))
    return rows


def index_records(rows: List[IndexComparison]) -> List[Dict[str, object]]:
    """``compare_indices`` rows as records (index, description, unit, value[, reference, difference]): the table
    ``coopseg indices --output`` writes; reference and difference only when the rows have a reference."""
    with_reference = any(row.reference is not None for row in rows)
    return [{"index": r.name, "description": r.description, "unit": r.unit, "value": r.value,
             **({"reference": r.reference, "difference": r.difference} if with_reference else {})} for r in rows]


def indices_csv(rows: List[IndexComparison], leading: Sequence[Dict[str, object]] = ()) -> str:
    """The indices table as CSV, floats at 6 significant digits; ``leading``: records put before the indices (a
    cine's ED and ES frames)."""
    import csv
    import io

    records = [*leading, *index_records(rows)]
    fields = list(index_records(rows)[0]) if rows else ["index", "description", "unit", "value"]
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=fields, lineterminator="\n", restval="")
    writer.writeheader()
    writer.writerows({k: (f"{v:.6g}" if isinstance(v, float) else v) for k, v in r.items()} for r in records)
    return buffer.getvalue()
