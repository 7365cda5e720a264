"""Shared helpers for the Slicer-module tests (not a test module): the module's Qt-free package on the path, a
slicer-core scene, real ACDC files and a tiny trained bundle.

The tests need slicer-core (pip install slicer-core, the `slicer` extra); they are skipped with a reason without it.
"""

from __future__ import annotations

import sys

import pytest

from data_helpers import ACDC_ROOT, REPO, needs_acdc  # noqa: F401  (re-exported for the Slicer tests)

MODULE_DIR = REPO / "CoopSeg"
if str(MODULE_DIR) not in sys.path:
    sys.path.insert(0, str(MODULE_DIR))  # Slicer puts the module's folder on sys.path the same way

slicer = pytest.importorskip("slicer", reason="slicer-core is not installed (pip install slicer-core)")
if not hasattr(slicer, "vtkMRMLScene"):
    pytest.skip("the installed 'slicer' package is not slicer-core", allow_module_level=True)

ACDC_PATIENT = ACDC_ROOT / "patient001"
ACDC_ED = ACDC_PATIENT / "patient001_frame01.nii.gz"
ACDC_ES = ACDC_PATIENT / "patient001_frame12.nii.gz"


def new_scene():
    from CoopSegMRML.headless import headless_scene

    return headless_scene()


def segment_ids(segmentation_node) -> list:
    segmentation = segmentation_node.GetSegmentation()
    return [segmentation.GetNthSegmentID(i) for i in range(segmentation.GetNumberOfSegments())]
