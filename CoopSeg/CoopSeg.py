"""CoopSeg: robust cardiac MR segmentation in 3D Slicer (Chen et al., MICCAI 2021, cooperative training and latent
space data augmentation).

This file holds what needs Slicer's application and Qt: the module description, the widget, a thin logic that gives
the widget the Qt-free scene logic (CoopSegMRML, tested on slicer-core), dependency checks, and the self-test.
torch, CoopSegLib and CoopSegMRML are imported only after the dependency check, so the module loads without torch.

Segmentation runs in a separate process (the CoopSegLib worker command, started with PythonSlicer through
slicer.util.launchConsoleProcess), polled by a QTimer: Slicer's main thread holds Python's GIL while it waits for
events, so PyTorch work on a thread of this process would only advance in the gaps.
Only APIs of Slicer MINIMUM_SLICER are used (checked against its source); older versions get a clear message.
"""

from __future__ import annotations

import importlib.metadata
import logging
import os
import shutil
import sys
import tempfile
from typing import Annotated, Optional

import qt
import slicer
import vtk
from slicer import vtkMRMLScalarVolumeNode, vtkMRMLSegmentationNode
from slicer.parameterNodeWrapper import WithinRange, parameterNodeWrapper
from slicer.ScriptedLoadableModule import (
    ScriptedLoadableModule,
    ScriptedLoadableModuleLogic,
    ScriptedLoadableModuleTest,
    ScriptedLoadableModuleWidget,
)
from slicer.util import VTKObservationMixin

MINIMUM_SLICER = (5, 6)  # README, CoopSeg.s4ext and every API call here and in CoopSegMRML are checked against it
TORCH_MINIMUM = "2.1"  # CoopSegLib's lower bound (pyproject.toml)
POLL_MS = 200  # how often the GUI reads the worker's progress lines

# Developers can add this folder to Slicer's module paths straight from a checkout: CoopSegLib is then one level up.
# In an installed extension CoopSegLib lies next to this file (CMakeLists.txt installs it there).
_HERE = os.path.dirname(os.path.abspath(__file__))
for _folder in (_HERE, os.path.dirname(_HERE)):
    if os.path.isdir(os.path.join(_folder, "CoopSegLib")) and _folder not in sys.path:
        sys.path.append(_folder)
        break


def slicerTooOld() -> Optional[str]:
    """A message when this Slicer is older than MINIMUM_SLICER, else None."""
    version = (int(slicer.app.majorVersion), int(slicer.app.minorVersion))
    if version >= MINIMUM_SLICER:
        return None
    return (f"CoopSeg needs 3D Slicer {MINIMUM_SLICER[0]}.{MINIMUM_SLICER[1]} or newer; this is "
            f"{version[0]}.{version[1]}. Install a newer Slicer from https://download.slicer.org.")


class CoopSeg(ScriptedLoadableModule):
    def __init__(self, parent):
        ScriptedLoadableModule.__init__(self, parent)
        self.parent.title = "CoopSeg"
        self.parent.categories = ["Segmentation"]
        self.parent.dependencies = []
        self.parent.contributors = ["CoopSeg developers"]
        self.parent.helpText = (
            "Segments the LV cavity, LV myocardium and RV cavity in short-axis cardiac MR, slice by slice: a fast "
            "first guess (FTN) and its shape-refined version (FTN+STN), side by side. Also previews the latent-space "
            "hard examples the model was trained with, and computes EDV, ESV, SV, EF and LV mass from the ED and ES "
            "phases. A cine (a volume sequence, e.g. a 4D NIfTI; Slicer 5.6 or newer) is segmented frame by frame "
            "into segmentation sequences in the same sequence browser, with the LV and RV volume curve in a plot "
            "chart and ED (largest LV cavity), ES (smallest) and the indices in a table. "
            "See <a href='https://github.com/coopseg/SlicerCoopSeg#in-3d-slicer'>the documentation</a>.")
        self.parent.acknowledgementText = (
            "Method: C. Chen et al., Cooperative Training and Latent Space Data Augmentation for Robust Medical Image "
            "Segmentation, MICCAI 2021.")
        # The terminology context at start-up (torch-free), so that a saved scene reopened in a new session finds it
        # before the module is ever opened. qSlicerApplication::startupCompleted() exists in Slicer 5.6.
        slicer.app.connect("startupCompleted()", loadTerminology)


