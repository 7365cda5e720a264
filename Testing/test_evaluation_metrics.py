"""Dice and HD95 through MONAI on constructed label maps with known answers, and the report tables."""

import csv
import io
import math

import numpy as np
import pytest

from CoopSegLib.errors import CoopSegError
from CoopSegLib.evaluation import ScoreRow, markdown_report, overlap_scores, rows_to_csv


def brute_force_hd95(a: np.ndarray, b: np.ndarray, spacing) -> float:
    """Symmetric 95th-percentile Hausdorff distance between two sets of thin (all-surface) voxels."""
    pa, pb = np.argwhere(a) * np.asarray(spacing), np.argwhere(b) * np.asarray(spacing)
    distances = np.linalg.norm(pa[:, None] - pb[None], axis=-1)
    return max(np.percentile(distances.min(axis=1), 95), np.percentile(distances.min(axis=0), 95))


def test_dice_equals_a_hand_count():
    reference = np.zeros((12, 10, 4), np.uint8)
    prediction = np.zeros_like(reference)
    reference[2:6, 2:5, 1] = 1  # 12 LV voxels
    prediction[3:6, 2:5, 1] = 1  # 9 voxels, all inside the reference
    prediction[0, 0, 0] = 1  # and one stray voxel: |P| = 10, |P & R| = 9
    reference[8:10, 0:5, 2:4] = 2  # 20 MYO voxels
    prediction[8:10, 0:5, 3] = 2  # 10, all inside
    reference[0:3, 7:9, 3] = 3  # 6 RV voxels
    prediction[0:3, 8:10, 3] = 3  # 6 voxels, 3 shared
    scores = overlap_scores(prediction, reference, (1.0, 1.0, 1.0))
    assert scores[1].dice == pytest.approx(2 * 9 / (10 + 12))
    assert scores[2].dice == pytest.approx(2 * 10 / (10 + 20))
    assert scores[3].dice == pytest.approx(2 * 3 / (6 + 6))


def test_hd95_uses_the_voxel_spacing_of_each_axis():
    reference = np.zeros((30, 30, 6), np.uint8)
    prediction = np.zeros_like(reference)
    reference[2:28, 5, 2] = 1  # a thin line ...
    prediction[2:28, 7, 2] = 1  # ... and the same line two voxels over along y
    reference[10, 20, 1] = 3  # single voxels: HD95 is their distance
    prediction[13, 20, 4] = 3  # 3 voxels along x and 3 slices along z
    spacing = (1.5, 0.75, 10.0)
    scores = overlap_scores(prediction, reference, spacing)
    assert scores[1].hd95 == pytest.approx(2 * 0.75)
    assert scores[3].hd95 == pytest.approx(math.hypot(3 * 1.5, 3 * 10.0))
    assert scores[3].dice == 0.0


def test_hd95_ignores_the_worst_five_percent():
    reference = np.zeros((60, 8, 3), np.uint8)
    reference[0:50, 2, 1] = 1
    prediction = reference.copy()
    prediction[55:58, 6, 1] = 1  # 3 of 53 predicted voxels lie far away: the maximum, not the 95th percentile
    spacing = (1.0, 2.0, 8.0)
    scores = overlap_scores(prediction, reference, spacing)
    expected = brute_force_hd95(prediction == 1, reference == 1, spacing)
    assert scores[1].hd95 == pytest.approx(expected, rel=1e-4)
    assert scores[1].hd95 < np.hypot(6.0, 8.0)  # well below the plain Hausdorff distance


def test_empty_structures_follow_the_documented_conventions():
    reference = np.zeros((8, 8, 3), np.uint8)
    prediction = np.zeros_like(reference)
    reference[1:3, 1:3, 1] = 1  # LV only in the reference
    prediction[5:7, 5:7, 1] = 2  # MYO only in the prediction; RV in neither
    scores = overlap_scores(prediction, reference, (1.0, 1.0, 1.0))
    assert scores[1] == (0.0, math.inf) and scores[2] == (0.0, math.inf)
    assert math.isnan(scores[3].dice) and math.isnan(scores[3].hd95)


def test_grids_must_match():
    with pytest.raises(CoopSegError, match="same grid"):
        overlap_scores(np.zeros((4, 4, 2)), np.zeros((4, 4, 3)), (1.0, 1.0, 1.0))


def test_report_tables_average_like_table_1():
    rows = []
    for stage, base in (("FTN", 0.6), ("FTN+STN", 0.7)):
        for structure, offset in (("LV", 0.1), ("MYO", 0.0), ("RV", -0.1)):
            rows.append(ScoreRow("clean", "p1_ED", stage, structure, base + offset, 4.0))
            rows.append(ScoreRow("clean", "p1_ES", stage, structure, base + offset + 0.1, math.inf))
            rows.append(ScoreRow("spike", "p1_ES_spike_1", stage, structure, base - 0.2, 8.0))
    table = markdown_report(rows)
    assert "| stage | clean | RandSpike | AVG |" in table
    assert "| FTN | 0.6500 | 0.4000 | 0.5250 |" in table
    assert "| FTN+STN | 0.7500 | 0.5000 | 0.6250 |" in table
    assert "| clean | FTN | 2 | 0.7500 | 0.6500 | 0.5500 | 4.00 (1 inf) | 4.00 (1 inf) | 4.00 (1 inf) |" in table
    parsed = list(csv.DictReader(io.StringIO(rows_to_csv(rows))))
    assert len(parsed) == len(rows) and parsed[1]["hd95"] == "inf" and float(parsed[0]["dice"]) == 0.7
