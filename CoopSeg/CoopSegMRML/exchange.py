"""The image files the module and its worker exchange, written and read by Slicer's own NRRD storage nodes.

The input goes out as NRRD (a volume through vtkMRMLVolumeArchetypeStorageNode, a cine as Slicer saves a sequence,
through vtkMRMLVolumeSequenceStorageNode); the worker answers with NRRD label maps (SimpleITK, which Slicer ships),
read back through the same storage nodes. Slicer's Python therefore needs nothing beyond PyTorch: no nibabel.
The nodes live in a private scene, so the user's scene never sees them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import slicer

from CoopSegLib.data.nrrd import NRRD_SUFFIXES
from CoopSegLib.errors import CoopSegError
from CoopSegMRML.volumes import add_volume, ijk_to_ras

NRRD_SUFFIX = NRRD_SUFFIXES[0]  # the exchange files' extension, one the worker's NRRD reader takes


def _add(scene, class_name: str):
    # Made from the class, not by name: a private scene has every class of MRML core registered, and so needs
    # nothing a module registers in the application's scene.
    return scene.AddNode(getattr(slicer, class_name)())


def write_exchange_image(array: np.ndarray, affine: np.ndarray, path: Path) -> Path:
    """Write a volume (I, J, K) or a cine (I, J, K, T) on its IJK-to-RAS ``affine`` as an uncompressed NRRD."""
    scene = slicer.vtkMRMLScene()
    if array.ndim == 4:
        node = _add(scene, "vtkMRMLSequenceNode")
        for t in range(array.shape[3]):
            node.SetDataNodeAtValue(add_volume(scene, f"frame {t}", array[..., t], affine), str(t))
        storage = _add(scene, "vtkMRMLVolumeSequenceStorageNode")
    else:
        node = add_volume(scene, "input", array, affine)
        storage = _add(scene, "vtkMRMLVolumeArchetypeStorageNode")
    storage.SetFileName(str(path))
    storage.SetUseCompression(0)  # a temporary file read once: compression would only cost time
    if not storage.WriteData(node):
        raise CoopSegError(f"{path}: Slicer could not write the input for the worker")
    return Path(path)


def onto_input_grid(labels: np.ndarray, read_affine: np.ndarray, affine: np.ndarray, name: str) -> np.ndarray:
    """``labels`` as read (on ``read_affine``) indexed like the input (on ``affine``). Slicer's readers make every
    grid right-handed, flipping the K axis of a left-handed one (a volume made by a script can be): undo that."""
    index = np.linalg.solve(affine, read_affine)  # read voxel -> input voxel
    turn = np.round(index[:3, :3])
    flipped = np.diag(turn) < 0
    expected_offset = np.where(flipped, np.asarray(labels.shape[:3]) - 1, 0)
    if not (np.allclose(index[:3, :3], turn, atol=1e-3) and np.allclose(np.abs(turn), np.eye(3))
            and np.allclose(index[:3, 3], expected_offset, atol=1e-2)):
        raise CoopSegError(f"the worker's labels {name} lie on another grid than the input; nothing was added")
    for axis in np.flatnonzero(flipped):
        labels = np.flip(labels, int(axis))
    return labels


def read_exchange_labels(path: str, shape: tuple, affine: np.ndarray) -> np.ndarray:
    """The worker's label map at ``path`` as uint8 (I, J, K) or (I, J, K, T) on the input's grid (``affine``); a
    CoopSegError unless it has ``shape``, the input's."""
    scene = slicer.vtkMRMLScene()
    labels, read_affine = None, None
    if len(shape) == 4:
        sequence = _add(scene, "vtkMRMLSequenceNode")
        storage = _add(scene, "vtkMRMLVolumeSequenceStorageNode")
        storage.SetFileName(str(path))
        frames = [sequence.GetNthDataNode(t) for t in range(sequence.GetNumberOfDataNodes())] \
            if storage.ReadData(sequence) else []
        if frames:
            labels = np.stack([slicer.util.arrayFromVolume(frame).transpose(2, 1, 0) for frame in frames], axis=-1)
            read_affine = ijk_to_ras(frames[0])
    else:
        node = _add(scene, "vtkMRMLLabelMapVolumeNode")
        storage = _add(scene, "vtkMRMLVolumeArchetypeStorageNode")
        storage.SetFileName(str(path))
        if storage.ReadData(node):
            labels, read_affine = slicer.util.arrayFromVolume(node).transpose(2, 1, 0), ijk_to_ras(node)
    if labels is None:
        raise CoopSegError(f"Slicer could not read the worker's labels {path}; nothing was added")
    if labels.shape != tuple(shape):
        raise CoopSegError(f"the worker's labels {Path(path).name} have shape {labels.shape}, the input {tuple(shape)}; "
                           "nothing was added")
    return np.array(onto_input_grid(labels, read_affine, affine, Path(path).name), dtype=np.uint8)
