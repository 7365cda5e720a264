"""The shipped default model: a sound bundle, a model card that describes these weights, and real segmentations."""

import re

import numpy as np
import pytest

from CoopSegLib.bundle import file_sha256, load_bundle, recorded_objective
from CoopSegLib.cli import main
from CoopSegLib.data.nifti import load_nifti
from CoopSegLib.data.readers import read_acdc_subject
from CoopSegLib.evaluation.metrics import overlap_scores
from CoopSegLib.weights import DEFAULT_BUNDLE, default_bundle
from data_helpers import ACDC_ROOT, REPO, needs_acdc

MODEL_CARD = REPO / "docs" / "model_card.md"
# A floor well under the validation Dice the model card reports, so the test catches a broken or swapped bundle
# (random weights score about 0.05) without tracking the figures themselves.
DICE_FLOOR = 0.75


@pytest.fixture(scope="module")
def shipped():
    return load_bundle(default_bundle(), "cpu")  # checks the weights' SHA-256 and the architecture


def test_the_shipped_bundle_is_the_cooperative_acdc_model(shipped):
    meta = shipped.metadata
    assert shipped.path == DEFAULT_BUNDLE
    objective = recorded_objective(meta)  # the format-2 bundle keeps the training settings apart from the network
    assert objective["hard_examples"] and objective["cooperative_gradients"]
    assert meta["network"]["widths"] == [16, 32, 64, 128, 128]
    assert meta["preprocessing"]["spacing_mm"] == pytest.approx(1.36719) and meta["preprocessing"]["size"] == 192
    data = meta["training"]["data"]
    assert data["format"] == "acdc" and len(data["validation_subjects"]) == 8
    assert not set(data["validation_subjects"]) & set(data["train_subjects"])
    assert len(data["train_subjects"]) + len(data["validation_subjects"]) == 80


def test_the_model_card_describes_these_weights(shipped):
    card = MODEL_CARD.read_text()
    meta = shipped.metadata
    assert file_sha256(DEFAULT_BUNDLE / meta["weights"]["file"]) in card
    record = meta["training"]
    assert f"{record['steps']} steps" in card and f"step {record['weights_from_step']}" in card
    for key, value in record["validation_dice"].items():  # per class and mean, FTN and FTN+STN
        stage, structure = key.split("_")
        label = re.escape("FTN" if stage == "ftn" else "FTN+STN")
        row = re.search(rf"\| {label} \|.*", card.split("## Validation")[1])
        assert row and f"{value:.3f}" in row.group(0), (key, value)


@needs_acdc
def test_coopseg_segment_without_model_uses_the_shipped_one(tmp_path, shipped, capsys):
    subject = shipped.metadata["training"]["data"]["validation_subjects"][0]  # never trained on
    (ed,) = read_acdc_subject(ACDC_ROOT / subject, ("ED",))  # labels in the project's canonical codes
    assert main(["segment", str(ed.source), "--output-dir", str(tmp_path), "--device", "cpu"]) == 0
    (written,) = tmp_path.glob("*.nii.gz")
    labels, affine, _ = load_nifti(written)
    assert np.allclose(affine, ed.image.affine)
    scores = overlap_scores(labels, ed.label.array, ed.image.spacing, distances=False)
    assert np.mean([s.dice for s in scores.values()]) >= DICE_FLOOR, scores
