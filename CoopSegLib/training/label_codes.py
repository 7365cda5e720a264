"""The label codes of a run's own files (``data.format`` nnunet or pairs), so that LV and RV are never swapped.

ACDC's files code 1 RV, 2 MYO, 3 LV; M&Ms's and this project's 1 LV, 2 MYO, 3 RV. Both use 0-3, so nothing in a
file tells them apart. ``data.label_codes`` names the coding (``canonical``, ``acdc`` or ``mnms``), or ``auto``
decides as ``coopseg evaluate --ref-codes auto`` does (``evaluation.coding``): the starting model (``train.init_from``,
else the shipped one) segments up to ``DETECTION_CASES`` of the labelled images, and one reading of the labels must
explain most of the cavity voxels where prediction and label agree, else the run stops and asks for the setting.
Left unset, nnunet files take the codes dataset.json names and pairs files are detected.
"""

from __future__ import annotations

import sys
from typing import Callable, List, Mapping, Optional

import numpy as np

from CoopSegLib.data.case import Case
from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.labels import CODINGS, IDENTITY, remap_labels
from CoopSegLib.data.nifti import strip_nifti_suffix
from CoopSegLib.data.readers.pairs import LABEL_SOURCE
from CoopSegLib.errors import CoopSegError
from CoopSegLib.training.settings import TrainingSettings

AUTO = "auto"
DETECTION_CASES = 4  # images segmented to detect the codes: spread over the list, enough for a clear majority
OPTION = "--set data.label_codes={}"  # how the refusal names the setting

Reader = Callable[[Optional[Mapping[int, int]]], List[Case]]  # label_map (None: the reader's own rule) -> cases


def read_with_codes(settings: TrainingSettings, read: Reader, named: Optional[Mapping[int, int]] = None,
                    say: Callable[[str], None] = lambda line: print(line, file=sys.stderr, flush=True)) -> List[Case]:
    """Cases read by ``read`` with canonical labels: ``data.label_codes`` if set, else ``named`` (the codes the
    dataset names itself, nnunet's dataset.json), else detected (see the module docstring; ``say`` hears why)."""
    choice = settings.data.label_codes
    if choice is not None and choice != AUTO:
        return read(CODINGS[choice])
    if choice is None and named is not None:
        return read(named)
    cases = read(IDENTITY)  # every coding uses 0-3: read as stored, recoded once the coding is known
    codes = detect_codes(settings, [case for case in cases if case.label is not None], say)
    return cases if codes == IDENTITY else [recoded(case, codes) for case in cases]


def detect_codes(settings: TrainingSettings, labelled: List[Case], say: Callable[[str], None]) -> Mapping[int, int]:
    """The coding of ``labelled`` cases' labels (stored codes), from the starting model's predictions."""
    from CoopSegLib.evaluation.coding import reference_codes
    from CoopSegLib.inference.engine import Segmenter
    from CoopSegLib.weights import default_bundle

    picks = np.unique(np.linspace(0, len(labelled) - 1, min(DETECTION_CASES, len(labelled))).round().astype(int))
    sample = [labelled[i] for i in picks] if labelled else []
    segmenter = Segmenter(settings.starting_bundle() or default_bundle(), device=settings.train.device)
    pairs = []
    for case in sample:
        try:
            predicted = segmenter.segment(case.image.array, case.image.affine, stage="ftn", quality=False).labels
        except CoopSegError as error:  # an image column holding label maps, say
            raise CoopSegError(f"{case.source}: {error}") from None
        pairs.append((predicted, case.label.array))
    names = [strip_nifti_suffix(case.metadata.get(LABEL_SOURCE) or case.key) for case in sample]
    return reference_codes(AUTO, pairs, names, say, option=OPTION)


def recoded(case: Case, codes: Mapping[int, int]) -> Case:
    """``case`` with its stored label codes mapped to canonical ones by ``codes``."""
    label = Volume(remap_labels(case.label.array, codes, case.metadata.get(LABEL_SOURCE) or case.source),
                   case.label.affine) if case.label is not None else None
    return Case(case.subject, case.frame, case.image, label, case.source, dict(case.metadata))
