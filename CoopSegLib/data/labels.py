"""Canonical label codes and remapping of dataset-specific codes onto them.

Everywhere inside CoopSeg: 0 background, 1 LV cavity, 2 LV myocardium, 3 RV cavity.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np

from CoopSegLib.errors import CoopSegError

from CoopSegLib.vocabulary import (BACKGROUND, CANONICAL_CODES, LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY,  # noqa: F401
                                   STRUCTURE_CODES)

# ACDC on disk: 1 RV cavity, 2 LV myocardium, 3 LV cavity.
ACDC_TO_CANONICAL: Mapping[int, int] = {0: BACKGROUND, 1: RV_CAVITY, 2: LV_MYOCARDIUM, 3: LV_CAVITY}
# M&Ms on disk: 1 LV cavity, 2 LV myocardium, 3 RV cavity (already canonical).
MNMS_TO_CANONICAL: Mapping[int, int] = {0: BACKGROUND, 1: LV_CAVITY, 2: LV_MYOCARDIUM, 3: RV_CAVITY}
IDENTITY: Mapping[int, int] = {code: code for code in CANONICAL_CODES}
# Label codings a user can name on the command line for reference label maps.
CODINGS: Mapping[str, Mapping[int, int]] = {"canonical": IDENTITY, "acdc": ACDC_TO_CANONICAL, "mnms": MNMS_TO_CANONICAL}


def remap_labels(array: np.ndarray, mapping: Mapping[int, int], source: str = "label map") -> np.ndarray:
    """Return ``array`` with dataset codes replaced by canonical codes, as uint8.

    Raises CoopSegError naming ``source`` when the array holds a value that ``mapping`` does not know
    (a label file from another dataset, or an image given where a label map was expected).

    >>> remap_labels(np.array([0, 1, 2, 3]), ACDC_TO_CANONICAL).tolist()
    [0, 3, 2, 1]
    """
    values = np.unique(array)
    if values.size and not np.all(np.isfinite(values.astype(np.float64))):
        raise CoopSegError(f"{source}: label map contains NaN or infinite values")
    unknown = [v for v in values.tolist() if float(v) != int(v) or int(v) not in mapping]
    if unknown:
        shown = ", ".join(str(v) for v in unknown[:8])
        raise CoopSegError(
            f"{source}: unknown label value(s) {shown}; expected only {sorted(mapping)} "
            "(is this the right dataset reader, or an image instead of a label map?)"
        )
    lookup = np.zeros(max(int(k) for k in mapping) + 1, dtype=np.uint8)
    for key, value in mapping.items():
        lookup[int(key)] = value
    return lookup[np.asarray(array).astype(np.int64)]
