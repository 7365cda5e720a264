"""The three structures CoopSeg segments, as Slicer segments: label code, segment ID and name (from
``CoopSegLib.vocabulary``, which needs no torch), colour, terminology.

Terminology entries use Slicer's serialised form (context~category~type~type modifier~anatomic context~anatomic
region~anatomic region modifier) with SNOMED CT codes: left ventricle 87878005 and right ventricle 53085002 (DICOM's
cardiac structure segmentation context, CID 7152) and myocardium 74281007 located in the left ventricle, all three in the category "Anatomical Structure"
(SCT 123037004), as DICOM's cardiac structure group and other cardiac tools code heart structures (a DICOM SEG
export carries that category). Slicer's
default "DICOM master list" has no myocardium, so the entries name the module's own terminology context
(Resources/Terminology/CoopSeg.term.json, loaded into Slicer's terminologies logic by the module), which holds all
three; the anatomic region comes from Slicer's default anatomic context.

Entries are stored as the segment's terminology tag (``vtkSegment.GetTerminologyEntryTagName()``, Slicer 5.6 and
later); ``vtkSegment.SetTerminology`` exists only from Slicer 5.10.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

from CoopSegLib.vocabulary import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY, STRUCTURES

TERMINOLOGY_CONTEXT = "CoopSeg - cardiac structures"
TERMINOLOGY_FILE = Path(__file__).resolve().parent.parent / "Resources" / "Terminology" / "CoopSeg.term.json"
ANATOMIC_CONTEXT = "Anatomic codes - DICOM master list"
ANATOMICAL_STRUCTURE = "SCT^123037004^Anatomical Structure"
LEFT_VENTRICLE = "SCT^87878005^Left ventricle"
RIGHT_VENTRICLE = "SCT^53085002^Right ventricle"
MYOCARDIUM = "SCT^74281007^Myocardium"
NO_CODE = "^^"


def terminology_entry(category: str, type_: str, region: str = NO_CODE) -> str:
    """A serialised terminology entry, as Slicer stores it in a segment's terminology tag."""
    return "~".join((TERMINOLOGY_CONTEXT, category, type_, NO_CODE, ANATOMIC_CONTEXT, region, NO_CODE))


@dataclass(frozen=True)
class SlicerStructure:
    """A structure of ``CoopSegLib.vocabulary`` (its code, segment ID and name) as a Slicer segment shows it."""

    code: int  # CoopSeg's canonical label code
    segment_id: str
    name: str
    color: Tuple[float, float, float]  # RGB in [0, 1]
    terminology: str


_APPEARANCE = {  # code -> (colour, terminology entry)
    LV_CAVITY: ((0.89, 0.26, 0.20), terminology_entry(ANATOMICAL_STRUCTURE, LEFT_VENTRICLE)),
    LV_MYOCARDIUM: ((0.95, 0.77, 0.21), terminology_entry(ANATOMICAL_STRUCTURE, MYOCARDIUM, LEFT_VENTRICLE)),
    RV_CAVITY: ((0.24, 0.50, 0.85), terminology_entry(ANATOMICAL_STRUCTURE, RIGHT_VENTRICLE)),
}
SLICER_STRUCTURES: Tuple[SlicerStructure, ...] = tuple(
    SlicerStructure(s.code, s.segment_id, s.name, *_APPEARANCE[s.code]) for s in STRUCTURES)


def type_code(terminology: str) -> str:
    """The type's SNOMED code value of a serialised terminology entry, e.g. '87878005'."""
    return terminology.split("~")[2].split("^")[1]


def set_terminology(segment, entry: str) -> None:
    """Tag ``segment`` (a vtkSegment) with the serialised terminology ``entry``."""
    segment.SetTag(segment.GetTerminologyEntryTagName(), entry)


def segment_terminology(segment) -> str:
    """The serialised terminology entry of ``segment``; "" when it has none."""
    import vtk

    value = vtk.reference("")
    return str(value) if segment.GetTag(segment.GetTerminologyEntryTagName(), value) else ""


def load_terminology(terminologies_logic) -> str:
    """Load the module's terminology context into Slicer's terminologies logic (once); returns its name."""
    import vtk

    names = vtk.vtkStringArray()
    terminologies_logic.GetLoadedTerminologyNames(names)
    if TERMINOLOGY_CONTEXT in {names.GetValue(i) for i in range(names.GetNumberOfValues())}:
        return TERMINOLOGY_CONTEXT
    loaded = terminologies_logic.LoadTerminologyFromFile(str(TERMINOLOGY_FILE))
    if loaded != TERMINOLOGY_CONTEXT:
        raise RuntimeError(f"{TERMINOLOGY_FILE}: Slicer's terminologies logic did not load it (got {loaded!r})")
    return loaded
