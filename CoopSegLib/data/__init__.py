"""Data layer: readers, geometry, preprocessing, training slices, augmentation, corruption, synthetic phantom.

Importing this package needs torch and numpy only; nibabel and TorchIO are imported where files are read or
TorchIO transforms run. Its names load on first use (``CoopSegLib.lazy``): inference, which takes geometry,
preprocessing and filters, never loads augmentation or the training slices.
"""

from CoopSegLib.lazy import lazy_names

_HOMES = {
    "AugmentationPolicy": "CoopSegLib.data.augmentation",
    "SliceAugmenter": "CoopSegLib.data.augmentation",
    "Case": "CoopSegLib.data.case",
    "make_case": "CoopSegLib.data.case",
    "MODEL_SIZE": "CoopSegLib.data.geometry",
    "MODEL_SPACING": "CoopSegLib.data.geometry",
    "SliceMapping": "CoopSegLib.data.geometry",
    "Volume": "CoopSegLib.data.geometry",
    "stack_axis": "CoopSegLib.data.geometry",
    "to_model_slices": "CoopSegLib.data.geometry",
    "ACDC_TO_CANONICAL": "CoopSegLib.data.labels",
    "MNMS_TO_CANONICAL": "CoopSegLib.data.labels",
    "remap_labels": "CoopSegLib.data.labels",
    "minmax_per_slice": "CoopSegLib.data.normalisation",
    "normalise_percentiles": "CoopSegLib.data.normalisation",
    "phantom_cases": "CoopSegLib.data.phantom",
    "phantom_subject": "CoopSegLib.data.phantom",
    "PreparedVolume": "CoopSegLib.data.preprocess",
    "prepare_case": "CoopSegLib.data.preprocess",
    "prepare_image": "CoopSegLib.data.preprocess",
    "SliceDataset": "CoopSegLib.data.slices",
    "VolumeCache": "CoopSegLib.data.slices",
    "paired_collate": "CoopSegLib.data.slices",
    "seed_worker": "CoopSegLib.data.slices",
    "ACDC_TEST_SUBJECTS": "CoopSegLib.data.splits",
    "Split": "CoopSegLib.data.splits",
    "all_subjects_split": "CoopSegLib.data.splits",
    "paper_split": "CoopSegLib.data.splits",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
