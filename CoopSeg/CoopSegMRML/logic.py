"""The module's logic on MRML nodes, without Qt: segment a volume node into "initial (FTN)" and "refined (FTN+STN)"
segmentation nodes, switch between them, preview hard examples, tabulate volumes and clinical indices.

Everything here runs on slicer-core in plain Python (the tests do) as well as inside Slicer. Only ``compute`` may
run on a worker thread: it touches no MRML node. Nodes made for an input volume point back to it through the node
reference ``INPUT_REFERENCE`` and carry their role in the ``ROLE_ATTRIBUTE`` attribute, so running again refills
them instead of piling up copies.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

import numpy as np

from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.indices import ClinicalIndices, clinical_indices
from CoopSegLib.inference import Segmentation, Segmenter, preview_hard_example
from CoopSegLib.weights import default_bundle, has_default_bundle
from CoopSegMRML.previews import PreviewNodes, preview_nodes
from CoopSegMRML.segmentations import labels_from_segmentation, place_beside, segmentation_from_labels
from CoopSegMRML.tables import fill_clinical_index_table, fill_segment_volume_table, segment_volume_rows
from CoopSegMRML.task import BackgroundTask
from CoopSegMRML.volumes import volume_image

DEVICES = {"auto": "auto", "cpu": "cpu", "gpu": "cuda"}  # GUI choice -> torch device string
STAGE_TITLES = {"initial": "initial (FTN)", "refined": "refined (FTN+STN)"}
ROLE_ATTRIBUTE = "CoopSeg.Role"
INPUT_REFERENCE = "CoopSegInput"
NO_DEFAULT_MODEL = ("This CoopSeg install has no default model (its weights folder is missing): choose a model "
                    "bundle folder (a *.coopseg folder; train one with python Training/train.py).")

ProgressCallback = Callable[[float, str], None]


@dataclass
class ComputedSegmentation:
    """What the worker hands back: label maps on the input grid and the device that made them."""

    segmentation: Segmentation
    device: str


@dataclass
class ResultNodes:
    initial: Any  # vtkMRMLSegmentationNode "<volume> initial (FTN)"
    refined: Any  # vtkMRMLSegmentationNode "<volume> refined (FTN+STN)"
    table: Any  # vtkMRMLTableNode: per-segment volumes and Dice initial vs refined
    device: str = ""

    def node(self, stage: str):
        return self.refined if stage == "refined" else self.initial


def describe_device(device: str) -> str:
    """'cpu' -> 'CPU', 'cuda' / 'cuda:1' -> 'GPU (cuda:1)': what the GUI shows as the device actually used."""
    return "CPU" if device == "cpu" else f"GPU ({device})" if device.startswith("cuda") else device


class CoopSegSceneLogic:
    """Segmentation, previews and indices for the volumes of one MRML scene."""

    def __init__(self, scene) -> None:
        self.scene = scene
        self._segmenters: Dict[Tuple[str, str], Segmenter] = {}
        self._lock = threading.Lock()  # the worker thread and the GUI thread share the segmenter cache

    # --- the model ------------------------------------------------------------------------------------------
    def segmenter(self, model: str = "", device: str = "auto") -> Segmenter:
        """The model bundle folder ``model`` ("" = the shipped default) loaded on ``device`` (auto / cpu / gpu);
        kept loaded for the next run."""
        if device not in DEVICES:
            raise CoopSegError(f"unknown device {device!r}; use one of {', '.join(DEVICES)}")
        if model:
            path = Path(model).expanduser().resolve()
        elif has_default_bundle():
            path = default_bundle()
        else:
            raise CoopSegError(NO_DEFAULT_MODEL)
        key = (str(path), device)
        with self._lock:
            if key not in self._segmenters:
                self._segmenters[key] = Segmenter(path, device=DEVICES[device])
            return self._segmenters[key]

    # --- segmenting -----------------------------------------------------------------------------------------
    def compute(self, array: np.ndarray, affine: np.ndarray, model: str = "", device: str = "auto",
                progress: Optional[ProgressCallback] = None, cancel: Any = None) -> ComputedSegmentation:
        """FTN and FTN+STN label maps for an image (array indexed I, J, K; IJK-to-RAS affine). No MRML: safe on a
        worker thread."""
        if progress is not None:
            progress(0.0, "loading model")
        segmenter = self.segmenter(model, device)
        result = segmenter.segment(array, affine, stage="stn", progress=progress, cancel=cancel)
        return ComputedSegmentation(result, str(segmenter.device))

    def start(self, volume_node, model: str = "", device: str = "auto") -> BackgroundTask:
        """Read the volume now (GUI thread) and segment it on a worker thread; import the result with
        ``import_result`` once the task has FINISHED."""
        array, affine = volume_image(volume_node)
        array = np.array(array)  # a copy: the user may change or delete the volume while the worker runs
        return BackgroundTask(lambda progress, cancel: self.compute(array, affine, model, device, progress,
                                                                    cancel)).start()

    def import_result(self, volume_node, computed: ComputedSegmentation) -> ResultNodes:
        """Segmentation nodes and the volume table for ``computed``, made from ``volume_node`` (refilled if they
        exist)."""
        existing = self.results(volume_node)
        name = volume_node.GetName()
        nodes = {}
        for stage, labels in (("initial", computed.segmentation.initial), ("refined", computed.segmentation.refined)):
            node = segmentation_from_labels(self.scene, f"{name} {STAGE_TITLES[stage]}", labels, volume_node,
                                            existing.node(stage) if existing else None)
            self._mark(node, stage, volume_node)
            nodes[stage] = node
        table = existing.table if existing else self.scene.AddNewNodeByClass("vtkMRMLTableNode")
        table.SetName(f"{name} segment volumes")
        _, affine = volume_image(volume_node)
        fill_segment_volume_table(table, segment_volume_rows(computed.segmentation.initial,
                                                             computed.segmentation.refined, affine))
        self._mark(table, "volumes", volume_node)
        place_beside(table, volume_node)
        result = ResultNodes(nodes["initial"], nodes["refined"], table, computed.device)
        self.show(result, "refined")
        return result

    def segment(self, volume_node, model: str = "", device: str = "auto",
                progress: Optional[ProgressCallback] = None, cancel: Any = None) -> ResultNodes:
        """Segment ``volume_node`` on this thread (scripts, tests and the self-test); the GUI uses ``start``."""
        array, affine = volume_image(volume_node)
        return self.import_result(volume_node, self.compute(array, affine, model, device, progress, cancel))

    # --- finding and showing results ------------------------------------------------------------------------
    def _mark(self, node, role: str, volume_node) -> None:
        node.SetAttribute(ROLE_ATTRIBUTE, role)
        node.SetNodeReferenceID(INPUT_REFERENCE, volume_node.GetID())

    def _find(self, class_name: str, role: str, volume_node):
        for index in range(self.scene.GetNumberOfNodesByClass(class_name)):
            node = self.scene.GetNthNodeByClass(index, class_name)
            if node.GetAttribute(ROLE_ATTRIBUTE) == role and node.GetNodeReferenceID(INPUT_REFERENCE) == \
                    volume_node.GetID():
                return node
        return None

    def results(self, volume_node) -> Optional[ResultNodes]:
        """The result nodes made from ``volume_node``, or None when it has not been segmented."""
        initial = self._find("vtkMRMLSegmentationNode", "initial", volume_node)
        refined = self._find("vtkMRMLSegmentationNode", "refined", volume_node)
        table = self._find("vtkMRMLTableNode", "volumes", volume_node)
        if initial is None or refined is None or table is None:
            return None
        return ResultNodes(initial, refined, table)

    @staticmethod
    def show(result: ResultNodes, stage: str) -> None:
        """Show the ``stage`` ("initial" or "refined") segmentation in the views and hide the other."""
        if stage not in STAGE_TITLES:
            raise CoopSegError(f"unknown stage {stage!r}; use initial or refined")
        for name in STAGE_TITLES:
            display = result.node(name).GetDisplayNode()
            if display is not None:
                display.SetVisibility(name == stage)

    # --- hard examples --------------------------------------------------------------------------------------
    def preview(self, volume_node, slice_index: int, scheme: str = "channel", fraction: float = 0.3,
                soft_factor: float = 0.0, seed: int = 0, model: str = "", device: str = "auto") -> PreviewNodes:
        """Corrupted image and segmentation nodes of slice ``slice_index`` (along the input's stack axis)."""
        array, affine = volume_image(volume_node)
        preview = preview_hard_example(self.segmenter(model, device), array, affine, slice_index, scheme, fraction,
                                       soft_factor, seed)
        image = self._find("vtkMRMLScalarVolumeNode", "preview image", volume_node)
        segmentation = self._find("vtkMRMLSegmentationNode", "preview segmentation", volume_node)
        existing = PreviewNodes(image, segmentation) if image is not None and segmentation is not None else None
        nodes = preview_nodes(self.scene, volume_node, preview, existing)
        self._mark(nodes.image, "preview image", volume_node)
        self._mark(nodes.segmentation, "preview segmentation", volume_node)
        return nodes

    # --- clinical indices -----------------------------------------------------------------------------------
    def clinical_indices(self, ed_volume, es_volume) -> Tuple[Any, ClinicalIndices]:
        """(table node, indices) from the refined segmentations of the ED and ES volumes of one subject, read back
        from their segmentation nodes (so edits made in the Segment Editor count)."""
        if ed_volume is None or es_volume is None:
            raise CoopSegError("choose both the end-diastolic (ED) and the end-systolic (ES) volume")
        if ed_volume is es_volume:
            raise CoopSegError("the ED and ES volumes are the same volume; choose the two phases of one subject")
        labels = {}
        for phase, volume in (("ED", ed_volume), ("ES", es_volume)):
            result = self.results(volume)
            if result is None:
                raise CoopSegError(f"segment the {phase} volume '{volume.GetName()}' first (Apply)")
            labels[phase] = (labels_from_segmentation(result.refined, volume), volume_image(volume)[1])
        indices = clinical_indices(labels["ED"][0], labels["ED"][1], labels["ES"][0], labels["ES"][1])
        table = self._find("vtkMRMLTableNode", "indices", ed_volume)
        if table is None or table.GetNodeReferenceID("CoopSegES") != es_volume.GetID():
            table = self.scene.AddNewNodeByClass("vtkMRMLTableNode")
        table.SetName(f"{ed_volume.GetName()} / {es_volume.GetName()} clinical indices")
        fill_clinical_index_table(table, indices)
        self._mark(table, "indices", ed_volume)
        table.SetNodeReferenceID("CoopSegES", es_volume.GetID())
        place_beside(table, ed_volume)
        return table, indices
