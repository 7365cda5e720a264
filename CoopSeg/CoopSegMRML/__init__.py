"""CoopSeg's Slicer module logic on MRML nodes, free of Qt (runs inside Slicer and on slicer-core in plain Python).

The module's widget (CoopSeg.py) calls ``CoopSegSceneLogic``; CoopSegLib does the computing and knows nothing of
MRML. Files: volumes (volume node <-> array + affine), terminology (segment names, colours, SNOMED codes, the
module's terminology context), segmentations (label maps <-> segmentation nodes), tables, previews (hard examples),
worker_process (the worker command's process, polled without Qt), quality (the worker's quality estimate),
logic (the whole job), headless (a scene without the Slicer application, for tests and pictures).
"""

from CoopSegMRML.logic import (
    DEVICES,
    INPUT_REFERENCE,
    NO_DEFAULT_MODEL,
    ROLE_ATTRIBUTE,
    STAGE_TITLES,
    CoopSegSceneLogic,
    ResultNodes,
    SegmentationJob,
    describe_device,
)
from CoopSegMRML.previews import SCHEME_LABELS, PreviewNodes
from CoopSegMRML.quality import QualityEstimate, read_quality
from CoopSegMRML.terminology import SLICER_STRUCTURES, SlicerStructure
from CoopSegMRML.worker_process import CANCELLED, FAILED, FINISHED, RUNNING, Status, WorkerProcess

__all__ = [
    "CANCELLED", "DEVICES", "FAILED", "FINISHED", "INPUT_REFERENCE", "NO_DEFAULT_MODEL", "ROLE_ATTRIBUTE", "RUNNING",
    "SCHEME_LABELS", "STAGE_TITLES", "SLICER_STRUCTURES", "CoopSegSceneLogic", "PreviewNodes", "QualityEstimate",
    "ResultNodes", "SegmentationJob", "SlicerStructure", "Status", "WorkerProcess", "describe_device", "read_quality",
]
