"""A label map given where the image belongs: refused in one line by Python, `coopseg segment` and the Slicer
module's logic; segmented only when asked, and then never rated "ok"."""

from __future__ import annotations

import csv
import os
import subprocess
import sys

import numpy as np
import pytest

from CoopSegLib.data.label_like import label_like_values
from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.inference.inputs import label_like_message
from CoopSegLib.inference.quality import SliceSignals, estimate_quality, frame_features
from CoopSegLib.vocabulary import OK, REVIEW
from data_helpers import ACDC_ROOT, REPO, needs_acdc
from inference_helpers import ring_volume

# Its ED _gt file gets a first-pass estimate above the shipped threshold when segmented as an image (0.81 against
# 0.70 when written): the flag must come from the label-like rule, not from a low score.
SUBJECT = "patient003"


@pytest.mark.parametrize("array, label_like", [
    (np.array([[0, 1], [2, 3]], np.uint8), True),
    (np.zeros((4, 4, 2), np.int16), True),  # blank: nothing to segment
    (np.arange(8, dtype=np.float32).reshape(2, 2, 2), True),  # whole numbers stored as floats
    (np.array([True, False]), True),
    (np.arange(9, dtype=np.uint8).reshape(3, 3), False),  # more distinct values than a label map holds
    (np.array([0.0, 0.5, 1.0]), False),
    (np.array([-1, 0, 1], np.int16), False),
    (np.linspace(0.0, 900.0, 64).reshape(8, 8), False),
])
def test_what_counts_as_label_like(array, label_like):
    assert (label_like_values(array) is not None) == label_like


def test_an_image_holding_few_values_in_its_sample_but_many_overall_is_an_image():
    image = np.zeros(200_000, np.int16)
    image[1::7] = np.arange(1, image[1::7].size + 1) % 500  # missed by the evenly spaced sample
    assert label_like_values(image) is None


def test_the_segmenter_refuses_a_label_map_unless_told_otherwise(bundle):
    segmenter = Segmenter(bundle, device="cpu")
    image, label = ring_volume(4, seed=3)
    with pytest.raises(CoopSegError) as refused:
        segmenter.segment(label.array, label.affine)
    assert str(refused.value) == label_like_message(np.array([0, 1, 2, 3]))
    assert "allow_label_like_input=True" in str(refused.value) and "\n" not in str(refused.value)
    forced = segmenter.segment(label.array, label.affine, allow_label_like_input=True, second_look=True)
    assert forced.quality.flag == REVIEW and forced.quality.label_like_input and not forced.blurred
    assert segmenter.segment(image.array, image.affine).quality.label_like_input is False


def test_a_label_like_input_is_flagged_whatever_its_estimate():
    labels = np.zeros((3, 32, 32), np.uint8)
    labels[:, 8:20, 8:20], labels[:, 10:18, 10:18], labels[:, 8:20, 22:28] = 2, 1, 3
    signals = SliceSignals(labels, labels, np.zeros(3), np.zeros(3), np.zeros(3), pixel_ml=1.0)
    features = [frame_features(signals)]
    plain = estimate_quality(features, [np.arange(3)], None, "stn")
    forced = estimate_quality(features, [np.arange(3)], None, "stn", label_like_input=True)
    assert plain.flag == OK and plain.volume == 1.0  # FTN and STN agree perfectly: the fallback says ok
    assert forced.flag == REVIEW and forced.volume == plain.volume  # same estimate, never "ok"


def run_coopseg(*args):
    environment = {**os.environ, "OMP_NUM_THREADS": "1",
                   "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, "-m", "CoopSegLib", "segment", *args, "--device", "cpu"],
                          capture_output=True, text=True, env=environment, timeout=600)


@needs_acdc
def test_coopseg_segment_refuses_an_acdc_gt_file_and_segments_its_image(tmp_path):
    folder = ACDC_ROOT / SUBJECT
    gt, image = folder / f"{SUBJECT}_frame01_gt.nii.gz", folder / f"{SUBJECT}_frame01.nii.gz"
    out = tmp_path / "out"
    refused = run_coopseg(str(gt), str(image), "--output-dir", str(out), "--no-second-look")
    assert refused.returncode == 1, refused.stderr  # one input failed, the other was written
    assert refused.stderr.strip().splitlines() == [
        f"coopseg segment: error: {gt}: {label_like_message(np.array([0, 1, 2, 3]))}"]
    assert refused.stdout.split() == [str(out / f"{SUBJECT}_frame01.nii.gz")]
    with open(out / "quality.csv", newline="") as stream:
        assert [row["name"] for row in csv.DictReader(stream)] == [f"{SUBJECT}_frame01"]

    alone = run_coopseg(str(gt), "--output-dir", str(tmp_path / "alone"))
    assert alone.returncode == 1 and not (tmp_path / "alone").exists()  # nothing left behind

    forced = run_coopseg(str(gt), "--output-dir", str(tmp_path / "forced"), "--allow-label-like-input")
    assert forced.returncode == 0, forced.stderr
    with open(tmp_path / "forced" / "quality.csv", newline="") as stream:
        (row,) = csv.DictReader(stream)
    assert row["flag"] == REVIEW
    assert f"{SUBJECT}_frame01_gt: the input looks like a label map" in forced.stderr


def test_the_slicer_logic_gets_the_workers_line(bundle):
    from slicer_helpers import new_scene

    from CoopSegMRML import CoopSegSceneLogic
    from CoopSegMRML.volumes import add_volume

    _, label = ring_volume(4, seed=5)
    scene = new_scene()
    volume = add_volume(scene, "labels", label.array, label.affine)
    with pytest.raises(CoopSegError) as refused:
        CoopSegSceneLogic(scene).segment(volume, model=str(bundle), device="cpu")
    assert str(refused.value) == label_like_message(np.array([0, 1, 2, 3]))  # without the temporary file's name
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0
    result = CoopSegSceneLogic(scene).segment(volume, model=str(bundle), device="cpu", allow_label_like_input=True)
    assert result.quality.flag == REVIEW
