"""Cines in MRML: a volume sequence played by a sequence browser (Sequences module; a 4D NIfTI loads as one), its
frames as one (X, Y, Z, T) array for the worker, the segmentation sequences that come back (synchronised in the same
browser, so they follow the image frame by frame), and the volume curve as a table and a plot chart.

The input is the browser's proxy volume (the node the views show and the module's input selector offers). Each
result sequence has a segmentation proxy node the Segment Editor can edit; the browser saves edits back into the
sequence (``SetSaveChanges``), and the indices are computed from the sequence's frames as they are then.
Only MRML core and the Sequences logic are used (on slicer-core as in Slicer 5.6+); checked against v5.6.2.
"""

from __future__ import annotations

import csv
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple, Union

import numpy as np
import slicer

from CoopSegLib.errors import CoopSegError
from CoopSegMRML.segmentations import labels_from_segmentation, place_beside, segmentation_from_labels
from CoopSegMRML.tables import fill_table
from CoopSegMRML.volumes import volume_image

LV_COLUMN, MYO_COLUMN, RV_COLUMN = "LV cavity (mL)", "LV myocardium (mL)", "RV cavity (mL)"
FRAME_COLUMN, QUALITY_COLUMN, MARK_COLUMN = "Frame", "Quality", "Mark"
CURVE_COLORS = {LV_COLUMN: (0.89, 0.26, 0.20), RV_COLUMN: (0.24, 0.50, 0.85)}  # the segments' colours


@dataclass
class Cine:
    browser: Any  # vtkMRMLSequenceBrowserNode that plays the input
    sequence: Any  # vtkMRMLSequenceNode of the input's volumes

    @property
    def frames(self) -> int:
        return self.sequence.GetNumberOfDataNodes()


@dataclass
class CurveNodes:
    curve: Any  # vtkMRMLTableNode: frame, volumes, quality
    marks: Any  # vtkMRMLTableNode: ED, ES and the frames flagged for review, at their LV volume
    chart: Any  # vtkMRMLPlotChartNode: LV and RV volume against frame, the marks on the LV curve
    series: List[Any]  # its vtkMRMLPlotSeriesNodes

    def nodes(self) -> List[Any]:
        return [self.curve, self.marks, self.chart, *self.series]


def sequences_logic(scene):
    """The Sequences module's logic: Slicer's, or the one ``headless_scene`` registered on slicer-core."""
    logics = getattr(scene, "logics_", None) or {}
    if "Sequences" in logics:
        return logics["Sequences"]
    return slicer.modules.sequences.logic()


def cine_of(volume_node) -> Optional[Cine]:
    """The cine whose proxy ``volume_node`` is (a browser's volume sequence of two frames or more), else None."""
    scene = volume_node.GetScene() if volume_node is not None else None
    if scene is None:
        return None
    for index in range(scene.GetNumberOfNodesByClass("vtkMRMLSequenceBrowserNode")):
        browser = scene.GetNthNodeByClass(index, "vtkMRMLSequenceBrowserNode")
        if not browser.IsProxyNodeID(volume_node.GetID()):
            continue
        sequence = browser.GetSequenceNode(volume_node)
        if sequence is not None and sequence.GetNumberOfDataNodes() > 1:
            return Cine(browser, sequence)
    return None


def cine_image(cine: Cine, proxy_volume) -> Tuple[np.ndarray, np.ndarray]:
    """(X, Y, Z, T) array of every frame and the IJK-to-RAS affine they share, or a CoopSegError naming the frame
    that differs (CoopSeg segments a cine on one grid)."""
    _, affine = volume_image(proxy_volume)  # the proxy's checks (image data, one component, linear transform)
    frames = []
    for t in range(cine.frames):
        node = cine.sequence.GetNthDataNode(t)
        if node is None or not node.IsA("vtkMRMLScalarVolumeNode"):
            raise CoopSegError(f"frame {t} of sequence '{cine.sequence.GetName()}' is not a scalar volume")
        array, frame_affine = volume_image(node)
        if frames and array.shape != frames[0].shape:
            raise CoopSegError(f"frame {t} of '{cine.sequence.GetName()}' has shape {array.shape}, frame 0 "
                               f"{frames[0].shape}; CoopSeg segments cines whose frames share one grid")
        if not np.allclose(frame_affine[:3], affine[:3], atol=1e-4):
            raise CoopSegError(f"frame {t} of '{cine.sequence.GetName()}' lies on another grid than the others; "
                               "CoopSeg segments cines whose frames share one grid")
        frames.append(array)
    return np.stack(frames, axis=-1), affine


