"""The three structures CoopSeg segments, as Slicer segments: label code, segment ID, name, colour, terminology.

Terminology entries use Slicer's serialised form (context~category~type~type modifier~anatomic context~anatomic
region~anatomic region modifier) with SNOMED CT codes from DICOM's cardiac structure segmentation context
(CID 7152: left ventricle 87878005, right ventricle 53085002) and myocardium 74281007 located in the left ventricle,
so DICOM SEG export and the Segment Editor's terminology browser recognise them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

TERMINOLOGY_CONTEXT = "Segmentation category and type - DICOM master list"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
ANATOMICAL_STRUCTURE = "SCT^123037004^Anatomical Structure"
TISSUE = "SCT^85756007^Tissue"
LEFT_VENTRICLE = "SCT^87878005^Left ventricle"
RIGHT_VENTRICLE = "SCT^53085002^Right ventricle"
MYOCARDIUM = "SCT^74281007^Myocardium"
NO_CODE = "^^"


def terminology_entry(category: str, type_: str, region: str = NO_CODE) -> str:
    """A terminology entry string as vtkSegment.SetTerminology expects it."""
    return "~".join((TERMINOLOGY_CONTEXT, category, type_, NO_CODE, ANATOMIC_CONTEXT, region, NO_CODE))


@dataclass(frozen=True)
class Structure:
    code: int  # CoopSeg's canonical label code
    segment_id: str
    name: str
    color: Tuple[float, float, float]  # RGB in [0, 1]
    terminology: str


STRUCTURES: Tuple[Structure, ...] = (
    Structure(1, "LV_cavity", "LV cavity", (0.89, 0.26, 0.20),
              terminology_entry(ANATOMICAL_STRUCTURE, LEFT_VENTRICLE)),
    Structure(2, "LV_myocardium", "LV myocardium", (0.95, 0.77, 0.21),
              terminology_entry(TISSUE, MYOCARDIUM, LEFT_VENTRICLE)),
    Structure(3, "RV_cavity", "RV cavity", (0.24, 0.50, 0.85),
              terminology_entry(ANATOMICAL_STRUCTURE, RIGHT_VENTRICLE)),
)


def type_code(terminology: str) -> str:
    """The type's SNOMED code value of a serialised terminology entry, e.g. '87878005'."""
    return terminology.split("~")[2].split("^")[1]
