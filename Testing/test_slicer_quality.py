"""The module's import picks up the quality.csv row of its own label map from the worker's folder, and keeps the
labels (with no estimate) when that file is broken."""

from __future__ import annotations

import pytest

import slicer_helpers  # noqa: F401  (puts CoopSegMRML on the path)
from CoopSegMRML.logic import CoopSegSceneLogic


def write(path, text):
    path.write_text(text)
    return path


def test_the_import_takes_the_estimate_of_its_own_label_map(tmp_path):
    path = write(tmp_path / "quality.csv", "name,quality,flag\nother,0.9,ok\ninput,0.52,review\n")
    files = {"refined": str(tmp_path / "input.nii.gz"), "quality": str(path)}
    estimate = CoopSegSceneLogic._quality(files)
    assert (estimate.name, estimate.flag) == ("input", "review")
    assert CoopSegSceneLogic._quality({"refined": files["refined"]}) is None
    broken = {"refined": files["refined"], "quality": str(write(tmp_path / "bad.csv", "name\ninput\n"))}
    assert CoopSegSceneLogic._quality(broken) is None  # the labels still count; the log says why


def test_the_estimate_is_kept_on_its_node_through_a_saved_scene_and_shown_per_input(tmp_path):
    from inference_helpers import ring_volume
    from slicer_helpers import new_scene

    from CoopSegLib.quality_file import QualityRecord
    from CoopSegMRML.volumes import add_volume

    scene = new_scene()
    logic = CoopSegSceneLogic(scene)
    volumes, estimates = [], {}
    for number, quality in enumerate((0.52, 0.91)):
        image, labels = ring_volume(4, seed=number)
        volume = add_volume(scene, f"rings{number}", image.array, image.affine)
        flag = "review" if quality < 0.7 else "ok"
        estimates[volume.GetID()] = QualityRecord("input", quality, flag, False, 0.7, suspect_slices=((0, 2),))
        logic._import(volume, labels.array, labels.array, "cpu", None, estimates[volume.GetID()])
        volumes.append(volume)
    for volume in volumes:  # each input shows its own estimate, not the last run's
        assert logic.results(volume).quality == estimates[volume.GetID()]
    scene.SetSaveToXMLString(1)
    scene.Commit()
    reopened = new_scene()
    reopened.SetLoadFromXMLString(1)
    reopened.SetSceneXMLString(scene.GetSceneXMLString())
    reopened.Import()
    again = CoopSegSceneLogic(reopened)
    for volume in volumes:
        restored = again.results(reopened.GetNodeByID(volume.GetID())).quality
        assert restored.quality == pytest.approx(estimates[volume.GetID()].quality, abs=1e-4)
        assert restored.suspect_slices == ((0, 2),) and restored.calibrated is False
        assert "uncalibrated" in restored.describe()


def test_a_suspect_slice_moves_the_slice_views_to_its_centre():
    import numpy as np
    from inference_helpers import ring_volume
    from slicer_helpers import new_scene

    from CoopSegLib.errors import CoopSegError
    from CoopSegLib.data.geometry import stack_axis
    from CoopSegMRML.volumes import add_volume

    scene = new_scene()
    image, _ = ring_volume(6, seed=3)
    volume = add_volume(scene, "rings", image.array, image.affine)
    red = scene.AddNewNodeByClass("vtkMRMLSliceNode")
    red.SetOrientationToAxial()
    ras = CoopSegSceneLogic(scene).show_slice(volume, 4)
    axis = stack_axis(image.affine)
    centre = (np.asarray(image.array.shape, dtype=float) - 1) / 2
    centre[axis] = 4
    assert ras == pytest.approx((image.affine @ np.append(centre, 1))[:3])
    to_ras = red.GetSliceToRAS()
    assert [to_ras.GetElement(i, 3) for i in range(3)] == pytest.approx(ras)
    with pytest.raises(CoopSegError, match="slice 6 is outside volume 'rings' \\(6 slices\\)"):
        CoopSegSceneLogic(scene).show_slice(volume, image.array.shape[axis])