@parameterNodeWrapper
class CoopSegParameterNode:
    """The module's GUI state, kept in the scene (saved with it)."""

    inputVolume: vtkMRMLScalarVolumeNode
    outputSegmentation: vtkMRMLSegmentationNode  # None: create new nodes; a node: overwrite it (the user's choice)
    useModelBundle: bool = False  # False: the shipped default model; True: the bundle folder in modelPath
    modelPath: str = ""
    device: str = "auto"  # auto / cpu / cuda
    secondLook: bool = True  # a flagged result gets a second pass on an in-plane-blurred input (rescues spiked images)
    shownStage: str = "refined"  # initial / refined
    previewSlice: int = 0
    previewScheme: str = "channel"  # dropout / channel / spatial
    previewFraction: Annotated[float, WithinRange(0.0, 1.0)] = 0.3
    previewSoftFactor: Annotated[float, WithinRange(0.0, 1.0)] = 0.0
    previewSeed: int = 0
    edVolume: vtkMRMLScalarVolumeNode
    esVolume: vtkMRMLScalarVolumeNode
    shownResult: vtkMRMLSegmentationNode  # the run shown (its refined node); None: the input's newest
    edSegmentation: vtkMRMLSegmentationNode  # the ED / ES runs the indices use; None: each volume's newest
    esSegmentation: vtkMRMLSegmentationNode


def torchVersionOk() -> bool:
    from packaging.version import Version

    try:
        return Version(importlib.metadata.version("torch").split("+")[0]) >= Version(TORCH_MINIMUM)
    except importlib.metadata.PackageNotFoundError:
        return False


def dependenciesPresent() -> bool:
    # PyTorch only: images go to the worker and back as NRRD through Slicer's own storage nodes and the SimpleITK
    # Slicer ships (CoopSegMRML.exchange), so no nibabel.
    return torchVersionOk()


def ensureDependenciesFor(widget) -> bool:
    """ensureDependencies with the widget's buttons disabled while it runs (an install takes minutes and runs
    Qt's event loop: a second click must not nest a second install); re-enabled whatever happens."""
    widget._installing = True
    widget.updateButtons()
    try:
        return ensureDependencies()
    finally:
        widget._installing = False
        widget.updateButtons()


def ensureDependencies() -> bool:
    """torch (>= TORCH_MINIMUM) through the PyTorch extension, after the user agrees; False when it is not there.

    Slicer's own numpy and SimpleITK are used as they are: nothing is installed that could replace them.
    """
    return torchVersionOk() or ensureTorch()


def ensureTorch() -> bool:
    """torch (>= TORCH_MINIMUM) through the PyTorch extension, after the user agrees."""
    if torchVersionOk():
        return True
    try:
        import PyTorchUtils
    except ModuleNotFoundError:
        slicer.util.errorDisplay("CoopSeg needs PyTorch. Install the 'PyTorch' extension from the Extensions Manager, "
                                 "restart Slicer, and press Apply again.")
        return False
    torchLogic = PyTorchUtils.PyTorchUtilsLogic()
    if PyTorchUtils.PyTorchUtilsLogic.torchInstalled():
        # Replacing a torch that is already loaded in this process is not safe: let the user do it between restarts.
        slicer.util.errorDisplay(
            f"CoopSeg needs PyTorch {TORCH_MINIMUM} or newer; this Slicer has {importlib.metadata.version('torch')}. "
            "Uninstall it in the 'PyTorch Utils' module, restart Slicer, and press Apply again to install a newer one.")
        return False
    if torchLogic.installTorch(askConfirmation=True, torchVersionRequirement=f">={TORCH_MINIMUM}") is None:
        return False
    return torchVersionOk()


