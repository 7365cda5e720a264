"""CoopSeg's Slicer module logic on MRML nodes, free of Qt (runs inside Slicer and on slicer-core in plain Python).

The module's widget (CoopSeg.py) calls ``CoopSegSceneLogic``; CoopSegLib does the computing and knows nothing of
MRML. Files: volumes (volume node <-> array + affine), terminology (segment names, colours, SNOMED codes),
segmentations (label maps <-> segmentation nodes), tables, previews (hard examples), task (worker thread),
logic (the whole job), headless (a scene without the Slicer application, for tests and pictures).
"""

from CoopSegMRML.logic import (
    DEVICES,
    INPUT_REFERENCE,
    NO_DEFAULT_MODEL,
    ROLE_ATTRIBUTE,
    STAGE_TITLES,
    ComputedSegmentation,
    CoopSegSceneLogic,
    ResultNodes,
    describe_device,
)
from CoopSegMRML.previews import SCHEME_LABELS, PreviewNodes
from CoopSegMRML.task import CANCELLED, FAILED, FINISHED, RUNNING, BackgroundTask, Status
from CoopSegMRML.terminology import STRUCTURES, Structure

__all__ = [
    "CANCELLED", "DEVICES", "FAILED", "FINISHED", "INPUT_REFERENCE", "NO_DEFAULT_MODEL", "ROLE_ATTRIBUTE", "RUNNING",
    "SCHEME_LABELS", "STAGE_TITLES", "STRUCTURES", "BackgroundTask", "ComputedSegmentation", "CoopSegSceneLogic",
    "PreviewNodes", "ResultNodes", "Status", "Structure", "describe_device",
]
