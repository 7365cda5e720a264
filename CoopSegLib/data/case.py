"""One labelled frame of one subject: what every reader (and the phantom) returns."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

import numpy as np

from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.labels import remap_labels
from CoopSegLib.errors import CoopSegError


@dataclass
class Case:
    """An image volume and (optionally) its canonical label map on the same grid.

    ``subject`` identifies the person (splits are made on it), ``frame`` the cardiac phase ("ED", "ES", or a
    frame name for generic pairs). The label volume uses the image's affine: readers check they agree first.
    """

    subject: str
    frame: str
    image: Volume
    label: Optional[Volume] = None
    source: str = ""
    metadata: Dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return f"{self.subject}_{self.frame}"


def make_case(
    subject: str,
    frame: str,
    image_array: np.ndarray,
    image_affine: np.ndarray,
    label_array: Optional[np.ndarray] = None,
    label_affine: Optional[np.ndarray] = None,
    label_map: Optional[Mapping[int, int]] = None,
    source: str = "",
    label_source: str = "",
    metadata: Optional[Dict[str, Any]] = None,
) -> Case:
    """Validate an image/label pair and build a Case with canonical labels.

    Fails with a CoopSegError naming ``label_source`` when shapes differ, when the label's affine does not match
    the image's (tolerance 1e-3 mm per voxel step and 1e-2 mm in origin), or on unknown label values.
    """
    image = Volume(image_array, image_affine)
    label = None
    if label_array is not None:
        where = label_source or source
        if tuple(label_array.shape) != image.shape:
            raise CoopSegError(f"{where}: label shape {tuple(label_array.shape)} does not match image {image.shape}")
        if label_affine is not None:
            difference = np.abs(np.asarray(label_affine, dtype=np.float64) - image.affine)
            if difference[:3, :3].max() > 1e-3 or difference[:3, 3].max() > 1e-2:
                raise CoopSegError(
                    f"{where}: label geometry (affine) does not match its image {source}; "
                    "resample the label onto the image grid first"
                )
        codes = remap_labels(label_array, label_map, where) if label_map is not None else label_array
        label = Volume(np.asarray(codes, dtype=np.uint8), image.affine)
    return Case(subject, frame, image, label, source, dict(metadata or {}))
