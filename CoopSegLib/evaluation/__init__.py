"""Evaluation: Dice and HD95 with MONAI's metrics, the paper's test sets, report tables, clinical indices.

MONAI, nibabel and TorchIO are imported when a metric is computed, a file read or a corrupted set made.
"""

from CoopSegLib.evaluation.indices import ClinicalIndices, clinical_indices, compare_indices, voxel_volume_ml
from CoopSegLib.evaluation.metrics import OverlapScores, overlap_scores
from CoopSegLib.evaluation.report import ScoreRow, markdown_report, rows_to_csv
from CoopSegLib.evaluation.runner import evaluate_folders, evaluate_model
from CoopSegLib.evaluation.test_sets import DEFAULT_SETS, TEST_SETS, EvaluationCase, build_test_sets

__all__ = [
    "DEFAULT_SETS",
    "TEST_SETS",
    "ClinicalIndices",
    "EvaluationCase",
    "OverlapScores",
    "ScoreRow",
    "build_test_sets",
    "clinical_indices",
    "compare_indices",
    "evaluate_folders",
    "evaluate_model",
    "markdown_report",
    "overlap_scores",
    "rows_to_csv",
    "voxel_volume_ml",
]
