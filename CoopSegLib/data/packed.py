"""Packed cases: one frame (image, label map, affine, a JSON record) per file, compact and exact.

A packed case is a zip archive with LZMA-compressed members ``image.npy``, ``label.npy`` (optional),
``affine.npy`` and ``record.json``. Arrays keep their dtype, so an ACDC frame (int16 image, uint8 canonical labels)
reads back bit for bit; LZMA makes it about a third smaller than ACDC's own ``.nii.gz``. It needs only NumPy and
the standard library, so a machine without nibabel can train and evaluate on it (``data.format: packed``).

>>> import numpy as np, tempfile, pathlib
>>> path = pathlib.Path(tempfile.mkdtemp()) / "p001_ED.zip"
>>> _ = write_packed_case(path, np.ones((4, 4, 2), np.int16), np.eye(4), np.zeros((4, 4, 2), np.uint8),
...                       {"subject": "p001", "frame": "ED"})
>>> image, affine, label, record = read_packed_case(path)
>>> image.dtype.name, label.shape, record["frame"]
('int16', (4, 4, 2), 'ED')
"""

from __future__ import annotations

import json
import os
import zipfile
from pathlib import Path
from typing import Any, Dict, Optional, Tuple, Union

import numpy as np

from CoopSegLib.atomic import write_atomically
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, "os.PathLike[str]"]
PACKED_SUFFIX = ".zip"
_MEMBERS = ("image.npy", "affine.npy", "record.json")


def write_packed_case(path: PathLike, image: np.ndarray, affine: np.ndarray, label: Optional[np.ndarray],
                      record: Dict[str, Any]) -> Path:
    """Write one packed case all or nothing; ``record`` must be JSON (subject, frame, set, key, ...)."""
    image = np.asarray(image)
    if label is not None and np.shape(label) != image.shape:
        raise CoopSegError(f"{path}: label shape {np.shape(label)} does not match image {image.shape}")
    arrays = {"image.npy": image, "affine.npy": np.asarray(affine, dtype=np.float64)}
    if label is not None:
        arrays["label.npy"] = np.asarray(label)

    def write(temporary: str) -> None:
        with zipfile.ZipFile(temporary, "w", compression=zipfile.ZIP_LZMA) as archive:
            for name, array in arrays.items():
                with archive.open(name, "w") as member:
                    np.lib.format.write_array(member, np.ascontiguousarray(array), allow_pickle=False)
            archive.writestr("record.json", json.dumps(record, sort_keys=True))

    return write_atomically(path, write)


def read_packed_case(path: PathLike) -> Tuple[np.ndarray, np.ndarray, Optional[np.ndarray], Dict[str, Any]]:
    """(image, affine, label or None, record) of a packed case; a damaged file is an error naming it."""
    path = Path(path)
    if not path.is_file():
        raise CoopSegError(f"{path}: packed case not found")
    try:
        with zipfile.ZipFile(path) as archive:
            names = set(archive.namelist())
            missing = [name for name in _MEMBERS if name not in names]
            if missing:
                raise CoopSegError(f"{path}: not a packed case (no {', '.join(missing)})")

            def array(name: str) -> np.ndarray:
                with archive.open(name) as member:
                    return np.lib.format.read_array(member, allow_pickle=False)

            label = array("label.npy") if "label.npy" in names else None
            return array("image.npy"), array("affine.npy"), label, json.loads(archive.read("record.json"))
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as error:
        raise CoopSegError(f"{path}: unreadable packed case ({error})") from None
