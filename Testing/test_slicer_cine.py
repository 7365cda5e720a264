"""A 4D phantom cine in MRML (a 4D NIfTI read by Slicer's sequences logic, played by a sequence browser) segmented by
the module's logic through the real worker process with the shipped model: segmentation sequences synchronised in
the same browser, the volume curve table and plot chart, ED / ES and the indices, every number checked against the
labels counted here with numpy; edits and a user's ED / ES count; Cancel leaves nothing."""

from __future__ import annotations

import numpy as np
import pytest

from CoopSegLib.data.nifti import write_nifti
from CoopSegLib.data.phantom import phantom_subject
from CoopSegLib.errors import CoopSegError
from CoopSegLib.weights import has_default_bundle
from slicer_helpers import new_scene, slicer

from CoopSegMRML import CANCELLED, CoopSegSceneLogic  # noqa: E402  (slicer_helpers puts it on the path)
from CoopSegMRML.cine import (FRAME_COLUMN, LV_COLUMN, MARK_COLUMN, RV_COLUMN, cine_image, cine_of,
                              sequence_labels, sequences_logic)
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.tables import table_rows
from CoopSegMRML.volumes import ijk_to_ras

pytestmark = pytest.mark.skipif(not has_default_bundle(), reason="needs the shipped model")
CONTRACTIONS = (0.5, 0.0, 0.6, 1.0)  # phantom frames between ED (0) and ES (1): ED is frame 1, ES frame 3


def load_cine(scene, path):
    """What Slicer does with a 4D NIfTI: a volume sequence, a browser playing it and its proxy volume."""
    logic = sequences_logic(scene)
    sequence = logic.AddSequence(str(path))
    assert sequence is not None and sequence.GetNumberOfDataNodes() == len(CONTRACTIONS)
    browser = scene.AddNewNodeByClass("vtkMRMLSequenceBrowserNode", "heart browser")
    browser.SetAndObserveMasterSequenceNodeID(sequence.GetID())
    logic.UpdateProxyNodesFromSequences(browser)
    proxy = browser.GetProxyNode(sequence)
    proxy.SetName("heart")
    return browser, sequence, proxy


@pytest.fixture(scope="module")
def cine(tmp_path_factory):
    folder = tmp_path_factory.mktemp("slicer_cine")
    cases = phantom_subject(3, frames=CONTRACTIONS, supersample=1)
    image = np.stack([case.image.array for case in cases], axis=-1)
    path = write_nifti(image, cases[0].image.affine, folder / "heart.nii.gz")
    scene = new_scene()
    browser, sequence, proxy = load_cine(scene, path)
    logic = CoopSegSceneLogic(scene)
    result = logic.segment(proxy, device="cpu", timeout=900)
    return scene, logic, browser, sequence, proxy, image, result


def test_the_proxy_of_a_browsed_sequence_is_a_cine_of_all_its_frames(cine):
    _, _, browser, sequence, proxy, image, _ = cine
    found = cine_of(proxy)
    assert found is not None and found.browser is browser and found.sequence is sequence
    array, affine = cine_image(found, proxy)
    np.testing.assert_array_equal(array, image)  # every frame, in order, as the file holds them
    np.testing.assert_allclose(affine, ijk_to_ras(proxy))


def test_results_are_segmentation_sequences_in_step_with_the_image(cine):
    scene, logic, browser, sequence, proxy, _, result = cine
    refined_sequence = result.cine.refined_sequence
    for node, stage in ((result.initial, "initial (FTN)"), (result.refined, "refined (FTN+STN)")):
        assert node.IsA("vtkMRMLSegmentationNode") and node.GetName() == f"heart {stage}"
        assert browser.IsProxyNodeID(node.GetID())
    assert browser.IsSynchronizedSequenceNode(refined_sequence)
    assert browser.GetNumberOfSynchronizedSequenceNodes() == 2  # the two results (the image is the master)
    segmentations = [scene.GetNthNodeByClass(i, "vtkMRMLSegmentationNode")
                     for i in range(scene.GetNumberOfNodesByClass("vtkMRMLSegmentationNode"))]
    assert sorted(n.GetName() for n in segmentations) == ["heart initial (FTN)", "heart refined (FTN+STN)"]
    assert refined_sequence.GetNumberOfDataNodes() == sequence.GetNumberOfDataNodes()
    assert [refined_sequence.GetNthIndexValue(t) for t in range(len(CONTRACTIONS))] == \
           [sequence.GetNthIndexValue(t) for t in range(len(CONTRACTIONS))]
    labels = sequence_labels(refined_sequence, proxy)
    assert len({int((labels[..., t] == 1).sum()) for t in range(labels.shape[3])}) == len(CONTRACTIONS)
    for t in (3, 1):  # the browser moves image and segmentation together
        browser.SetSelectedItemNumber(t)
        np.testing.assert_array_equal(labels_from_segmentation(result.refined, proxy), labels[..., t])
    assert logic.results(proxy).refined is result.refined  # found again, attributes kept across frame changes