def add_segmentation_sequence(scene, cine: Cine, name: str, labels: np.ndarray, proxy_volume,
                              created: List[Any], attributes: Optional[Dict[str, str]] = None):
    """A segmentation sequence holding frame t of ``labels`` (X, Y, Z, T) at the input's t-th index value,
    synchronised in the cine's browser, with a proxy segmentation node named ``name`` showing the current frame;
    edits to the proxy are saved into the sequence. ``attributes`` go on every frame (the browser copies a frame's
    attributes into the proxy when it shows it; node references stay). Every node made is appended to
    ``created``; returns the proxy."""
    sequence = scene.AddNewNodeByClass("vtkMRMLSequenceNode", scene.GenerateUniqueName(f"{name} sequence"))
    created.append(sequence)
    sequence.SetIndexName(cine.sequence.GetIndexName())
    sequence.SetIndexUnit(cine.sequence.GetIndexUnit())
    sequence.SetIndexType(cine.sequence.GetIndexType())
    current = max(cine.browser.GetSelectedItemNumber(), 0)
    for t in range(labels.shape[3]):
        frame = segmentation_from_labels(scene, name, labels[..., t], proxy_volume)
        for key, value in (attributes or {}).items():
            frame.SetAttribute(key, value)
        try:
            sequence.SetDataNodeAtValue(frame, cine.sequence.GetNthIndexValue(t))  # the sequence keeps a copy
        finally:
            scene.RemoveNode(frame)
    proxy = segmentation_from_labels(scene, name, labels[..., current], proxy_volume)
    created.append(proxy)
    for key, value in (attributes or {}).items():
        proxy.SetAttribute(key, value)
    # AddProxyNode also synchronises the sequence; in one modification, so that the Sequences logic, which makes a
    # proxy for a synchronised sequence that has none, sees the sequence only with this proxy and these settings.
    modifying = cine.browser.StartModify()
    try:
        cine.browser.AddProxyNode(proxy, sequence, False)
        cine.browser.SetSaveChanges(sequence, True)  # Segment Editor edits to the proxy go into the frame shown
        cine.browser.SetOverwriteProxyName(sequence, False)
    finally:
        cine.browser.EndModify(modifying)
    return proxy


def remove_from_browser(cine: Cine, sequence) -> None:
    """Stop ``sequence`` being played by the cine's browser (before it is removed, when an import is undone)."""
    if sequence is not None and cine.browser.IsSynchronizedSequenceNode(sequence):
        cine.browser.RemoveSynchronizedSequenceNode(sequence.GetID())


def sequence_labels(sequence, reference_volume) -> np.ndarray:
    """Every frame of a segmentation sequence as (X, Y, Z, T) labels on ``reference_volume``'s grid, read as the
    frames are now (edits the browser saved count)."""
    scene = reference_volume.GetScene()
    frames = []
    for t in range(sequence.GetNumberOfDataNodes()):
        reader = scene.AddNewNodeByClass("vtkMRMLSegmentationNode", "CoopSeg temporary frame")
        try:
            place_beside(reader, reference_volume)  # the same transform: labels come back on the volume's grid
            reader.GetSegmentation().DeepCopy(sequence.GetNthDataNode(t).GetSegmentation())
            frames.append(labels_from_segmentation(reader, reference_volume))
        finally:
            scene.RemoveNode(reader)
    return np.stack(frames, axis=-1)


