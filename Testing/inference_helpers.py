"""Shared helpers for the inference and evaluation tests (not a test module): toy volumes and a tiny trained model.

The model is trained once per test session (a few seconds on 2 CPU cores) on volumes of ``ring_slices`` prepared
exactly as the inference engine prepares its inputs, and saved as a bundle wherever a test module wants one.
"""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Tuple

import numpy as np
import torch

from CoopSegLib.bundle import save_bundle
from CoopSegLib.cooperative import CooperativeConfig, CooperativeTrainer
from CoopSegLib.networks import CoopSegModel
from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.normalisation import minmax_per_slice
from CoopSegLib.data.preprocess import prepare_image
from toy_slices import SMALL_WIDTHS, ring_slices
from data_helpers import dice

SPACING = 1.5  # mm, the toy model's in-plane spacing
SIZE = 32  # px, the toy model's slice size
THICKNESS = 8.0  # mm between slices
PREPROCESSING = {"spacing_mm": SPACING, "size": SIZE}
TRAINING_STEPS = 80


def ring_volume(slices: int = 6, seed: int = 0, size: int = SIZE, spacing: float = SPACING) -> Tuple[Volume, Volume]:
    """(image, label) volumes of ``ring_slices`` stacked along the last axis, stored like ACDC (LPS, slices last).

    At ``size=SIZE`` and ``spacing=SPACING`` the input grid is the model's grid; other sizes with the same field of
    view (size * spacing) give the same anatomy sampled more finely or coarsely.
    """
    images, labels = ring_slices(slices, size, seed=seed)
    affine = np.diag([-spacing, -spacing, THICKNESS, 1.0])
    affine[:3, 3] = (12.0, -30.0, 4.0)
    image = np.moveaxis(images[:, 0].numpy(), 0, -1) * 1000.0  # scanner-like intensities
    label = np.moveaxis(labels.numpy().astype(np.uint8), 0, -1)
    return Volume(image.astype(np.float32), affine), Volume(label, affine)


@functools.lru_cache(maxsize=None)
def trained_model() -> CoopSegModel:
    """A small model trained briefly on ring volumes (standard training: L_std only, which is enough here)."""
    images, labels = [], []
    for seed in range(8):
        image, label = ring_volume(8, seed=100 + seed)
        slices, _ = prepare_image(image, SPACING, SIZE)
        images.append(minmax_per_slice(torch.from_numpy(slices)))
        labels.append(torch.from_numpy(np.moveaxis(label.array, -1, 0).astype(np.int64)))
    images_t, labels_t = torch.cat(images)[:, None], torch.cat(labels)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        config = CooperativeConfig.variant("standard", widths=SMALL_WIDTHS, learning_rate=3e-3)
        trainer = CooperativeTrainer(config, device="cpu", precision="fp32")
        generator = torch.Generator().manual_seed(0)
        for _ in range(TRAINING_STEPS):
            batch = torch.randint(0, len(images_t), (16,), generator=generator)
            trainer.train_step(images_t[batch], labels_t[batch])
    return trainer.model.eval()


def save_trained_bundle(folder: Path) -> Path:
    return save_bundle(Path(folder) / "toy.coopseg", trained_model(), PREPROCESSING, training={"steps": TRAINING_STEPS})


def mean_dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return float(np.mean([dice(prediction == code, truth == code) for code in (1, 2, 3)]))


def with_training_record(bundle, folder, train, validation, steps=100, seed=40):
    """A copy of ``bundle`` at ``folder`` whose metadata says it trained on ``train`` and validated on ``validation``
    for ``steps`` steps with ``seed`` (what Training/train.py records)."""
    import json
    import shutil

    path = Path(shutil.copytree(bundle, folder))
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["training"] = {"run": path.name, "steps": steps, "weights_from_step": steps, "seed": seed,
                            "device": "cpu", "wall_time_s": 60.0, "threads": 2, "precision": "fp32",
                            "host": "test-host",
                            "data": {"frames": ["ED", "ES"], "train_subjects": list(train),
                                     "validation_subjects": list(validation)},
                            "objective": CooperativeConfig().objective_dict()}
    (path / "metadata.json").write_text(json.dumps(metadata))
    return path
