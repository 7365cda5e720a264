"""Segmenting outside the process: the module logic starts the CoopSegLib worker command as a real subprocess, polls
its progress lines without blocking, and imports its files on this thread. Cancel leaves no process, no folder and
no nodes (also when the worker had already finished); a crashing worker gives a clear error and no nodes; the
labels equal `coopseg segment`'s voxel for voxel."""

from __future__ import annotations

import os
import sys
import time

import nibabel as nib
import numpy as np
import pytest

from CoopSegLib.cli import main
from CoopSegLib.data.nifti import write_nifti
from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference.engine import Segmenter
from data_helpers import needs_acdc, spiked_copy
from inference_helpers import ring_volume
from slicer_helpers import new_scene

from CoopSegMRML import (  # noqa: E402  (slicer_helpers puts it on the path)
    CANCELLED,
    FAILED,
    FINISHED,
    NO_DEFAULT_MODEL,
    RUNNING,
    CoopSegSceneLogic,
    describe_device,
)
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume
from CoopSegMRML.worker_process import launch_subprocess

SECOND_LOOK_SUBJECT = "patient082"  # its second spiked copy defeats the shipped model's first pass (test_second_look)
CRASH = "import json, sys; print(json.dumps({'event': 'progress', 'fraction': 0.1, 'message': 'x'}), flush=True); " \
        "raise RuntimeError('the worker broke')"


def poll_until(job, done, timeout=120.0):
    """Poll as the GUI's timer does, collecting every status seen, until ``done(status)``."""
    seen, deadline = [], time.monotonic() + timeout
    while time.monotonic() < deadline:
        seen.append(job.status())
        if done(seen[-1]):
            return seen
        time.sleep(0.02)
    raise AssertionError(f"timed out; last status {seen[-1]}")


def node_count(scene) -> int:
    return sum(scene.GetNumberOfNodesByClass(c) for c in ("vtkMRMLSegmentationNode", "vtkMRMLTableNode"))


@pytest.fixture
def scene_volume():
    image, _ = ring_volume(5, seed=47)
    scene = new_scene()
    return scene, add_volume(scene, "rings", image.array, image.affine), image


def test_progress_arrives_while_the_worker_runs_and_labels_equal_coopseg_segment(scene_volume, bundle, tmp_path):
    scene, volume, image = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    folder = job.process.folder
    seen = poll_until(job, lambda s: s.state != RUNNING)
    assert seen[-1].state == FINISHED, seen[-1].message
    running = [s for s in seen if s.state == RUNNING]
    assert any("segmenting slices" in s.message and 0.0 < s.fraction < 1.0 for s in running)
    fractions = [s.fraction for s in seen]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert node_count(scene) == 0  # the worker makes files, never nodes
    result = logic.import_result(job)
    assert not os.path.exists(folder)  # the temporary folder goes once imported
    assert describe_device(result.device) == "CPU"

    # `coopseg segment` on the same image (refined: default stage; initial: --stage ftn)
    source = write_nifti(image.array, image.affine, tmp_path / "rings.nii.gz")
    for stage, node in (("stn", result.refined), ("ftn", result.initial)):
        out = tmp_path / stage
        assert main(["segment", str(source), "--output-dir", str(out), "--model", str(bundle), "--device", "cpu",
                     "--stage", stage, "--no-second-look"]) == 0  # as logic.start() by default
        expected = np.asarray(nib.load(str(out / "rings.nii.gz")).dataobj)
        np.testing.assert_array_equal(labels_from_segmentation(node, volume), expected)
    assert np.count_nonzero(labels_from_segmentation(result.refined, volume)) > 0


def test_cancel_kills_the_worker_and_makes_nothing(scene_volume, bundle):
    scene, volume, _ = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    poll_until(job, lambda s: s.state == RUNNING and s.message != "starting")  # the worker is under way
    status = job.cancel()
    assert status.state == CANCELLED
    assert job.process.process.returncode is not None and not job.process.running  # no process left
    assert not os.path.exists(job.process.folder)
    assert job.status().state == CANCELLED  # stays cancelled: later polls never turn it into a result
    with pytest.raises(CoopSegError, match="cancelled; nothing was added"):
        logic.import_result(job)
    assert node_count(scene) == 0