def read_frame_quality(path: Union[str, Path, None], frames: int) -> Optional[List[float]]:
    """The per-frame quality column of the worker's NAME_curve.csv (``coopseg segment``'s), or None when absent
    or not one per frame (the curve is still drawn, without quality)."""
    if not path or not Path(path).is_file():
        return None
    with open(path, newline="", encoding="utf-8") as stream:
        rows = list(csv.DictReader(stream))
    try:
        quality = [float(row["quality"]) if row.get("quality") else math.nan for row in rows]
    except (KeyError, ValueError):
        return None
    return quality if len(quality) == frames else None


def mark_rows(analysis) -> List[Tuple[int, float, str]]:
    """(frame, LV volume, mark) for ED, ES and each frame flagged for review."""
    marks = [(analysis.ed, "ED"), (analysis.es, "ES")] + [(t, "review") for t in analysis.flagged]
    return [(t, analysis.frames[t].lv_ml, mark) for t, mark in marks]


def fill_curve(nodes: CurveNodes, analysis) -> None:
    """Put a ``CineAnalysis``'s curve and marks into the curve nodes' tables."""
    frames = analysis.frames
    fill_table(nodes.curve, [(FRAME_COLUMN, [f.frame for f in frames]), (LV_COLUMN, [f.lv_ml for f in frames]),
                             (MYO_COLUMN, [f.myo_ml for f in frames]), (RV_COLUMN, [f.rv_ml for f in frames]),
                             (QUALITY_COLUMN, [f.quality for f in frames])])
    marks = mark_rows(analysis)
    fill_table(nodes.marks, [(FRAME_COLUMN, [m[0] for m in marks]), (LV_COLUMN, [m[1] for m in marks]),
                             (MARK_COLUMN, [m[2] for m in marks])])


def add_curve_nodes(scene, name: str, analysis, created: List[Any]) -> CurveNodes:
    """Table, marks table and plot chart of a cine's LV and RV volume against frame; nodes made go to ``created``."""
    def add(class_name: str, title: str):
        node = scene.AddNewNodeByClass(class_name, scene.GenerateUniqueName(title))
        created.append(node)
        return node

    curve, marks = add("vtkMRMLTableNode", f"{name} volume curve"), add("vtkMRMLTableNode", f"{name} ED ES marks")
    chart = add("vtkMRMLPlotChartNode", f"{name} volume curve chart")
    chart.SetTitle(f"{name}: ventricular volume per frame")
    chart.SetXAxisTitle("frame")
    chart.SetYAxisTitle("volume (mL)")
    series = []
    for table, column, title in ((curve, LV_COLUMN, "LV cavity"), (curve, RV_COLUMN, "RV cavity"),
                                 (marks, LV_COLUMN, "ED / ES / review")):
        plot = add("vtkMRMLPlotSeriesNode", f"{name} {title}")
        plot.SetAndObserveTableNodeID(table.GetID())
        plot.SetXColumnName(FRAME_COLUMN)
        plot.SetYColumnName(column)
        plot.SetPlotType(slicer.vtkMRMLPlotSeriesNode.PlotTypeScatter)
        if table is marks:  # markers only, each named (ED, ES, review) by its label
            plot.SetLineStyle(slicer.vtkMRMLPlotSeriesNode.LineStyleNone)
            plot.SetMarkerStyle(slicer.vtkMRMLPlotSeriesNode.MarkerStyleDiamond)
            plot.SetMarkerSize(12)
            plot.SetLabelColumnName(MARK_COLUMN)
            plot.SetColor(0.1, 0.1, 0.1)
        else:
            plot.SetColor(*CURVE_COLORS[column])
        chart.AddAndObservePlotSeriesNodeID(plot.GetID())
        series.append(plot)
    nodes = CurveNodes(curve, marks, chart, series)
    fill_curve(nodes, analysis)
    return nodes
