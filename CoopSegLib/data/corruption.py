"""Corrupted copies of volumes with TorchIO's MR artefacts at the paper's parameters (ACDC-C test sets).

The paper corrupts the ES frames of the 20 ACDC test subjects three times each with every kind below. Seeds come
from (seed, kind, file name, copy), so the same command gives identical files whatever order the inputs come in.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable, Dict, List, Sequence, Union

import numpy as np
import torch

from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.nifti import load_nifti, strip_nifti_suffix, write_like
from CoopSegLib.errors import CoopSegError

PathLike = Union[str, Path]

# The seed whose corrupted copies of the validation subjects were looked at while the model, its levers and the
# second look were chosen (every development figure uses it). Figures to report use any other --seed.
DEVELOPMENT_SEED = 0
DEVELOPMENT_SEED_NOTE = (f"note: corruption seed {DEVELOPMENT_SEED} is the development seed (its copies of the "
                         "validation subjects chose the model, its levers and the second look); for figures to "
                         "report, give a fresh --seed")


def _bias() -> Any:
    import torchio as tio

    return tio.RandomBiasField(coefficients=0.5, order=3)


def _ghosting() -> Any:
    import torchio as tio

    return tio.RandomGhosting(num_ghosts=(4, 10), axes=(0, 1, 2), intensity=(0.5, 1), restore=0.02)


def _motion() -> Any:
    import torchio as tio

    return tio.RandomMotion(degrees=30, translation=10)


def _spike() -> Any:
    import torchio as tio

    # The authors' code passes num_spikes=1, which TorchIO reads as "0 or 1 spikes": half of its "corrupted"
    # copies are untouched. The paper's set is described as one spike per copy, so ask for exactly one.
    return tio.RandomSpike(num_spikes=(1, 1), intensity=(1, 3))


def _spike_paper() -> Any:
    import torchio as tio

    # What the authors' code asks for (num_spikes=1: 0 or 1 spikes per copy), to compare with the paper's figures.
    return tio.RandomSpike(num_spikes=1, intensity=(1, 3))


CORRUPTIONS: Dict[str, Callable[[], Any]] = {"bias": _bias, "ghosting": _ghosting, "motion": _motion, "spike": _spike,
                                             "spike_paper": _spike_paper}


def corruption_seed(seed: int, kind: str, name: str, copy: int) -> int:
    """A 63-bit seed from (seed, kind, file name, copy), stable across runs and platforms."""
    digest = hashlib.sha256(f"{seed}|{kind}|{name}|{copy}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def corrupt_volume(volume: Volume, kind: str, seed: int) -> np.ndarray:
    """A corrupted copy of ``volume.array`` (float32, same shape), deterministic for ``seed``."""
    if kind not in CORRUPTIONS:
        raise CoopSegError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    import torchio as tio

    transform = CORRUPTIONS[kind]()
    image = tio.ScalarImage(tensor=torch.from_numpy(np.asarray(volume.array, dtype=np.float32)[None].copy()),
                            affine=volume.affine)
    # TorchIO draws its random parameters from torch's global generator: seed it and restore it afterwards.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        result = transform(tio.Subject(image=image))
    return result["image"].data[0].numpy().astype(np.float32)


def output_name(path: PathLike, kind: str, copy: int) -> str:
    """``<stem>_<kind>_<copy>.nii.gz`` (copies counted from 1)."""
    return f"{strip_nifti_suffix(path)}_{kind}_{copy}.nii.gz"


def corrupt_files(
    inputs: Sequence[PathLike], output_dir: PathLike, kind: str, copies: int = 3, seed: int = 0
) -> List[Path]:
    """Write ``copies`` corrupted copies of each input NIfTI into ``output_dir`` with the input's exact header
    geometry (sform, qform, pixdim), as float32 whatever the input's data type: the artefacts make non-integer
    intensities, and the files then hold exactly what ``corrupt_volume`` gives the on-the-fly test sets.

    Every input is read and checked before anything is written; if writing fails part-way, the files written by
    this call are removed again, so an error never leaves a partial set behind.
    """
    if kind not in CORRUPTIONS:
        raise CoopSegError(f"unknown corruption {kind!r}; use one of {', '.join(CORRUPTIONS)}")
    if copies < 1:
        raise CoopSegError(f"--copies must be at least 1, got {copies}")
    if not inputs:
        raise CoopSegError("no input files given")
    names = [strip_nifti_suffix(path) for path in inputs]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise CoopSegError(f"several inputs are named {duplicates[0]}: their outputs would overwrite each other")
    loaded = [load_nifti(path) for path in inputs]  # fails here, before any output, on a missing or bad file
    output_dir = Path(output_dir)
    if output_dir.exists() and not output_dir.is_dir():
        raise CoopSegError(f"{output_dir}: exists and is not a folder")
    output_dir.mkdir(parents=True, exist_ok=True)
    written: List[Path] = []
    try:
        for path, name, (array, affine, image) in zip(inputs, names, loaded):
            volume = Volume(array, affine)
            for copy in range(1, copies + 1):
                corrupted = corrupt_volume(volume, kind, corruption_seed(seed, kind, name, copy))
                written.append(write_like(corrupted, image, output_dir / output_name(path, kind, copy), np.float32))
    except BaseException:
        for path in written:
            path.unlink(missing_ok=True)
        raise
    return written