def test_cancel_after_the_worker_finished_but_before_the_poll_imports_nothing(scene_volume, bundle):
    scene, volume, _ = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    assert job.process.process.wait(120) == 0  # finished, and its "done" line is waiting unread
    assert job.cancel().state == CANCELLED and job.process.result is None
    with pytest.raises(CoopSegError, match="cancelled"):
        logic.import_result(job)
    assert node_count(scene) == 0 and not os.path.exists(job.process.folder)


def test_a_crashing_worker_gives_a_clear_error_and_no_nodes(scene_volume, bundle):
    scene, volume, _ = scene_volume
    logic = CoopSegSceneLogic(scene, launch=lambda args, env: launch_subprocess([sys.executable, "-c", CRASH], env))
    job = logic.start(volume, model=str(bundle), device="cpu")
    status = poll_until(job, lambda s: s.state != RUNNING)[-1]
    assert status.state == FAILED
    assert status.message == "the CoopSeg worker stopped unexpectedly (exit status 1): RuntimeError: the worker broke"
    assert "Traceback" in job.process.log  # the details the GUI shows
    assert not os.path.exists(job.process.folder)
    with pytest.raises(CoopSegError, match="failed"):
        logic.import_result(job)
    assert node_count(scene) == 0


def test_worker_errors_carry_their_reason(scene_volume, tmp_path):
    scene, volume, _ = scene_volume
    logic = CoopSegSceneLogic(scene)
    with pytest.raises(CoopSegError, match="missing.coopseg: no such model bundle"):
        logic.segment(volume, model=str(tmp_path / "missing.coopseg"), device="cpu")
    assert node_count(scene) == 0


def test_no_shipped_model_says_what_to_choose(scene_volume, monkeypatch, tmp_path):
    import CoopSegLib.weights

    # An install without the shipped weights (this checkout has them).
    monkeypatch.setattr(CoopSegLib.weights, "DEFAULT_BUNDLE", tmp_path / "absent.coopseg")
    scene, volume, _ = scene_volume
    with pytest.raises(CoopSegError) as error:
        CoopSegSceneLogic(scene).start(volume, model="", device="cpu")
    assert str(error.value) == NO_DEFAULT_MODEL


def test_unknown_device_is_refused_before_starting(scene_volume, bundle):
    scene, volume, _ = scene_volume
    with pytest.raises(CoopSegError, match="unknown device 'tpu'"):
        CoopSegSceneLogic(scene).start(volume, model=str(bundle), device="tpu")


@needs_acdc
def test_second_look_reaches_the_worker_and_the_module_shows_it():
    """A spiked ACDC volume the shipped model flags: with second_look the worker keeps the blurred pass's labels,
    exactly Segmenter.segment(second_look=True)'s, and the module's quality line says they came from it."""
    spiked = spiked_copy(SECOND_LOOK_SUBJECT, 2)
    scene = new_scene()
    volume = add_volume(scene, "spiked", spiked.image.array, spiked.image.affine)
    logic = CoopSegSceneLogic(scene)
    plain = logic.segment(volume, device="cpu", timeout=300)
    looked = logic.segment(volume, device="cpu", timeout=300, second_look=True)
    assert plain.quality.needs_review and not plain.quality.blurred
    assert looked.quality.blurred and looked.quality.quality > plain.quality.quality
    assert "from the second look at the blurred image" in looked.quality.describe()
    expected = Segmenter(device="cpu").segment(spiked.image.array, spiked.image.affine, second_look=True)
    assert expected.blurred
    np.testing.assert_array_equal(labels_from_segmentation(looked.refined, volume), expected.refined)
    np.testing.assert_array_equal(labels_from_segmentation(looked.initial, volume), expected.initial)
    assert not np.array_equal(labels_from_segmentation(plain.refined, volume), expected.refined)


def test_deleting_the_input_mid_run_cancels_quietly(scene_volume, bundle):
    scene, volume, _ = scene_volume
    logic = CoopSegSceneLogic(scene)
    job = logic.start(volume, model=str(bundle), device="cpu")
    assert logic.poll(job).state == RUNNING
    scene.RemoveNode(volume)
    status = logic.poll(job)
    assert status.state == CANCELLED and status.message == "the input volume was removed from the scene"
    assert not job.process.running and not os.path.exists(job.process.folder)
    assert logic.poll(job).state == CANCELLED  # stays cancelled, never an error
    assert node_count(scene) == 0