class CoopSegWidget(ScriptedLoadableModuleWidget, VTKObservationMixin):
    DEVICE_ITEMS = (("auto", "auto"), ("CPU", "cpu"), ("GPU", "cuda"))
    SCHEME_ITEMS = (("random dropout", "dropout"), ("targeted channel", "channel"), ("targeted spatial", "spatial"))

    def __init__(self, parent=None) -> None:
        ScriptedLoadableModuleWidget.__init__(self, parent)
        VTKObservationMixin.__init__(self)
        self.logic = None
        self._parameterNode = None
        self._parameterNodeGuiTag = None
        self._job = None
        self._timer = None
        self._installing = False  # a dependency install is under way: Apply, Preview and Indices wait for it

    # --- set-up ---------------------------------------------------------------------------------------------
    def setup(self) -> None:
        ScriptedLoadableModuleWidget.setup(self)
        problem = slicerTooOld()
        if problem is not None:
            label = qt.QLabel(problem)
            label.wordWrap = True
            self.layout.addWidget(label)
            self.layout.addStretch(1)
            return
        uiWidget = slicer.util.loadUI(self.resourcePath("UI/CoopSeg.ui"))
        self.layout.addWidget(uiWidget)
        self.ui = slicer.util.childWidgetVariables(uiWidget)
        uiWidget.setMRMLScene(slicer.mrmlScene)
        self.logic = CoopSegLogic()

        self.ui.modelComboBox.addItem("Shipped default model")
        self.ui.modelComboBox.addItem("Model bundle folder")
        for text, value in self.DEVICE_ITEMS:
            self.ui.deviceComboBox.addItem(text, value)
        for text, value in self.SCHEME_ITEMS:
            self.ui.schemeComboBox.addItem(text, value)
        self.ui.modelPathLineEdit.settingKey = "CoopSeg/ModelPath"

        self._timer = qt.QTimer()
        self._timer.setInterval(POLL_MS)
        self._timer.connect("timeout()", self.onPoll)

        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.StartCloseEvent, self.onSceneStartClose)
        self.addObserver(slicer.mrmlScene, slicer.mrmlScene.EndCloseEvent, self.onSceneEndClose)
        self.ui.applyButton.connect("clicked(bool)", self.onApply)
        self.ui.cancelButton.connect("clicked(bool)", self.onCancel)
        self.ui.previewButton.connect("clicked(bool)", self.onPreview)
        self.ui.indicesButton.connect("clicked(bool)", self.onIndices)
        self.ui.cineFindButton.connect("clicked(bool)", lambda: self.onCineIndices(chosen=False))
        self.ui.cineIndicesButton.connect("clicked(bool)", lambda: self.onCineIndices(chosen=True))
        self.ui.showInitialRadioButton.connect("toggled(bool)", self.onStageToggled)
        self.ui.modelComboBox.connect("currentIndexChanged(int)", self.onGuiChanged)
        self.ui.modelPathLineEdit.connect("currentPathChanged(QString)", self.onGuiChanged)
        self.ui.deviceComboBox.connect("currentIndexChanged(int)", self.onGuiChanged)
        self.ui.schemeComboBox.connect("currentIndexChanged(int)", self.onGuiChanged)
        self.ui.inputVolumeSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onInputChanged)
        self.ui.qualityLabel.textFormat = qt.Qt.RichText  # suspect slices are links that move the slice views
        self.ui.qualityLabel.connect("linkActivated(QString)", self.onSuspectSliceClicked)
        self._qualityVolume = None  # the volume whose result the quality line shows
        self.ui.resultSelector.connect("currentNodeChanged(vtkMRMLNode*)", self.onResultChanged)
        for selector in (self.ui.resultSelector, self.ui.edSegmentationSelector, self.ui.esSegmentationSelector):
            # Only CoopSeg's refined results (qMRMLNodeComboBox::addAttribute, Slicer 5.6+).
            selector.addAttribute("vtkMRMLSegmentationNode", "CoopSeg.Role", "refined")
        loadTerminology()  # loaded at start-up already; this covers a module loaded later (it is loaded once)
        self.initializeParameterNode()

    def cleanup(self) -> None:
        self.stopJob()
        if self._timer is not None:
            self._timer.stop()
        self.removeObservers()

    def stopJob(self) -> None:
        """Kill a running worker and forget its job: nothing of it is imported."""
        if self._job is not None:
            self._job.cancel()
            self._job = None
        if self._timer is not None:
            self._timer.stop()

    def enter(self) -> None:
        self.initializeParameterNode()
        # Binding the parameter node can set the spin box's range anew: bound it to the input's stack again.
        self.boundPreviewSlice(self._parameterNode.inputVolume if self._parameterNode else None)

    def exit(self) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self._parameterNodeGuiTag = None
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode)

    def onSceneStartClose(self, caller, event) -> None:
        if self._job is not None:
            self.stopJob()
            self.ui.statusLabel.text = "Cancelled (the scene was closed)"
        self.setParameterNode(None)

    def onSceneEndClose(self, caller, event) -> None:
        self.logic.resetSceneLogic()
        if self.parent.isEntered:
            self.initializeParameterNode()

    def initializeParameterNode(self) -> None:
        self.setParameterNode(self.logic.getParameterNode())
        if not self._parameterNode.inputVolume:
            first = slicer.mrmlScene.GetFirstNodeByClass("vtkMRMLScalarVolumeNode")
            if first:
                self._parameterNode.inputVolume = first

    def setParameterNode(self, parameterNode: Optional[CoopSegParameterNode]) -> None:
        if self._parameterNode:
            self._parameterNode.disconnectGui(self._parameterNodeGuiTag)
            self.removeObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode)
        self._parameterNode = parameterNode
        if self._parameterNode:
            # Widgets with a SlicerParameterName property (the .ui) bind themselves; the combo boxes and the model
            # path, whose shown text differs from the stored value, are synchronised below.
            self._parameterNodeGuiTag = self._parameterNode.connectGui(self.ui)
            self.addObserver(self._parameterNode, vtk.vtkCommand.ModifiedEvent, self.updateGuiFromParameterNode)
            self.updateGuiFromParameterNode()

    # --- GUI <-> parameter node -----------------------------------------------------------------------------
    def updateGuiFromParameterNode(self, caller=None, event=None) -> None:
        node = self._parameterNode
        if node is None:
            return
        widgets = (self.ui.modelComboBox, self.ui.modelPathLineEdit, self.ui.deviceComboBox, self.ui.schemeComboBox,
                   self.ui.showInitialRadioButton, self.ui.showRefinedRadioButton)
        blocked = [w.blockSignals(True) for w in widgets]
        self.ui.modelComboBox.currentIndex = 1 if node.useModelBundle else 0
        self.ui.modelPathLineEdit.currentPath = node.modelPath
        self.ui.modelPathLineEdit.enabled = self.ui.modelComboBox.currentIndex == 1
        self.ui.deviceComboBox.currentIndex = max(0, self.ui.deviceComboBox.findData(node.device))
        self.ui.schemeComboBox.currentIndex = max(0, self.ui.schemeComboBox.findData(node.previewScheme))
        self.ui.showInitialRadioButton.checked = node.shownStage == "initial"
        self.ui.showRefinedRadioButton.checked = node.shownStage != "initial"
        for w, state in zip(widgets, blocked):
            w.blockSignals(state)
        self.updateButtons()

    def onGuiChanged(self, *args) -> None:
        node = self._parameterNode
        if node is None:
            return
        # Read every widget before writing: each write updates the GUI from the parameter node.
        bundle = self.ui.modelComboBox.currentIndex == 1
        modelPath = self.ui.modelPathLineEdit.currentPath
        device, scheme = self.ui.deviceComboBox.currentData, self.ui.schemeComboBox.currentData
        node.useModelBundle, node.modelPath, node.device, node.previewScheme = bundle, modelPath, device, scheme
        self.ui.modelPathLineEdit.enabled = bundle

    def chosenModel(self) -> str:
        """The model bundle folder to use; "" for the shipped default."""
        node = self._parameterNode
        if not node.useModelBundle:
            return ""
        if not node.modelPath:
            raise ValueError("Choose a model bundle folder (a *.coopseg folder), or the shipped default model.")
        return node.modelPath

    def onInputChanged(self, volume) -> None:
        """A new input: the slice spin box's range follows its slices; its results, if any, show in the tables."""
        self.boundPreviewSlice(volume)
        self.showResult(volume)

    def onResultChanged(self, refined) -> None:
        """The user selected a run: show it (and only it) and its tables."""
        self.showResult(self._parameterNode.inputVolume if self._parameterNode else None)

    def selectedResult(self, volume):
        """The run the user selected for ``volume`` (its newest when none is selected or it is another input's)."""
        if volume is None:
            return None
        from CoopSegLib.errors import CoopSegError

        node = self._parameterNode
        chosen = node.shownResult if node is not None else None
        try:
            return self.logic.resultsFor(volume, chosen)
        except CoopSegError:  # a run of another input (the input changed since): this input's newest
            return self.logic.resultsFor(volume)

    def showResult(self, volume) -> None:
        result = self.selectedResult(volume)
        if result is not None:
            self.logic.sceneLogic().show(result, self._parameterNode.shownStage if self._parameterNode else "refined")
        self.ui.segmentTableView.setMRMLTableNode(result.table if result else None)
        self.showQuality(result.quality if result else None, volume, warn=False)  # this input's own estimate
        self.showCine(volume, result)
        self.updateButtons()

    def boundPreviewSlice(self, volume) -> None:
        """The preview's slice index runs over the input's slices along the model's stack axis (the largest
        spacing, which need not be K), from CoopSegLib's geometry (numpy only: no torch on the GUI thread)."""
        if volume is None:
            return
        from CoopSegMRML.volumes import stack_slice_count

        self.ui.previewSliceSpinBox.minimum = 0
        self.ui.previewSliceSpinBox.maximum = max(0, stack_slice_count(volume) - 1)

    def updateButtons(self) -> None:
        node = self._parameterNode
        running = self._job is not None or self._installing
        hasInput = bool(node and node.inputVolume)
        self.ui.applyButton.enabled = hasInput and not running
        self.ui.cancelButton.enabled = running
        self.ui.previewButton.enabled = hasInput and not running
        self.ui.indicesButton.enabled = bool(node and node.edVolume and node.esVolume) and not running
        cineResult = self.selectedResult(node.inputVolume) if hasInput else None
        hasCine = cineResult is not None and cineResult.cine is not None
        self.ui.cineFindButton.enabled = self.ui.cineIndicesButton.enabled = hasCine and not running
        self.ui.applyButton.toolTip = ("Segment the input volume." if hasInput else "Select an input volume first.")

    # --- segmenting -----------------------------------------------------------------------------------------
    def onApply(self) -> None:
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("CoopSeg could not start segmenting.", waitCursor=True):
            if not ensureDependenciesFor(self):
                self.ui.statusLabel.text = "Idle (PyTorch is not available)"
                return
            output = node.outputSegmentation
            if output is not None and not slicer.util.confirmOkCancelDisplay(
                    f"Overwrite '{output.GetName()}' (and its initial segmentation and volume table)? Edits made "
                    "to it will be lost. Choose 'Create new segmentation' to keep them.", "CoopSeg: overwrite"):
                return
            model = self.chosenModel()
            self.ui.statusLabel.text = "Initializing"
            self.ui.progressBar.value = 0
            self.ui.qualityLabel.text = ""
            self._job = self.logic.sceneLogic().start(node.inputVolume, model, node.device, output,
                                                       second_look=node.secondLook)
            self._timer.start()
        self.updateButtons()

    def onCancel(self) -> None:
        if self._job is not None:
            self.stopJob()
            self.ui.statusLabel.text = "Cancelled"
            self.updateButtons()

    def onPoll(self) -> None:
        from CoopSegMRML import CANCELLED, FAILED, FINISHED, describe_device

        if self._job is None:
            self._timer.stop()
            return
        status = self.logic.sceneLogic().poll(self._job)  # cancels quietly when the input was deleted
        self.ui.progressBar.value = int(round(100 * status.fraction))
        if status.state not in (FINISHED, FAILED, CANCELLED):
            self.ui.statusLabel.text = f"Segmenting: {status.message}"
            return
        self._timer.stop()
        job, self._job = self._job, None
        volume = job.volume
        if status.state == FINISHED:
            self.ui.statusLabel.text = "Importing"
            with slicer.util.tryWithErrorDisplay("CoopSeg could not add the segmentations to the scene.",
                                                 waitCursor=True):
                result = self.logic.sceneLogic().import_result(job)
                self.ui.deviceUsedLabel.text = f"used: {describe_device(result.device)}"
                self._parameterNode.shownStage = "refined"
                self._parameterNode.shownResult = result.refined  # the new run is the one shown
                self.ui.segmentTableView.setMRMLTableNode(result.table)
                self.showQuality(result.quality, volume)
                slicer.util.setSliceViewerLayers(background=volume, fit=True)
                if result.cine is not None:
                    self.showCine(volume, result)
                    self.ui.cineCollapsibleButton.collapsed = False
                    # vtkSlicerPlotsLogic::ShowChartInLayout (Slicer 5.6+): a layout with a plot view, this chart.
                    slicer.modules.plots.logic().ShowChartInLayout(result.cine.curve.chart)
                self.ui.statusLabel.text = "Done"
            if self.ui.statusLabel.text != "Done":
                self.ui.statusLabel.text = "Failed"
        elif status.state == FAILED:
            self.ui.statusLabel.text = "Failed"
            name = volume.GetName() if volume is not None else "the volume"
            slicer.util.errorDisplay(f"Segmenting '{name}' failed: {status.message}",
                                     detailedText=job.process.log)
        else:
            self.ui.statusLabel.text = "Cancelled" + (f" ({status.message})" if status.message != "cancelled" else "")
        self.updateButtons()

    def showQuality(self, quality, volume, warn: bool = True) -> None:
        """The quality estimate of ``volume``'s refined segmentation (stored on its node), its suspect slices as
        links that move the slice views there, and a warning dialog after a run when it is flagged."""
        self._qualityVolume = volume
        if quality is None:
            self.ui.qualityLabel.text = ""
            self.ui.qualityLabel.styleSheet = ""
            return
        import html

        text = html.escape(quality.describe(suspects=False))
        links = [f'<a href="{index}">{html.escape(name)}</a>'
                 for (_, index), name in zip(quality.suspect_slices, quality.suspect_names())]
        self.ui.qualityLabel.text = text + (f"; suspect (click to show): {', '.join(links)}" if links else "")
        self.ui.qualityLabel.styleSheet = "color: #c0392b; font-weight: bold" if quality.needs_review else ""
        if warn and quality.needs_review:
            slicer.util.warningDisplay(f"{quality.describe()}.", "CoopSeg: quality estimate")

    def onSuspectSliceClicked(self, link: str) -> None:
        if self._qualityVolume is None or not slicer.mrmlScene.IsNodePresent(self._qualityVolume):
            return
        with slicer.util.tryWithErrorDisplay("CoopSeg could not show that slice."):
            self.logic.sceneLogic().show_slice(self._qualityVolume, int(link))

    def onStageToggled(self, initialChecked: bool) -> None:
        stage = "initial" if initialChecked else "refined"
        if self._parameterNode is not None:
            self._parameterNode.shownStage = stage
        result = self.selectedResult(self._parameterNode.inputVolume if self._parameterNode else None)
        if result is not None:
            self.logic.sceneLogic().show(result, stage)

    # --- cines ---------------------------------------------------------------------------------------------
    def showCine(self, volume, result) -> None:
        """For a cine input: its frame count, and (once segmented) the ED / ES frames and the indices table."""
        cine = None
        if volume is not None and dependenciesPresent():
            from CoopSegMRML.cine import cine_of

            cine = cine_of(volume)
        if cine is None:
            self.ui.cineLabel.text = ("The input is a single volume. Choose a cine (the proxy volume of a volume "
                                      "sequence, e.g. a 4D NIfTI) to segment every frame.")
            self.ui.cineIndicesTableView.setMRMLTableNode(None)
            return
        self.ui.cineLabel.text = f"The input is a cine of {cine.frames} frames: Apply segments every frame."
        for box in (self.ui.cineEdSpinBox, self.ui.cineEsSpinBox):
            box.minimum, box.maximum = 0, cine.frames - 1
        if result is None or result.cine is None:
            self.ui.cineIndicesTableView.setMRMLTableNode(None)
            return
        analysis = result.cine.analysis
        if analysis is None:  # a result found again (e.g. a reopened scene): recompute from its sequence
            analysis = self.logic.sceneLogic().cine_indices(volume, keep=True, refined=result.refined).analysis
        self.ui.cineEdSpinBox.value, self.ui.cineEsSpinBox.value = analysis.ed, analysis.es
        self.ui.cineIndicesTableView.setMRMLTableNode(result.cine.indices)
        self.ui.cineLabel.text = (f"The input is a cine of {cine.frames} frames. ED frame {analysis.ed}, ES frame "
                                  f"{analysis.es}" + (f"; frames flagged for review: "
                                                      f"{', '.join(map(str, analysis.flagged))}"
                                                      if analysis.flagged else "") + ".")

    def onCineIndices(self, chosen: bool) -> None:
        """Recompute the cine's curve and indices from its refined sequence as edited, with ED / ES found anew or
        the frames in the spin boxes."""
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("CoopSeg could not compute the cine's indices.", waitCursor=True):
            ed = self.ui.cineEdSpinBox.value if chosen else None
            es = self.ui.cineEsSpinBox.value if chosen else None
            result = self.selectedResult(node.inputVolume)
            self.logic.sceneLogic().cine_indices(node.inputVolume, ed, es, refined=result.refined if result else None)
            self.showCine(node.inputVolume, self.selectedResult(node.inputVolume))

    # --- hard examples and indices --------------------------------------------------------------------------
    def onPreview(self) -> None:
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("CoopSeg could not make the hard-example preview.", waitCursor=True):
            if not ensureDependenciesFor(self):
                return
            preview = self.logic.sceneLogic().preview(node.inputVolume, node.previewSlice, node.previewScheme,
                                                      node.previewFraction, node.previewSoftFactor,
                                                      node.previewSeed, self.chosenModel(), node.device)
            result = self.selectedResult(node.inputVolume)
            if result is not None:  # one overlay at a time: the preview's segmentation, not the volume's
                result.initial.GetDisplayNode().SetVisibility(False)
                result.refined.GetDisplayNode().SetVisibility(False)
            slicer.util.setSliceViewerLayers(background=preview.image, fit=True)
            self.ui.statusLabel.text = f"Showing {preview.image.GetName()}"

    def onIndices(self) -> None:
        node = self._parameterNode
        with slicer.util.tryWithErrorDisplay("CoopSeg could not compute the clinical indices.", waitCursor=True):
            if not ensureDependenciesFor(self):
                return
            table, _ = self.logic.sceneLogic().clinical_indices(node.edVolume, node.esVolume, node.edSegmentation,
                                                                node.esSegmentation)
            self.ui.indicesTableView.setMRMLTableNode(table)


