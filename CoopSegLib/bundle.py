"""Model bundles: a folder with the weights and JSON metadata, loaded without executing any code.

    model.coopseg/
        metadata.json   network (the architecture, ``NetworkConfig``), preprocessing, label names, training (the
                        run's record and its objective settings), version, and the SHA-256 of the weights file
        weights.pt      the state dict, read back with torch.load(weights_only=True) (no arbitrary unpickling)

Inference rebuilds the model from "network" alone. Bundles of format version 1 (what CoopSeg wrote before format 2)
kept the whole method configuration under "architecture"; they load as they always did, their network settings
taken from there. A bundle whose checksum, format or architecture does not match is refused with a message naming
the folder; it never falls back to random weights.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any, List, Mapping, NamedTuple, Optional, Union

import torch

from CoopSegLib import __version__
from CoopSegLib.vocabulary import LABEL_NAMES
from CoopSegLib.errors import ConfigError, CoopSegError
from CoopSegLib.networks import CoopSegModel, NetworkConfig

FORMAT = "coopseg-bundle"
FORMAT_VERSION = 2  # 2: "network" holds the architecture; 1: "architecture" held the whole method configuration
READABLE_VERSIONS = (1, 2)
ARCHITECTURE_SECTIONS = {1: "architecture", 2: "network"}
METADATA_FILE = "metadata.json"
WEIGHTS_FILE = "weights.pt"
STORAGE_DTYPES = {"float32": torch.float32, "float16": torch.float16}

PathLike = Union[str, os.PathLike]


class BundleError(CoopSegError):
    """The folder is not a usable CoopSeg model bundle."""


class Bundle(NamedTuple):
    """A loaded bundle: the model (eval mode, on the device asked for), its metadata and its folder.

    >>> from CoopSegLib.weights import default_bundle
    >>> bundle = load_bundle(default_bundle(), "cpu")
    >>> bundle.model.config.widths, bundle.metadata["preprocessing"]["size"]
    ((16, 32, 64, 128, 128), 192)
    """

    model: CoopSegModel
    metadata: dict
    path: Path


def file_sha256(path: PathLike) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_bundle(path: PathLike, model: CoopSegModel, preprocessing: Mapping[str, Any],
                training: Optional[Mapping[str, Any]] = None, storage: str = "float32",
                overwrite: bool = False) -> Path:
    """Write ``model`` as a bundle folder at ``path``, atomically: a complete bundle or nothing appears there.

    ``preprocessing`` says how inputs must be prepared (e.g. {"spacing_mm": 1.36719, "size": 192}); ``training``
    records the data, objective settings and steps it came from. ``storage="float16"`` halves the file size.
    """
    path = Path(path)
    if storage not in STORAGE_DTYPES:
        raise ValueError(f"storage must be one of {sorted(STORAGE_DTYPES)}, not {storage!r}")
    if path.exists() and not overwrite:
        raise BundleError(f"{path}: already exists (pass overwrite=True to replace it)")
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        dtype = STORAGE_DTYPES[storage]
        state = {k: v.detach().to("cpu", dtype if v.is_floating_point() else v.dtype).contiguous()
                 for k, v in model.state_dict().items()}
        torch.save(state, staging / WEIGHTS_FILE)
        metadata = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "coopseg_version": __version__,
            "network": model.config.to_dict(),
            "preprocessing": dict(preprocessing),
            "labels": {str(code): name for code, name in LABEL_NAMES.items()},
            "training": dict(training or {}),
            "weights": {"file": WEIGHTS_FILE, "sha256": file_sha256(staging / WEIGHTS_FILE), "storage": storage},
        }
        (staging / METADATA_FILE).write_text(json.dumps(metadata, indent=2) + "\n")
        if path.exists():
            retired = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, retired / path.name)
            os.replace(staging, path)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, path)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return path


def read_metadata(path: PathLike) -> dict:
    """The bundle's metadata, checked for format and version."""
    path = Path(path)
    metadata_file = path / METADATA_FILE
    if not path.exists():
        raise BundleError(f"{path}: no such model bundle")
    if not metadata_file.is_file():
        raise BundleError(f"{path}: not a CoopSeg model bundle (no {METADATA_FILE})")
    try:
        metadata = json.loads(metadata_file.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as error:
        raise BundleError(f"{metadata_file}: unreadable metadata ({error})") from None
    if not isinstance(metadata, dict) or metadata.get("format") != FORMAT:
        raise BundleError(f"{path}: not a CoopSeg model bundle (format is not {FORMAT!r})")
    version = metadata.get("format_version")
    if version not in READABLE_VERSIONS:
        raise BundleError(f"{path}: bundle format version {version!r} is not supported "
                          f"(this CoopSeg reads versions {', '.join(map(str, READABLE_VERSIONS))}); update CoopSeg")
    for key in (ARCHITECTURE_SECTIONS[version], "preprocessing", "weights"):
        if not isinstance(metadata.get(key), dict):
            raise BundleError(f"{path}: metadata has no {key!r} section")
    return metadata


def write_metadata_section(path: PathLike, key: str, value: Any) -> Path:
    """Set (or with ``value`` None remove) one top-level section of a bundle's metadata.json, atomically.

    For sections that describe the model without changing it (e.g. "quality", the quality-estimate calibration):
    the weights and their checksum stay as they are, so the bundle still loads, and the format sections cannot be
    replaced this way.
    """
    from CoopSegLib.atomic import write_atomically

    if key in ("format", "format_version", "architecture", "network", "preprocessing", "labels", "weights"):
        raise BundleError(f"{path}: metadata section {key!r} describes the weights and cannot be replaced on its own")
    path = Path(path)
    metadata = read_metadata(path)
    if value is None:
        metadata.pop(key, None)
    else:
        metadata[key] = value
    text = json.dumps(metadata, indent=2) + "\n"
    write_atomically(path / METADATA_FILE, lambda temporary: Path(temporary).write_text(text))
    return path / METADATA_FILE


def recorded_subjects(metadata: Mapping[str, Any], part: str = "validation") -> List[str]:
    """The subjects a bundle's training record says it used for ``part`` ("train" or "validation"); [] if none."""
    training = metadata.get("training") or {}
    return list((training.get("data") or {}).get(f"{part}_subjects") or [])


def network_config(metadata: Mapping[str, Any]) -> NetworkConfig:
    """The architecture a bundle's metadata names: "network" (version 2), or the network settings of a version 1
    bundle's "architecture" (its training settings are left out: inference needs none of them)."""
    if metadata.get("format_version") == 1:
        architecture = metadata["architecture"]
        return NetworkConfig.from_dict({key: architecture[key] for key in NetworkConfig.keys() if key in architecture})
    return NetworkConfig.from_dict(metadata["network"])


def recorded_objective(metadata: Mapping[str, Any]) -> dict:
    """The objective settings a bundle was trained with (learning rate, hard examples, ...); {} if not recorded."""
    if metadata.get("format_version") == 1:
        return {k: v for k, v in metadata["architecture"].items() if k not in NetworkConfig.keys()}
    return dict((metadata.get("training") or {}).get("objective") or {})


def load_bundle(path: PathLike, device: Union[str, torch.device] = "cpu") -> Bundle:
    """Load a bundle: verify the checksum, build the architecture it names, load the weights strictly."""
    path = Path(path)
    metadata = read_metadata(path)
    weights = path / str(metadata["weights"].get("file", WEIGHTS_FILE))
    if not weights.is_file():
        raise BundleError(f"{path}: weights file {weights.name} is missing")
    if file_sha256(weights) != metadata["weights"].get("sha256"):
        raise BundleError(f"{path}: checksum of {weights.name} does not match the metadata (corrupted or altered)")
    try:
        config = network_config(metadata)
    except ConfigError as error:
        raise BundleError(f"{path}: architecture in the metadata is invalid: {error}") from None
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as error:  # the restricted unpickler refuses anything but tensors and plain containers
        raise BundleError(f"{path}: cannot read {weights.name} as plain weights ({error})") from None
    model = CoopSegModel(config)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as error:
        first = str(error).strip().splitlines()
        raise BundleError(f"{path}: weights do not match the architecture in the metadata "
                          f"({' '.join(line.strip() for line in first[:3])})") from None
    return Bundle(model.to(device).eval(), metadata, path)