def test_curve_ed_es_and_indices_match_the_labels_counted_by_hand(cine):
    _, _, _, _, proxy, _, result = cine
    labels = sequence_labels(result.cine.refined_sequence, proxy)
    voxel = abs(np.linalg.det(ijk_to_ras(proxy)[:3, :3])) / 1000.0
    volumes = {code: (labels == code).sum(axis=(0, 1, 2)) * voxel for code in (1, 2, 3)}
    curve = table_rows(result.cine.curve.curve)
    assert [row[0] for row in curve] == list(range(len(CONTRACTIONS)))
    for column, code in ((1, 1), (2, 2), (3, 3)):
        np.testing.assert_allclose([row[column] for row in curve], volumes[code])
    assert all(0.0 <= row[4] <= 1.0 for row in curve)  # each frame's quality estimate from the worker
    ed, es = int(np.argmax(volumes[1])), int(np.argmin(volumes[1]))
    assert (ed, es) == (1, 3)  # the phantom's own ED and ES
    marks = table_rows(result.cine.curve.marks)
    assert [(row[0], row[2]) for row in marks[:2]] == [(ed, "ED"), (es, "ES")]
    indices = table_rows(result.cine.indices)
    assert [row[1] for row in indices[:2]] == [ed, es]
    edv, esv = volumes[1][ed], volumes[1][es]
    np.testing.assert_allclose([row[1] for row in indices[2:7]],
                               [edv, esv, edv - esv, (edv - esv) / edv * 100, volumes[2][ed] * 1.05])
    rv_edv, rv_esv = volumes[3][ed], volumes[3][es]
    np.testing.assert_allclose([row[1] for row in indices[7:]],
                               [rv_edv, rv_esv, rv_edv - rv_esv, (rv_edv - rv_esv) / rv_edv * 100])


def test_the_chart_plots_lv_and_rv_against_frame_with_the_marks(cine):
    _, _, _, _, _, _, result = cine
    chart = result.cine.curve.chart
    assert chart.IsA("vtkMRMLPlotChartNode") and chart.GetNumberOfPlotSeriesNodes() == 3
    series = [chart.GetNthPlotSeriesNode(i) for i in range(3)]
    assert [(s.GetTableNode().GetID(), s.GetXColumnName(), s.GetYColumnName()) for s in series] == [
        (result.cine.curve.curve.GetID(), FRAME_COLUMN, LV_COLUMN),
        (result.cine.curve.curve.GetID(), FRAME_COLUMN, RV_COLUMN),
        (result.cine.curve.marks.GetID(), FRAME_COLUMN, LV_COLUMN)]
    assert series[2].GetLabelColumnName() == MARK_COLUMN
    assert series[2].GetLineStyle() == slicer.vtkMRMLPlotSeriesNode.LineStyleNone


def test_edits_and_a_users_ed_and_es_change_the_indices(cine):
    _, logic, browser, _, proxy, _, result = cine
    before = logic.cine_indices(proxy).analysis
    browser.SetSelectedItemNumber(before.es)
    result.refined.GetSegmentation().RemoveSegment("LV_cavity")  # the user erases the ES LV cavity
    after = logic.cine_indices(proxy).analysis
    assert after.frames[before.es].lv_ml == 0.0 and after.es == before.es
    assert after.indices.lv_ef == pytest.approx(100.0) and after.indices.rv_ef == before.indices.rv_ef
    chosen = logic.cine_indices(proxy, ed=0, es=2)
    rows = table_rows(chosen.indices)
    assert [row[1] for row in rows[:2]] == [0, 2]
    assert rows[2][1] == pytest.approx(chosen.analysis.frames[0].lv_ml)
    with pytest.raises(CoopSegError, match="ES frame 9 is outside"):
        logic.cine_indices(proxy, es=9)


def test_a_cine_cannot_overwrite_an_existing_segmentation(cine):
    scene, logic, _, _, proxy, _, result = cine
    with pytest.raises(CoopSegError, match="is a cine"):
        logic.start(proxy, device="cpu", output=result.refined)


def test_a_cine_import_failing_part_way_leaves_the_scene_and_the_browser_as_they_were(cine, monkeypatch):
    import CoopSegMRML.logic

    scene, logic, browser, _, proxy, _, _ = cine
    counts = {name: scene.GetNumberOfNodesByClass(name) for name in
              ("vtkMRMLSequenceNode", "vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLPlotChartNode",
               "vtkMRMLPlotSeriesNode")}
    synchronised = browser.GetNumberOfSynchronizedSequenceNodes()

    def broken_chart(*args):  # after both segmentation sequences joined the browser
        assert browser.GetNumberOfSynchronizedSequenceNodes() == synchronised + 2
        raise RuntimeError("chart failed")

    monkeypatch.setattr(CoopSegMRML.logic, "add_curve_nodes", broken_chart)
    with pytest.raises(RuntimeError, match="chart failed"):
        logic.segment(proxy, device="cpu", timeout=900)
    assert {name: scene.GetNumberOfNodesByClass(name) for name in counts} == counts
    assert browser.GetNumberOfSynchronizedSequenceNodes() == synchronised


def test_cancelling_a_cine_adds_nothing(cine):
    scene, logic, browser, _, proxy, _, _ = cine
    counts = {name: scene.GetNumberOfNodesByClass(name) for name in
              ("vtkMRMLSequenceNode", "vtkMRMLSegmentationNode", "vtkMRMLTableNode", "vtkMRMLPlotChartNode")}
    synchronised = browser.GetNumberOfSynchronizedSequenceNodes()
    job = logic.start(proxy, device="cpu")
    status = job.cancel()
    assert status.state == CANCELLED
    with pytest.raises(CoopSegError, match="cancelled"):
        logic.import_result(job)
    assert {name: scene.GetNumberOfNodesByClass(name) for name in counts} == counts
    assert browser.GetNumberOfSynchronizedSequenceNodes() == synchronised


def test_frames_a_user_chose_are_kept_with_the_result(cine):
    _, logic, _, _, proxy, _, _ = cine
    logic.cine_indices(proxy, ed=0, es=2)
    again = logic.cine_indices(proxy, keep=True)  # e.g. the module reopening a saved scene's result
    assert (again.analysis.ed, again.analysis.es) == (0, 2)
    found = logic.cine_indices(proxy)
    lv = [frame.lv_ml for frame in found.analysis.frames]
    assert (found.analysis.ed, found.analysis.es) == (int(np.argmax(lv)), int(np.argmin(lv)))