def loadTerminology() -> None:
    """The module's terminology context (it has the myocardium, Slicer's default list has not), so the
    terminology browser recognises CoopSeg's segments. CoopSegMRML.terminology needs no torch."""
    from CoopSegMRML.terminology import load_terminology

    try:
        load_terminology(slicer.modules.terminologies.logic())
    except (AttributeError, RuntimeError) as error:  # no Terminologies module, or the file did not load
        logging.warning(f"CoopSeg: the terminology context was not loaded: {error}")


def pythonSlicer() -> str:
    """Slicer's own Python interpreter (it sees the PyTorch that PyTorch Utils installed), for the worker."""
    found = shutil.which("PythonSlicer")
    if found is None:
        raise RuntimeError("PythonSlicer (Slicer's Python) was not found next to Slicer; reinstall Slicer")
    return found


def launchWorker(args, environment):
    """Start the worker as slicer.util.launchConsoleProcess does (Slicer's startup environment, no console window,
    stderr in stdout), but in a process group of its own: PythonSlicer is a launcher whose child, python-real, does
    the work, and Cancel must kill both (launchConsoleProcess takes no such option)."""
    from CoopSegMRML.worker_process import launch_subprocess

    return launch_subprocess(args, environment, base_environment=slicer.util.startupEnvironment())


