"""Several runs on one input (defect 6): the run shown is the one selected and every other run's overlays are hidden,
and clinical indices come from the segmentations the user selected, an edited earlier run included, not silently
from the newest."""

from __future__ import annotations

import pytest

from slicer_helpers import new_scene  # first: puts CoopSegMRML on the path

from CoopSegLib.errors import CoopSegError
from inference_helpers import ring_volume

from CoopSegMRML import CoopSegSceneLogic
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume


@pytest.fixture(scope="module")
def runs(bundle):
    scene = new_scene()
    logic = CoopSegSceneLogic(scene)
    volumes = {}
    for name, seed in (("ed", 61), ("es", 62)):
        image, _ = ring_volume(5, seed=seed)
        volumes[name] = add_volume(scene, name, image.array, image.affine)
    first = logic.segment(volumes["ed"], model=str(bundle), device="cpu")
    second = logic.segment(volumes["ed"], model=str(bundle), device="cpu")
    es = logic.segment(volumes["es"], model=str(bundle), device="cpu")
    return scene, logic, volumes, first, second, es


def visible(node) -> bool:
    return bool(node.GetDisplayNode().GetVisibility())


def test_showing_a_run_hides_every_other_runs_overlays(runs):
    _, logic, volumes, first, second, es = runs
    assert [node.GetID() for node in logic.runs(volumes["ed"])] == [first.refined.GetID(), second.refined.GetID()]
    assert visible(second.refined) and not visible(first.refined)  # the new run replaced the old one in the views
    logic.show(logic.results(volumes["ed"], first.refined), "initial")
    assert [visible(n) for n in (first.initial, first.refined, second.initial, second.refined)] == \
           [True, False, False, False]
    assert visible(es.refined)  # another input's result is not touched
    logic.show(second, "refined")


def test_indices_come_from_the_selected_runs(runs):
    _, logic, volumes, first, second, es = runs
    first.refined.GetSegmentation().RemoveSegment("LV_cavity")  # the user edits the earlier run
    _, newest = logic.clinical_indices(volumes["ed"], volumes["es"])
    _, selected = logic.clinical_indices(volumes["ed"], volumes["es"], ed_segmentation=first.refined)
    assert (labels_from_segmentation(second.refined, volumes["ed"]) == 1).any()  # the newest run is unedited
    assert newest.lv_edv > 0 and selected.lv_edv == 0.0  # the edited run counts when it is the one selected
    with pytest.raises(CoopSegError, match="is not a CoopSeg result of 'ed'"):
        logic.clinical_indices(volumes["ed"], volumes["es"], ed_segmentation=es.refined)
