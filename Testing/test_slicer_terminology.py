"""Terminology that Slicer 5.6 reads: the segments' terminology tag (not vtkSegment.SetTerminology, Slicer 5.10 and
later) naming the module's own terminology context, whose file holds all three structures (Slicer's default list
has no myocardium) and loads into Slicer's terminologies logic."""

from __future__ import annotations

import json
import os
import sys

from data_helpers import REPO
from slicer_helpers import slicer

from CoopSegMRML.terminology import (
    SLICER_STRUCTURES,
    TERMINOLOGY_CONTEXT,
    TERMINOLOGY_FILE,
    load_terminology,
    segment_terminology,
    set_terminology,
)


def codes(entry_part: str) -> tuple:
    scheme, value, _ = entry_part.split("^")
    return scheme, value


def test_the_terminology_file_holds_every_structure():
    content = json.loads(TERMINOLOGY_FILE.read_text())
    assert content["SegmentationCategoryTypeContextName"] == TERMINOLOGY_CONTEXT
    offered = {(c["CodingSchemeDesignator"], c["CodeValue"], t["CodingSchemeDesignator"], t["CodeValue"])
               for c in content["SegmentationCodes"]["Category"] for t in c["Type"]}
    for structure in SLICER_STRUCTURES:
        parts = structure.terminology.split("~")
        assert parts[0] == TERMINOLOGY_CONTEXT
        assert codes(parts[1]) + codes(parts[2]) in offered, structure.name
    assert ("SCT", "123037004", "SCT", "74281007") in offered  # the myocardium is an anatomical structure
    assert {c["CodeValue"] for c in content["SegmentationCodes"]["Category"]} == {"123037004"}
    for structure in SLICER_STRUCTURES:  # the DICOM SEG category of every segment
        assert structure.terminology.split("~")[1] == "SCT^123037004^Anatomical Structure", structure.name


def test_the_terminology_loads_without_torch():
    """The module loads the context at Slicer's start-up, before (and without) torch: saved scenes reopen right."""
    import subprocess

    code = ("import sys; import CoopSegMRML.terminology; "
            "assert 'torch' not in sys.modules, 'torch was imported'; print('ok')")
    done = subprocess.run([sys.executable, "-c", code], cwd=str(REPO / "CoopSeg"), capture_output=True, text=True,
                          env=dict(os.environ, PYTHONPATH=os.pathsep.join([str(REPO), str(REPO / "CoopSeg")])))
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr


def test_the_file_loads_into_slicers_terminologies_logic_and_resolves_each_entry():
    logic = slicer.vtkSlicerTerminologiesModuleLogic()
    assert load_terminology(logic) == TERMINOLOGY_CONTEXT
    assert load_terminology(logic) == TERMINOLOGY_CONTEXT  # loaded once, found the second time
    for structure in SLICER_STRUCTURES:
        entry = slicer.vtkSlicerTerminologyEntry()
        assert logic.DeserializeTerminologyEntry(structure.terminology, entry), structure.name
        assert entry.GetTypeObject().GetCodeValue() == codes(structure.terminology.split("~")[2])[1]


def test_the_tag_round_trips_on_a_segment():
    segment = slicer.vtkSegment()
    assert segment_terminology(segment) != SLICER_STRUCTURES[1].terminology  # a new segment has Slicer's default
    set_terminology(segment, SLICER_STRUCTURES[1].terminology)
    assert segment_terminology(segment) == SLICER_STRUCTURES[1].terminology
    assert "SCT^74281007^Myocardium" in segment_terminology(segment)


def test_the_module_installs_the_terminology_file():
    cmake = (REPO / "CoopSeg" / "CMakeLists.txt").read_text()
    assert "Resources/Terminology/${MODULE_NAME}.term.json" in cmake
    assert TERMINOLOGY_FILE == REPO / "CoopSeg" / "Resources" / "Terminology" / "CoopSeg.term.json"