class CoopSegLogic(ScriptedLoadableModuleLogic):
    """The parameter node, and the Qt-free scene logic (CoopSegMRML.CoopSegSceneLogic) that does the work."""

    def __init__(self) -> None:
        ScriptedLoadableModuleLogic.__init__(self)
        self._sceneLogic = None

    def getParameterNode(self) -> CoopSegParameterNode:
        return CoopSegParameterNode(super().getParameterNode())

    def sceneLogic(self):
        """Imported on first use: it needs torch, which ensureDependencies may have had to install."""
        if self._sceneLogic is None or self._sceneLogic.scene is not slicer.mrmlScene:
            from CoopSegMRML import CoopSegSceneLogic

            self._sceneLogic = CoopSegSceneLogic(slicer.mrmlScene, python=pythonSlicer(), launch=launchWorker)
        return self._sceneLogic

    def resetSceneLogic(self) -> None:
        self._sceneLogic = None

    def resultsFor(self, volume, refined=None):
        """The volume's result nodes (those of the run ``refined``, else the newest), or None. MRML only: the scene
        logic imports torch only when a preview needs the model, so choosing an input never loads it on the GUI
        thread."""
        if volume is None:
            return None
        return self.sceneLogic().results(volume, refined)


class CoopSegTest(ScriptedLoadableModuleTest):
    """Segments an oblique synthetic volume inside Slicer through the worker process (PythonSlicer), with a small
    untrained bundle, and checks the nodes against CoopSegLib's own output (the model's quality is tested
    elsewhere; here the plumbing is). Installs nothing: without PyTorch it is skipped in testing mode."""

    def setUp(self) -> None:
        slicer.mrmlScene.Clear()

    def runTest(self) -> None:
        self.setUp()
        self.test_segment_through_the_worker_process()

    def _bundle(self, folder: str):
        import torch

        from CoopSegLib.bundle import save_bundle
        from CoopSegLib.networks import CoopSegModel, NetworkConfig

        torch.manual_seed(0)
        model = CoopSegModel(NetworkConfig(widths=(8, 16, 32, 32)))
        return save_bundle(os.path.join(folder, "selftest.coopseg"), model, {"spacing_mm": 1.5, "size": 32})

    def test_segment_through_the_worker_process(self) -> None:
        import numpy as np

        self.delayDisplay("Starting the CoopSeg test")
        problem = slicerTooOld()
        if problem is not None:
            self.skipTest(problem)
        if not dependenciesPresent():
            if slicer.app.testingEnabled():  # a test machine: never download PyTorch there
                self.skipTest("PyTorch (>= %s) is not installed; the CoopSeg self-test needs it"
                              % TORCH_MINIMUM)
            self.assertTrue(ensureDependencies(), "PyTorch is needed for this test")
        from CoopSegLib.inference import Segmenter
        from CoopSegMRML import FINISHED, RUNNING, CoopSegSceneLogic
        from CoopSegMRML.segmentations import labels_from_segmentation
        from CoopSegMRML.terminology import TERMINOLOGY_CONTEXT, segment_terminology
        from CoopSegMRML.volumes import add_volume, ijk_to_ras

        rng = np.random.default_rng(0)
        array = rng.normal(300.0, 60.0, (40, 36, 5)).astype(np.float32)  # indexed I, J, K
        array[12:28, 10:26, :] += 500.0
        angle = np.deg2rad(20.0)
        affine = np.array([[-1.4 * np.cos(angle), 1.4 * np.sin(angle), 0.0, 10.0],
                           [-1.4 * np.sin(angle), -1.4 * np.cos(angle), 0.0, -20.0],
                           [0.0, 0.0, 8.0, 5.0], [0.0, 0.0, 0.0, 1.0]])
        volume = add_volume(slicer.mrmlScene, "CoopSeg self-test", array, affine)
        with tempfile.TemporaryDirectory() as folder:
            bundle = self._bundle(folder)
            logic = CoopSegSceneLogic(slicer.mrmlScene, python=pythonSlicer(), launch=launchWorker)
            job = logic.start(volume, str(bundle), "cpu")
            messages = set()
            while job.status().state == RUNNING:
                messages.add(job.status().message)
                slicer.app.processEvents(qt.QEventLoop.AllEvents, 50)  # the GUI stays free: the work is elsewhere
            self.assertEqual(job.status().state, FINISHED, job.status().message + "\n" + job.process.log)
            self.assertTrue(any("segmenting slices" in m for m in messages), sorted(messages))
            result = logic.import_result(job)
            expected = Segmenter(bundle, device="cpu").segment(array, affine)
        self.assertEqual(result.initial.GetName(), "CoopSeg self-test initial (FTN)")
        self.assertEqual(result.refined.GetName(), "CoopSeg self-test refined (FTN+STN)")
        segmentation = result.refined.GetSegmentation()
        self.assertEqual([segmentation.GetNthSegment(i).GetName() for i in range(3)],
                         ["LV cavity", "LV myocardium", "RV cavity"])
        terminology = segment_terminology(segmentation.GetSegment("LV_myocardium"))
        self.assertTrue(terminology.startswith(TERMINOLOGY_CONTEXT + "~"), terminology)
        self.assertIn("SCT^74281007^Myocardium", terminology)
        np.testing.assert_allclose(ijk_to_ras(volume), affine, atol=1e-9)
        np.testing.assert_array_equal(labels_from_segmentation(result.refined, volume), expected.refined)
        np.testing.assert_array_equal(labels_from_segmentation(result.initial, volume), expected.initial)
        logging.info("CoopSeg self-test: labels equal CoopSegLib's, voxel for voxel")
        self.delayDisplay("Test passed")
