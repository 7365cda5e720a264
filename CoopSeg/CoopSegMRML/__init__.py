"""CoopSeg's Slicer module logic on MRML nodes, free of Qt (runs inside Slicer and on slicer-core in plain Python).

The module's widget (CoopSeg.py) calls ``CoopSegSceneLogic``; CoopSegLib does the computing and knows nothing of
MRML. Files: volumes (volume node <-> array + affine), terminology (segment names, colours, SNOMED codes, the
module's terminology context), segmentations (label maps <-> segmentation nodes), tables, previews (hard examples),
worker_process (the worker command's process, polled without Qt),
logic (the whole job), headless (a scene without the Slicer application, for tests and pictures).

The names below are imported on first use (PEP 562): the module loads its terminology at Slicer's start-up
through ``CoopSegMRML.terminology`` without importing torch, which ``logic`` needs.
"""

from importlib import import_module

_SOURCES = {
    "logic": ("DEVICES", "INPUT_REFERENCE", "NO_DEFAULT_MODEL", "ROLE_ATTRIBUTE", "STAGE_TITLES", "CoopSegSceneLogic",
              "ResultNodes", "SegmentationJob", "describe_device"),
    "previews": ("SCHEME_LABELS", "PreviewNodes"),
    "terminology": ("SLICER_STRUCTURES", "SlicerStructure"),
    "worker_process": ("CANCELLED", "FAILED", "FINISHED", "RUNNING", "Status", "WorkerProcess"),
}
_WHERE = {name: module for module, names in _SOURCES.items() for name in names}
__all__ = sorted(_WHERE)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module 'CoopSegMRML' has no attribute {name!r}")
    value = getattr(import_module(f"CoopSegMRML.{_WHERE[name]}"), name)
    globals()[name] = value
    return value
