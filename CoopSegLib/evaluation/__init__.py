"""Evaluation: Dice and HD95 with MONAI's metrics, the paper's test sets, report tables, clinical indices.

MONAI, nibabel and TorchIO are imported when a metric is computed, a file read or a corrupted set made.
"""

from CoopSegLib.lazy import lazy_names

# Names load on first use (``CoopSegLib.lazy``): the Slicer module's clinical indices (numpy only) do not import
# the runner, and through it torch and the inference package.
_HOMES = {
    "ClinicalIndices": "CoopSegLib.evaluation.indices",
    "clinical_indices": "CoopSegLib.evaluation.indices",
    "compare_indices": "CoopSegLib.evaluation.indices",
    "voxel_volume_ml": "CoopSegLib.evaluation.indices",
    "OverlapScores": "CoopSegLib.evaluation.metrics",
    "overlap_scores": "CoopSegLib.evaluation.metrics",
    "ScoreRow": "CoopSegLib.evaluation.report",
    "markdown_report": "CoopSegLib.evaluation.report",
    "rows_to_csv": "CoopSegLib.evaluation.report",
    "evaluate_folders": "CoopSegLib.evaluation.runner",
    "evaluate_model": "CoopSegLib.evaluation.runner",
    "DEFAULT_SETS": "CoopSegLib.evaluation.test_sets",
    "TEST_SETS": "CoopSegLib.evaluation.test_sets",
    "EvaluationCase": "CoopSegLib.evaluation.test_sets",
    "build_test_sets": "CoopSegLib.evaluation.test_sets",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
