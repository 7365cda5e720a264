"""The module's import picks up the quality.csv row of its own label map from the worker's folder, and keeps the
labels (with no estimate) when that file is broken."""

from __future__ import annotations

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
