"""A Slicer scene without the Slicer application, on slicer-core (pip): for tests and offscreen pictures.

Inside Slicer the application builds all this; here the logics the module needs (colours, volumes, segmentations,
subject hierarchy, sequences) are created and registered by hand, as trame-slicer does.
"""

from __future__ import annotations

import slicer


def headless_scene():
    """A vtkMRMLScene with application, colour, volume, segmentation, subject hierarchy and sequences logics
    registered (the sequences logic keeps a browser's proxy nodes in step with its selected frame);
    also set as ``slicer.mrmlScene`` (slicer.util helpers look for it there)."""
    scene = slicer.vtkMRMLScene()
    application = slicer.vtkSlicerApplicationLogic()
    application.SetMRMLScene(scene)
    logics = {}
    for name, logic in (("Colors", slicer.vtkSlicerColorLogic()), ("Volumes", slicer.vtkSlicerVolumesLogic()),
                        ("Segmentations", slicer.vtkSlicerSegmentationsModuleLogic()),
                        ("SubjectHierarchy", slicer.vtkSlicerSubjectHierarchyModuleLogic()),
                        ("Sequences", slicer.vtkSlicerSequencesLogic())):
        logic.SetMRMLApplicationLogic(application)
        logic.SetMRMLScene(scene)
        application.SetModuleLogic(name, logic)
        logics[name] = logic
    slicer.mrmlScene = scene
    scene.application_logic_ = application  # keep the logics alive as long as the scene
    scene.logics_ = logics
    return scene


def load_volume(scene, path, name=None):
    """Read a NIfTI / NRRD file into a scalar volume node through Slicer's own volumes logic (vtkITK)."""
    from pathlib import Path

    logic = scene.logics_["Volumes"]
    node = logic.AddArchetypeVolume(str(path), name or Path(path).name.split(".")[0])
    if node is None:
        raise OSError(f"{path}: Slicer's volumes logic could not read it")
    return node
