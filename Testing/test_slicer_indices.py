"""Clinical indices from the ED and ES frames of one real ACDC subject, each segmented through MRML: the table holds
CoopSegLib's clinical_indices of the segmentation nodes' labels, and edits to a segmentation count."""

from __future__ import annotations

import numpy as np
import pytest

from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation.indices import INDICES, clinical_indices
from slicer_helpers import ACDC_ED, ACDC_ES, needs_acdc, new_scene

from CoopSegMRML import CoopSegSceneLogic  # noqa: E402  (slicer_helpers puts it on the path)
from CoopSegMRML.headless import load_volume
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.tables import table_rows
from CoopSegMRML.volumes import ijk_to_ras

pytestmark = needs_acdc


@pytest.fixture(scope="module")
def phases(bundle):
    scene = new_scene()
    logic = CoopSegSceneLogic(scene)
    ed, es = load_volume(scene, ACDC_ED), load_volume(scene, ACDC_ES)
    results = {volume.GetName(): logic.segment(volume, model=str(bundle), device="cpu") for volume in (ed, es)}
    return scene, logic, ed, es, results


def expected_indices(ed, es, results):
    return clinical_indices(labels_from_segmentation(results[ed.GetName()].refined, ed), ijk_to_ras(ed),
                            labels_from_segmentation(results[es.GetName()].refined, es), ijk_to_ras(es))


def test_index_table_holds_coopseglib_clinical_indices(phases):
    _, logic, ed, es, results = phases
    table, indices = logic.clinical_indices(ed, es)
    expected = expected_indices(ed, es, results)
    np.testing.assert_array_equal(list(indices.as_dict().values()), list(expected.as_dict().values()))
    rows = table_rows(table)
    assert [row[0] for row in rows] == [description for description, _ in INDICES.values()]
    assert [row[2] for row in rows] == [unit for _, unit in INDICES.values()]
    np.testing.assert_allclose([row[1] for row in rows], list(expected.as_dict().values()), equal_nan=True)
    assert expected.lv_edv > 0 and expected.lv_mass > 0  # real numbers, not an empty segmentation
    assert table.GetName() == "patient001_frame01 / patient001_frame12 clinical indices"


def test_edits_to_a_segmentation_change_the_indices(phases):
    _, logic, ed, es, results = phases
    segmentation = results[es.GetName()].refined.GetSegmentation()
    before = logic.clinical_indices(ed, es)[1]
    segmentation.RemoveSegment("LV_cavity")  # as if the user erased the ES LV cavity in the Segment Editor
    table, after = logic.clinical_indices(ed, es)
    assert after.lv_esv == 0.0 and after.lv_ef == pytest.approx(100.0)
    assert after.lv_edv == before.lv_edv and after.rv_esv == before.rv_esv
    assert table_rows(table)[1][1] == 0.0


def test_indices_need_both_phases_segmented(phases):
    scene, logic, ed, _, _ = phases
    other = load_volume(scene, ACDC_ES, "not segmented")
    with pytest.raises(CoopSegError, match="segment the ES volume 'not segmented' first"):
        logic.clinical_indices(ed, other)
    with pytest.raises(CoopSegError, match="same volume"):
        logic.clinical_indices(ed, ed)
