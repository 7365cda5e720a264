"""Telling how reference label maps are coded, so that a score is never computed on a guess.

Canonical codes (and M&Ms) are 1 LV cavity, 2 LV myocardium, 3 RV cavity; ACDC's files swap the cavities (1 RV,
3 LV). Scoring ACDC references as canonical swaps LV and RV and gives a low but plausible-looking mean Dice, so
``--ref-codes auto`` decides from the data: where a
prediction and its reference both mark a cavity, do they agree read as canonical codes, or read with the cavities
swapped? One reading must explain at least ``DECISIVE_SHARE`` of those voxels, else the caller is told to name the
coding. The ACDC naming (``<name>_gt``) is reported beside the decision, but it never decides on its own.

>>> lv, rv = np.zeros((4, 4, 2), np.uint8), np.zeros((4, 4, 2), np.uint8)
>>> lv[:2], rv[2:] = 1, 3
>>> prediction, acdc_reference = lv + rv, np.where(lv > 0, 3, 0) + np.where(rv > 0, 1, 0)
>>> detect_reference_coding([(prediction, acdc_reference)], ["case_gt"], min_voxels=1).name
'acdc'
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Iterable, Mapping, Sequence, Tuple

import numpy as np

from CoopSegLib.data.labels import LV_CAVITY, RV_CAVITY
from CoopSegLib.errors import CoopSegError

AUTO = "auto"
DECISIVE_SHARE = 0.75  # share of the cavity voxels one reading must explain (a good model: > 0.95)
MIN_VOXELS = 100  # cavity voxels marked on both sides needed before the statistics say anything
GT_SUFFIX = "_gt"  # ACDC names each reference <image name>_gt
REF_CODES_OPTION = "--ref-codes {}"  # how the commands name a coding; training passes "--set data.label_codes={}"


@dataclass(frozen=True)
class CodingDecision:
    name: str  # "canonical" or "acdc"
    reason: str  # one line for the user: the evidence


def cavity_agreement(prediction: np.ndarray, reference: np.ndarray) -> Tuple[int, int]:
    """Voxels where both maps mark a cavity: (how many agree as canonical codes, how many with LV/RV swapped)."""
    prediction, reference = np.asarray(prediction), np.asarray(reference)
    both = np.isin(prediction, (LV_CAVITY, RV_CAVITY)) & np.isin(reference, (LV_CAVITY, RV_CAVITY))
    same = int(np.count_nonzero(both & (prediction == reference)))
    return same, int(np.count_nonzero(both)) - same


def detect_reference_coding(pairs: Iterable[Tuple[np.ndarray, np.ndarray]], reference_names: Sequence[str],
                            min_voxels: int = MIN_VOXELS, option: str = REF_CODES_OPTION) -> CodingDecision:
    """The coding of the references in ``pairs`` of (prediction in canonical codes, reference as stored).

    Raises CoopSegError, naming ``option`` (``--ref-codes``), when the predictions cannot tell (too little cavity
    overlap, or no clear majority: a poor model or references from elsewhere).
    """
    canonical = swapped = 0
    for prediction, reference in pairs:
        same, other = cavity_agreement(prediction, reference)
        canonical, swapped = canonical + same, swapped + other
    total = canonical + swapped
    named_gt = sum(1 for name in reference_names if name.endswith(GT_SUFFIX))
    naming = (f"{named_gt} of {len(reference_names)} references are named <name>{GT_SUFFIX} as in ACDC"
              if reference_names else "no references")
    choose = (f"pass {option.format('acdc')} (ACDC's _gt files: 1 RV, 2 LV myocardium, 3 LV) or "
              f"{option.format('canonical')} (1 LV, 2 LV myocardium, 3 RV; M&Ms files too)")
    if total < min_voxels:
        raise CoopSegError(f"cannot tell how the references are coded: predictions and references share only "
                           f"{total} cavity voxels ({naming}); {choose}")
    share_canonical, share_acdc = canonical / total, swapped / total
    evidence = (f"of {total} voxels where prediction and reference both mark a cavity, {share_canonical:.0%} agree "
                f"read as canonical codes and {share_acdc:.0%} read as ACDC codes; {naming}")
    if max(share_canonical, share_acdc) < DECISIVE_SHARE:
        raise CoopSegError(f"cannot tell how the references are coded: {evidence}; {choose}")
    name = "acdc" if share_acdc > share_canonical else "canonical"
    return CodingDecision(name, evidence)


def reference_codes(choice: str, pairs: Sequence[Tuple[np.ndarray, np.ndarray]], reference_names: Sequence[str],
                    say: Callable[[str], None], option: str = REF_CODES_OPTION) -> Mapping[int, int]:
    """The code mapping for ``--ref-codes CHOICE`` (``option``: how the caller names it); ``auto`` decides from
    ``pairs`` and tells ``say`` why."""
    from CoopSegLib.data.labels import CODINGS

    if choice != AUTO:
        return CODINGS[choice]
    decision = detect_reference_coding(pairs, reference_names, option=option)
    say(f"reference codes: {decision.name}, detected ({decision.reason}); {option.format('CODING')} chooses them")
    return CODINGS[decision.name]
