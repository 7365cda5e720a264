"""The module's logic on MRML nodes, without Qt: segment a volume node into "initial (FTN)" and "refined (FTN+STN)"
segmentation nodes, switch between them, preview hard examples, tabulate volumes and clinical indices.

Segmenting runs outside this process: ``start`` writes the volume to a temporary NRRD file with Slicer's own writer
(``CoopSegMRML.exchange``) and launches the CoopSegLib worker command (``CoopSegLib.inference.worker``, the code path
of ``coopseg segment``) with the Python given (Slicer's PythonSlicer inside Slicer); the GUI polls the job from a
timer, and ``import_result`` turns the worker's files into nodes on this (the main) thread, all or nothing. A run
makes new nodes unless an existing segmentation node is passed as ``output``, which is then overwritten (with its
initial node and table): results, and the edits made to them, are never replaced without the caller asking.
Previews (a fraction of a second) run in this process.

A cine input (the proxy volume of a sequence browser's volume sequence, ``CoopSegMRML.cine``) goes to the worker as
one 4D file; its results are segmentation sequences synchronised in the same browser, a volume curve (tables and a
plot chart) and an indices table from ED and ES (``cine_indices`` recomputes them after edits or with chosen frames).

Everything here runs on slicer-core in plain Python (the tests do) as well as inside Slicer. Result nodes point back
to their input through the node reference ``INPUT_REFERENCE``, carry their role in ``ROLE_ATTRIBUTE`` and the run
that wrote them in ``RUN_ATTRIBUTE``; the refined node references its initial node and table.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Optional, Tuple

import numpy as np
import slicer

import CoopSegLib
from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.indices import ClinicalIndices, clinical_indices
from CoopSegLib.inference.worker import command
from CoopSegLib.devices import DEVICES, device_choice
from CoopSegLib.quality_file import QualityRecord, read_quality_file, record_from_row
from CoopSegLib.vocabulary import ALL_STAGES
from CoopSegLib.weights import default_bundle, has_default_bundle, no_default_model
from CoopSegMRML.cine import (Cine, CurveNodes, add_curve_nodes, add_segmentation_sequence, cine_image, cine_of,
                             fill_curve, read_frame_quality, remove_from_browser, sequence_labels)
from CoopSegMRML.exchange import NRRD_SUFFIX, read_exchange_labels, write_exchange_image
from CoopSegMRML.previews import PreviewNodes, preview_nodes
from CoopSegMRML.segmentations import (NodeState, labels_from_segmentation, place_beside,
                                       segmentation_from_labels)
from CoopSegMRML.tables import fill_clinical_index_table, fill_segment_volume_table, segment_volume_rows
from CoopSegMRML.volumes import slice_centre, volume_image
from CoopSegMRML.worker_process import CANCELLED, FAILED, FINISHED, Launcher, Status, WorkerProcess

STAGE_TITLES = {stage.attribute: stage.node_title for stage in ALL_STAGES}  # "initial": "initial (FTN)"
ROLE_ATTRIBUTE = "CoopSeg.Role"
RUN_ATTRIBUTE = "CoopSeg.Run"
QUALITY_ATTRIBUTE = "CoopSeg.Quality"  # on the refined node: its quality.csv row as JSON, saved with the scene
INPUT_REFERENCE = "CoopSegInput"
INITIAL_REFERENCE = "CoopSegInitial"  # refined node -> its initial node
TABLE_REFERENCE = "CoopSegVolumes"  # refined node -> its volume table
SEQUENCE_REFERENCE = "CoopSegSequence"  # a cine's proxy segmentation node -> its segmentation sequence
CURVE_REFERENCE = "CoopSegCurve"  # a cine's refined proxy -> its curve table (marks, chart, indices table after it)
MARKS_REFERENCE, CHART_REFERENCE, INDICES_REFERENCE = "CoopSegMarks", "CoopSegChart", "CoopSegIndices"
# On a cine's refined segmentation sequence: ED / ES frames as last computed, per-frame quality, review threshold.
ED_ATTRIBUTE, ES_ATTRIBUTE = "CoopSeg.ED", "CoopSeg.ES"
FRAME_QUALITY_ATTRIBUTE = "CoopSeg.FrameQuality"  # space-separated, one per frame
THRESHOLD_ATTRIBUTE = "CoopSeg.QualityThreshold"
INPUT_NAME = "input"  # the temporary input file's name; the worker's outputs are named after it
NO_DEFAULT_MODEL = no_default_model("choose a model bundle folder (a *.coopseg folder; train one with python "
                                    "Training/train.py)")


@dataclass
class ResultNodes:
    initial: Any  # vtkMRMLSegmentationNode "<volume> initial (FTN)"
    refined: Any  # vtkMRMLSegmentationNode "<volume> refined (FTN+STN)"
    table: Any  # vtkMRMLTableNode: per-segment volumes and Dice initial vs refined
    device: str = ""
    quality: Optional[QualityRecord] = None  # when the worker's folder held a quality estimate
    cine: Optional["CineResult"] = None  # for a cine input: its curve, ED / ES and indices

    def node(self, stage: str):
        return self.refined if stage == "refined" else self.initial


@dataclass
class CineResult:
    """What a cine's run adds: the segmentation sequences behind the proxy nodes, the volume curve (table, marks,
    plot chart), the indices table, and the analysis they show (``CoopSegLib.evaluation.cine.CineAnalysis``)."""

    initial_sequence: Any
    refined_sequence: Any
    curve: CurveNodes
    indices: Any  # vtkMRMLTableNode: ED and ES frames, then EDV, ESV, SV, EF of both ventricles, LV mass
    analysis: Any


@dataclass
class SegmentationJob:
    """A segmentation running in the worker process, started by ``CoopSegSceneLogic.start``."""

    process: WorkerProcess
    volume: Any  # the input volume node
    output: Any  # the segmentation node to overwrite, or None to make new nodes
    shape: Tuple[int, ...]  # the input's array shape when the job started ((X, Y, Z, T) for a cine)
    input_path: str = ""  # the temporary file the worker reads: a name that means nothing to the user
    cine: Optional[Cine] = None  # the sequence the input volume is the proxy of
    affine: Optional[np.ndarray] = None  # the input's IJK-to-RAS matrix as sent (the worker answers on that grid)

    def status(self) -> Status:
        """Progress and state, read without waiting (call it from the GUI's timer). A failure's message is the
        worker's one line, less the temporary input file's name it starts with (the GUI names the volume)."""
        status = self.process.poll()
        prefix = f"{self.input_path}: "
        if status.state == FAILED and self.input_path and status.message.startswith(prefix):
            return Status(status.state, status.fraction, status.message[len(prefix):])
        return status

    def cancel(self) -> Status:
        """Stop the worker; nothing of this job will be imported."""
        return self.process.cancel()

    def wait(self, timeout: Optional[float] = None) -> Status:
        return self.process.wait(timeout)


def describe_device(device: str) -> str:
    """'cpu' -> 'CPU', 'cuda' / 'cuda:1' -> 'GPU (cuda:1)': what the GUI shows as the device actually used."""
    return "CPU" if device == "cpu" else f"GPU ({device})" if device.startswith("cuda") else device


def coopseglib_root() -> str:
    """The folder holding the CoopSegLib package: the worker's PYTHONPATH."""
    return str(Path(CoopSegLib.__file__).resolve().parent.parent)


class CoopSegSceneLogic:
    """Segmentation, previews and indices for the volumes of one MRML scene.

    ``python``: the interpreter that runs the worker (default: this one; inside Slicer, PythonSlicer).
    ``launch``: how to start it (default ``subprocess.Popen``; inside Slicer, slicer.util.launchConsoleProcess).
    """

    def __init__(self, scene, python: Optional[str] = None, launch: Optional[Launcher] = None) -> None:
        self.scene = scene
        self.python = python or sys.executable
        self.launch = launch
        self._segmenters: Dict[Tuple[str, str], Any] = {}  # (model, device) -> Segmenter

    # --- the model ------------------------------------------------------------------------------------------
    @staticmethod
    def model_path(model: str = "") -> Path:
        """The model bundle folder ``model`` resolved, or the shipped default for ""."""
        if model:
            return Path(model).expanduser().resolve()
        if has_default_bundle():
            return default_bundle()
        raise CoopSegError(NO_DEFAULT_MODEL)

    @staticmethod
    def _device(device: str) -> str:
        try:  # the GUI's choices are runtime's DEVICES ("gpu", from older scenes, means cuda)
            return device_choice(device)
        except ValueError as error:
            raise CoopSegError(str(error)) from None

    def segmenter(self, model: str = "", device: str = "auto"):
        """The model bundle folder ``model`` ("" = the shipped default) loaded in this process on ``device``
        (auto / cpu / gpu), for previews; kept loaded for the next one."""
        key = (str(self.model_path(model)), self._device(device))
        if key not in self._segmenters:
            from CoopSegLib.inference import Segmenter  # torch: imported when a preview first needs the model

            self._segmenters[key] = Segmenter(key[0], device=key[1])
        return self._segmenters[key]

    # --- segmenting -----------------------------------------------------------------------------------------
    def start(self, volume_node, model: str = "", device: str = "auto", output=None,
              second_look: bool = False, allow_label_like_input: bool = False) -> SegmentationJob:
        """Write the volume to a temporary file and start the worker on it; poll the job, then ``import_result``.
        ``output``: a segmentation node to overwrite, or None for new nodes. ``second_look``: a result the quality
        estimate flags is segmented again on an in-plane-blurred input (``coopseg segment --second-look``).
        A volume that looks like a label map makes the worker fail with its one-line reason (the job's status
        message) unless ``allow_label_like_input``."""
        model_path, torch_device = self.model_path(model), self._device(device)
        if output is not None and not self.scene.IsNodePresent(output):
            raise CoopSegError("the chosen output segmentation is not in the scene")
        cine = cine_of(volume_node) if volume_node is not None else None
        if cine is not None and output is not None:
            raise CoopSegError(f"'{volume_node.GetName()}' is a cine: its results are always new segmentation "
                               "sequences; choose Create new segmentation")
        array, affine = cine_image(cine, volume_node) if cine is not None else volume_image(volume_node)
        folder = tempfile.mkdtemp(prefix="CoopSeg-")
        try:
            input_path = write_exchange_image(array, affine, Path(folder) / f"{INPUT_NAME}{NRRD_SUFFIX}")
            args = command(self.python, str(input_path), str(Path(folder) / "output"), str(model_path), torch_device,
                           second_look, allow_label_like_input)
            path = os.pathsep.join(p for p in (coopseglib_root(), os.environ.get("PYTHONPATH", "")) if p)
            process = WorkerProcess(args, {"PYTHONPATH": path}, self.launch, folder).start()
        except BaseException:
            shutil.rmtree(folder, ignore_errors=True)
            raise
        return SegmentationJob(process, volume_node, output, tuple(array.shape), str(input_path), cine, affine)

    def poll(self, job: SegmentationJob) -> Status:
        """The job's status, read without waiting (the GUI's timer calls this). When its input volume (or the
        output node to overwrite) has left the scene, the run is cancelled quietly: it is no longer wanted."""
        status = job.status()
        if status.state == CANCELLED:
            return status
        for node, what in ((job.volume, "input volume"), (job.output, "output segmentation")):
            if node is not None and not self.scene.IsNodePresent(node):
                job.cancel()
                return Status(CANCELLED, status.fraction, f"the {what} was removed from the scene")
        return status

    def import_result(self, job: SegmentationJob) -> ResultNodes:
        """The finished ``job``'s labels as nodes: new ones, or the job's output node (with its initial node and
        table) overwritten. All or nothing: any failure removes what was made and leaves an overwritten node as it
        was; nothing is made for a cancelled or failed job, nor when the input or the output node has left the
        scene (a closed scene included). Removes the job's temporary folder."""
        try:
            status = job.status()
            if status.state == CANCELLED:
                raise CoopSegError("the segmentation was cancelled; nothing was added")
            if status.state == FAILED:
                raise CoopSegError(f"the segmentation failed ({status.message}); nothing was added")
            if status.state != FINISHED:
                raise CoopSegError("the segmentation has not finished yet")
            volume = job.volume
            if not self.scene.IsNodePresent(volume):
                raise CoopSegError("the input volume left the scene while it was being segmented; nothing was added")
            if job.output is not None and not self.scene.IsNodePresent(job.output):
                raise CoopSegError(f"the output segmentation left the scene while '{volume.GetName()}' was being "
                                   "segmented; nothing was added")
            if volume.GetImageData() is None or tuple(volume.GetImageData().GetDimensions()) != job.shape[:3]:
                raise CoopSegError(f"volume '{volume.GetName()}' changed size while it was being segmented; "
                                   "nothing was added")
            files = job.process.result["files"]
            labels = {}
            for stage in STAGE_TITLES:
                labels[stage] = read_exchange_labels(files[stage], job.shape, job.affine)
            quality = self._quality(files)
            if job.cine is not None:
                if job.cine.frames != job.shape[3] or cine_of(volume) is None:
                    raise CoopSegError(f"cine '{volume.GetName()}' changed while it was being segmented; nothing "
                                       "was added")
                frame_quality = read_frame_quality(files.get("curve"), job.shape[3])
                return self._import_cine(volume, job.cine, labels["initial"], labels["refined"],
                                         job.process.result, quality, frame_quality)
            return self._import(volume, labels["initial"], labels["refined"], job.process.result["device"],
                                job.output, quality)
        finally:
            job.process.close()

    @staticmethod
    def _quality(files: Dict[str, str]) -> Optional[QualityRecord]:
        if "quality" not in files:
            return None
        try:
            return read_quality_file(files["quality"]).get(Path(files["refined"]).name.split(".")[0])
        except CoopSegError as error:  # the labels are still good: keep them, say why there is no estimate
            logging.warning("CoopSeg: no quality estimate: %s", error)
            return None

    def _import(self, volume, initial: np.ndarray, refined: np.ndarray, device: str, output,
                quality: Optional[QualityRecord]) -> ResultNodes:
        name = volume.GetName()
        created = []
        try:
            nodes = {}
            for stage, labels in (("initial", initial), ("refined", refined)):
                title = self.scene.GenerateUniqueName(f"{name} {STAGE_TITLES[stage]}")
                nodes[stage] = segmentation_from_labels(self.scene, title, labels, volume)
                created.append(nodes[stage])
            table = self.scene.AddNewNodeByClass("vtkMRMLTableNode", self.scene.GenerateUniqueName(
                f"{name} segment volumes"))
            created.append(table)
            _, affine = volume_image(volume)
            rows = segment_volume_rows(initial, refined, affine)
            fill_segment_volume_table(table, rows)
            place_beside(table, volume)
            if output is not None:
                nodes, table = self._overwrite(output, nodes, rows, volume, created)
            run = self._next_run()
            for role, node in (("initial", nodes["initial"]), ("refined", nodes["refined"]), ("volumes", table)):
                node.SetAttribute(ROLE_ATTRIBUTE, role)
                node.SetAttribute(RUN_ATTRIBUTE, str(run))
                node.SetNodeReferenceID(INPUT_REFERENCE, volume.GetID())
            nodes["refined"].SetNodeReferenceID(INITIAL_REFERENCE, nodes["initial"].GetID())
            nodes["refined"].SetNodeReferenceID(TABLE_REFERENCE, table.GetID())
            store_quality(nodes["refined"], quality)
        except BaseException:
            for node in created:
                if self.scene.IsNodePresent(node):
                    self.scene.RemoveNode(node)
            raise
        result = ResultNodes(nodes["initial"], nodes["refined"], table, device, quality)
        self.show(result, "refined")
        return result

    def _import_cine(self, volume, cine: Cine, initial: np.ndarray, refined: np.ndarray, done: Dict[str, Any],
                     quality: Optional[QualityRecord], frame_quality) -> ResultNodes:
        """A cine's labels as two segmentation sequences in the input's browser (proxies "<volume> initial (FTN)"
        and "<volume> refined (FTN+STN)"), the ED frame's volume table, the volume curve and the indices; all or
        nothing."""
        from CoopSegLib.evaluation.cine import analyse_cine

        name = volume.GetName()
        created, sequences = [], {}
        run = self._next_run()
        try:
            nodes = {}
            for stage, labels in (("initial", initial), ("refined", refined)):
                title = self.scene.GenerateUniqueName(f"{name} {STAGE_TITLES[stage]}")
                nodes[stage] = add_segmentation_sequence(self.scene, cine, title, labels, volume, created,
                                                         {ROLE_ATTRIBUTE: stage, RUN_ATTRIBUTE: str(run)})
                sequences[stage] = cine.browser.GetSequenceNode(nodes[stage])
                nodes[stage].SetNodeReferenceID(SEQUENCE_REFERENCE, sequences[stage].GetID())
            _, affine = volume_image(volume)
            threshold = done.get("threshold")
            analysis = analyse_cine(refined, affine, frame_quality, threshold=threshold)
            table = self.scene.AddNewNodeByClass("vtkMRMLTableNode", self.scene.GenerateUniqueName(
                f"{name} segment volumes (ED frame {analysis.ed})"))
            created.append(table)
            ed = analysis.ed
            fill_segment_volume_table(table, segment_volume_rows(initial[..., ed], refined[..., ed], affine))
            curve = add_curve_nodes(self.scene, name, analysis, created)
            indices = self.scene.AddNewNodeByClass("vtkMRMLTableNode", self.scene.GenerateUniqueName(
                f"{name} clinical indices"))
            created.append(indices)
            fill_cine_indices(indices, analysis)
            for node in (table, *curve.nodes(), indices):
                place_beside(node, volume)
            roles = (("initial", nodes["initial"]), ("refined", nodes["refined"]), ("volumes", table),
                     ("curve", curve.curve), ("cine indices", indices))
            for role, node in roles:
                node.SetAttribute(ROLE_ATTRIBUTE, role)
                node.SetAttribute(RUN_ATTRIBUTE, str(run))
                node.SetNodeReferenceID(INPUT_REFERENCE, volume.GetID())
            refined_node = nodes["refined"]
            refined_node.SetNodeReferenceID(INITIAL_REFERENCE, nodes["initial"].GetID())
            refined_node.SetNodeReferenceID(TABLE_REFERENCE, table.GetID())
            for reference, node in ((CURVE_REFERENCE, curve.curve), (MARKS_REFERENCE, curve.marks),
                                    (CHART_REFERENCE, curve.chart), (INDICES_REFERENCE, indices)):
                refined_node.SetNodeReferenceID(reference, node.GetID())
            # On the sequence (a proxy takes its attributes from the frame shown), saved with the scene: the curve
            # is redrawn with its quality after edits.
            if frame_quality is not None:
                sequences["refined"].SetAttribute(FRAME_QUALITY_ATTRIBUTE, " ".join(f"{q:.4f}" for q in frame_quality))
            store_quality(sequences["refined"], quality)  # the whole cine's estimate, where a frame change keeps it
            if threshold is not None:
                sequences["refined"].SetAttribute(THRESHOLD_ATTRIBUTE, f"{float(threshold):.4f}")
        except BaseException:
            for sequence in sequences.values():
                remove_from_browser(cine, sequence)
            for node in reversed(created):
                if self.scene.IsNodePresent(node):
                    self.scene.RemoveNode(node)
            raise
        cine_result = CineResult(sequences["initial"], sequences["refined"], curve, indices, analysis)
        result = ResultNodes(nodes["initial"], nodes["refined"], table, done["device"], quality, cine_result)
        self.show(result, "refined")
        return result

    def cine_indices(self, volume_node, ed: Optional[int] = None, es: Optional[int] = None,
                     keep: bool = False, refined=None) -> CineResult:
        """Recompute the newest cine result of ``volume_node`` from its refined segmentation sequence as it is now
        (Segment Editor edits count): curve, marks and indices, with ED and ES found (largest / smallest LV
        cavity) or the frames given (a user overriding them). The frames used are stored on the sequence (saved
        with the scene); ``keep``: use those stored frames where ``ed`` / ``es`` are not given. ``refined``: the
        run's refined proxy node (a run the user selected), else the newest run."""
        from CoopSegLib.evaluation.cine import analyse_cine

        result = self.results(volume_node, refined)
        if result is None or result.cine is None:
            raise CoopSegError(f"segment the cine '{volume_node.GetName() if volume_node else ''}' first (Apply)")
        sequence = result.cine.refined_sequence
        if keep:
            stored = [sequence.GetAttribute(name) for name in (ED_ATTRIBUTE, ES_ATTRIBUTE)]
            ed = int(stored[0]) if ed is None and (stored[0] or "").isdigit() else ed
            es = int(stored[1]) if es is None and (stored[1] or "").isdigit() else es
        labels = sequence_labels(sequence, volume_node)
        quality_text = sequence.GetAttribute(FRAME_QUALITY_ATTRIBUTE)
        quality = [float(q) for q in quality_text.split()] if quality_text else None
        threshold_text = sequence.GetAttribute(THRESHOLD_ATTRIBUTE)
        analysis = analyse_cine(labels, volume_image(volume_node)[1], quality, ed, es,
                                float(threshold_text) if threshold_text else None)
        fill_curve(result.cine.curve, analysis)
        fill_cine_indices(result.cine.indices, analysis)
        sequence.SetAttribute(ED_ATTRIBUTE, str(analysis.ed))
        sequence.SetAttribute(ES_ATTRIBUTE, str(analysis.es))
        result.cine.analysis = analysis
        return result.cine

    def _overwrite(self, output, made: Dict[str, Any], rows, volume, created) -> Tuple[Dict[str, Any], Any]:
        """Move the new content into ``output`` and its partners (those it has; new nodes stand in for the rest);
        the last step of an import. All or nothing: each existing node's state is captured first and put back if
        any step fails, so a failure after the first node leaves every existing node as it was."""
        partners = {"refined": output, "initial": output.GetNodeReference(INITIAL_REFERENCE)}
        targets = {stage: node for stage, node in partners.items()
                   if node is not None and node.IsA("vtkMRMLSegmentationNode")}
        table = output.GetNodeReference(TABLE_REFERENCE)
        table = table if table is not None and table.IsA("vtkMRMLTableNode") else None
        new_table = next(node for node in created if node.IsA("vtkMRMLTableNode"))
        states = [NodeState(node) for node in (*targets.values(), table) if node is not None]
        try:
            for stage, target in targets.items():
                place_beside(target, volume)
                target.GetSegmentation().DeepCopy(made[stage].GetSegmentation())
                target.SetReferenceImageGeometryParameterFromVolumeNode(volume)
                if target.GetDisplayNode() is None:
                    target.CreateDefaultDisplayNodes()
            if table is not None:
                fill_segment_volume_table(table, rows)
                place_beside(table, volume)
        except BaseException:
            for state in reversed(states):
                state.restore()
            raise
        # Only now are the stand-ins that were not needed removed (the caller removes all it made on a failure).
        for node in [made[stage] for stage in targets] + ([new_table] if table is not None else []):
            self.scene.RemoveNode(node)
            created.remove(node)
        return {**made, **targets}, table if table is not None else new_table

    def _next_run(self) -> int:
        runs = [int(node.GetAttribute(RUN_ATTRIBUTE)) for node in self._nodes("vtkMRMLSegmentationNode")
                if (node.GetAttribute(RUN_ATTRIBUTE) or "").isdigit()]
        return max(runs, default=0) + 1

    def segment(self, volume_node, model: str = "", device: str = "auto", output=None,
                timeout: Optional[float] = None, second_look: bool = False,
                allow_label_like_input: bool = False) -> ResultNodes:
        """Segment ``volume_node`` and wait for it (scripts and tests); the GUI polls ``start``'s job instead.
        A failed worker raises a CoopSegError with its message."""
        job = self.start(volume_node, model, device, output, second_look, allow_label_like_input)
        try:
            status = job.wait(timeout)
        except BaseException:
            job.cancel()
            raise
        if status.state == FAILED:
            raise CoopSegError(job.status().message)
        return self.import_result(job)

    # --- finding and showing results ------------------------------------------------------------------------
    def _mark(self, node, role: str, volume_node) -> None:
        node.SetAttribute(ROLE_ATTRIBUTE, role)
        node.SetNodeReferenceID(INPUT_REFERENCE, volume_node.GetID())

    def _nodes(self, class_name: str):
        return [self.scene.GetNthNodeByClass(i, class_name) for i in range(self.scene.GetNumberOfNodesByClass(
            class_name))]

    def _find(self, class_name: str, role: str, volume_node):
        """The newest node of ``role`` made from ``volume_node`` (the highest run; the last one added on a tie)."""
        found = [node for node in self._nodes(class_name) if node.GetAttribute(ROLE_ATTRIBUTE) == role
                 and node.GetNodeReferenceID(INPUT_REFERENCE) == volume_node.GetID()]
        run = [int(n.GetAttribute(RUN_ATTRIBUTE)) if (n.GetAttribute(RUN_ATTRIBUTE) or "").isdigit() else 0
               for n in found]
        return found[max(range(len(found)), key=lambda i: (run[i], i))] if found else None

    def results(self, volume_node, refined=None) -> Optional[ResultNodes]:
        """The result nodes made from ``volume_node``: those of the refined node ``refined`` (a run the user
        selected), or the newest; None when it has not been segmented. A ``refined`` node that is not one of this
        volume's results is refused."""
        if volume_node is None:
            return None
        if refined is not None:
            if refined.GetAttribute(ROLE_ATTRIBUTE) != "refined" or \
                    refined.GetNodeReferenceID(INPUT_REFERENCE) != volume_node.GetID():
                raise CoopSegError(f"'{refined.GetName()}' is not a CoopSeg result of '{volume_node.GetName()}'; "
                                   "choose one of its refined (FTN+STN) segmentations")
        else:
            refined = self._find("vtkMRMLSegmentationNode", "refined", volume_node)
        if refined is None:
            return None
        initial, table = refined.GetNodeReference(INITIAL_REFERENCE), refined.GetNodeReference(TABLE_REFERENCE)
        if initial is None or table is None:
            return None
        cine = self._cine_result(initial, refined)
        quality = stored_quality(refined) if cine is None else stored_quality(cine.refined_sequence)
        return ResultNodes(initial, refined, table, quality=quality, cine=cine)

    @staticmethod
    def _cine_result(initial, refined) -> Optional[CineResult]:
        """The cine nodes a refined proxy node references (None for a volume's result); the analysis is filled
        in by ``cine_indices``."""
        sequences = [node.GetNodeReference(SEQUENCE_REFERENCE) for node in (initial, refined)]
        parts = [refined.GetNodeReference(reference) for reference in (CURVE_REFERENCE, MARKS_REFERENCE,
                                                                       CHART_REFERENCE, INDICES_REFERENCE)]
        if None in sequences or None in parts:
            return None
        chart = parts[2]
        series = [chart.GetNthPlotSeriesNode(i) for i in range(chart.GetNumberOfPlotSeriesNodes())]
        return CineResult(sequences[0], sequences[1], CurveNodes(parts[0], parts[1], chart, series), parts[3], None)

    def runs(self, volume_node) -> List[Any]:
        """The refined segmentation nodes of every run made from ``volume_node``, oldest first."""
        if volume_node is None:
            return []
        found = [node for node in self._nodes("vtkMRMLSegmentationNode")
                 if node.GetAttribute(ROLE_ATTRIBUTE) == "refined"
                 and node.GetNodeReferenceID(INPUT_REFERENCE) == volume_node.GetID()]
        return sorted(found, key=lambda node: int(node.GetAttribute(RUN_ATTRIBUTE) or 0)
                      if (node.GetAttribute(RUN_ATTRIBUTE) or "0").isdigit() else 0)

    def show(self, result: ResultNodes, stage: str) -> None:
        """Show the ``stage`` ("initial" or "refined") segmentation of ``result`` in the views and hide its other
        one and every other run's segmentations of the same input: one overlay at a time."""
        if stage not in STAGE_TITLES:
            raise CoopSegError(f"unknown stage {stage!r}; use initial or refined")
        shown = result.node(stage)
        volume_id = result.refined.GetNodeReferenceID(INPUT_REFERENCE)
        for node in self._nodes("vtkMRMLSegmentationNode"):
            mine = node is result.initial or node is result.refined
            other_run = node.GetAttribute(ROLE_ATTRIBUTE) in STAGE_TITLES and volume_id is not None \
                and node.GetNodeReferenceID(INPUT_REFERENCE) == volume_id
            display = node.GetDisplayNode()
            if display is not None and (mine or other_run):
                display.SetVisibility(node is shown)

    def show_slice(self, volume_node, index: int) -> Tuple[float, float, float]:
        """Move every slice view to slice ``index`` of ``volume_node`` along its stack axis (a suspect slice of
        the quality estimate); the RAS point jumped to."""
        ras = slice_centre(volume_node, index)
        slicer.vtkMRMLSliceNode.JumpAllSlices(self.scene, *ras, slicer.vtkMRMLSliceNode.CenteredJumpSlice)
        return ras

    # --- hard examples --------------------------------------------------------------------------------------
    def preview(self, volume_node, slice_index: int, scheme: str = "channel", fraction: float = 0.3,
                soft_factor: float = 0.0, seed: int = 0, model: str = "", device: str = "auto") -> PreviewNodes:
        """Corrupted image and segmentation nodes of slice ``slice_index`` (along the input's stack axis)."""
        array, affine = volume_image(volume_node)
        from CoopSegLib.inference import preview_hard_example

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
    def clinical_indices(self, ed_volume, es_volume, ed_segmentation=None,
                         es_segmentation=None) -> Tuple[Any, ClinicalIndices]:
        """(table node, indices) from the refined segmentations of the ED and ES volumes of one subject, read back
        from their segmentation nodes (so edits made in the Segment Editor count): the runs the user selected
        (``ed_segmentation`` / ``es_segmentation``, refined nodes of those volumes), else each volume's newest."""
        if ed_volume is None or es_volume is None:
            raise CoopSegError("choose both the end-diastolic (ED) and the end-systolic (ES) volume")
        if ed_volume is es_volume:
            raise CoopSegError("the ED and ES volumes are the same volume; choose the two phases of one subject")
        labels = {}
        for phase, volume, chosen in (("ED", ed_volume, ed_segmentation), ("ES", es_volume, es_segmentation)):
            result = self.results(volume, chosen)
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


def store_quality(node, quality: Optional[QualityRecord]) -> None:
    """Keep ``quality`` on the refined segmentation node (an attribute: saved and restored with the scene), or
    remove an older run's estimate when this run has none."""
    if quality is None:
        node.RemoveAttribute(QUALITY_ATTRIBUTE)
    else:
        node.SetAttribute(QUALITY_ATTRIBUTE, json.dumps(quality.row()))


def stored_quality(node) -> Optional[QualityRecord]:
    """The estimate ``store_quality`` kept on ``node``; None when there is none or it cannot be read."""
    text = node.GetAttribute(QUALITY_ATTRIBUTE) if node is not None else None
    if not text:
        return None
    try:
        return record_from_row(json.loads(text), f"node '{node.GetName()}'")
    except (ValueError, TypeError, CoopSegError) as error:
        logging.warning("CoopSeg: the quality estimate stored on '%s' cannot be read: %s", node.GetName(), error)
        return None


def fill_cine_indices(table, analysis) -> None:
    """A cine's indices table: its ED and ES frames, then ``clinical_indices`` of those frames."""
    fill_clinical_index_table(table, analysis.indices, [("End-diastolic frame (largest LV cavity)", analysis.ed,
                                                         "frame"),
                                                        ("End-systolic frame (smallest LV cavity)", analysis.es,
                                                         "frame")])
