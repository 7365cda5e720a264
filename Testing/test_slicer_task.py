"""Segmenting off the GUI thread: the worker reports progress and a final state, can be cancelled, reports failures
with their reason, and its result becomes nodes only when the GUI thread imports it."""

from __future__ import annotations

import threading

import numpy as np
import pytest

from inference_helpers import ring_volume
from slicer_helpers import new_scene

from CoopSegMRML import (  # noqa: E402  (slicer_helpers puts it on the path)
    CANCELLED,
    FAILED,
    FINISHED,
    NO_DEFAULT_MODEL,
    BackgroundTask,
    CoopSegSceneLogic,
    describe_device,
)
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume, volume_image


@pytest.fixture
def scene_volume():
    image, _ = ring_volume(5, seed=47)
    scene = new_scene()
    return scene, add_volume(scene, "rings", image.array, image.affine)


def test_finished_task_imports_into_nodes(scene_volume, bundle):
    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    task = logic.start(volume, model=str(bundle), device="cpu")
    status = task.join(60)
    assert status.state == FINISHED and status.fraction == 1.0
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0  # the worker made no nodes
    result = logic.import_result(volume, task.result)
    assert describe_device(result.device) == "CPU"
    np.testing.assert_array_equal(labels_from_segmentation(result.refined, volume), task.result.segmentation.refined)


def test_progress_is_monotone_and_names_the_steps(bundle):
    image, _ = ring_volume(4, seed=49)
    logic = CoopSegSceneLogic(new_scene())
    reports = []
    logic.compute(image.array, image.affine, str(bundle), "cpu", lambda f, m: reports.append((f, m)))
    fractions = [f for f, _ in reports]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    assert reports[0][1] == "loading model" and any("segmenting slices" in m for _, m in reports)


def test_cancel_stops_the_work_and_makes_nothing(scene_volume, bundle):
    scene, volume = scene_volume
    logic = CoopSegSceneLogic(scene)
    started, release = threading.Event(), threading.Event()

    def slow_start(progress, cancel):
        started.set()
        release.wait(10)
        return logic.compute(*volume_image(volume), str(bundle), "cpu", progress, cancel)

    task = BackgroundTask(slow_start).start()
    started.wait(10)
    task.cancel()
    release.set()
    status = task.join(60)
    assert status.state == CANCELLED and task.result is None and task.error is None
    assert scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode") == 0


def test_failures_carry_their_reason(scene_volume, tmp_path):
    scene, volume = scene_volume
    task = CoopSegSceneLogic(scene).start(volume, model=str(tmp_path / "missing.coopseg"), device="cpu")
    status = task.join(60)
    assert status.state == FAILED
    assert "missing.coopseg: no such model bundle" in status.message


def test_no_shipped_model_says_what_to_choose(scene_volume, monkeypatch, tmp_path):
    import CoopSegLib.weights

    # An install without the shipped weights (this checkout has them).
    monkeypatch.setattr(CoopSegLib.weights, "DEFAULT_BUNDLE", tmp_path / "absent.coopseg")
    scene, volume = scene_volume
    status = CoopSegSceneLogic(scene).start(volume, model="", device="cpu").join(60)
    assert status.state == FAILED and status.message == NO_DEFAULT_MODEL


def test_unknown_device_is_refused(scene_volume, bundle):
    scene, volume = scene_volume
    status = CoopSegSceneLogic(scene).start(volume, model=str(bundle), device="tpu").join(60)
    assert status.state == FAILED and "unknown device 'tpu'" in status.message
