"""Data layer: readers, geometry, preprocessing, training slices, augmentation, corruption, synthetic phantom.

Importing this package needs torch and numpy only; nibabel and TorchIO are imported where files are read or
TorchIO transforms run.
"""

from CoopSegLib.data.augmentation import AugmentationPolicy, SliceAugmenter
from CoopSegLib.data.case import Case, make_case
from CoopSegLib.data.geometry import MODEL_SIZE, MODEL_SPACING, SliceMapping, Volume, stack_axis, to_model_slices
from CoopSegLib.data.labels import ACDC_TO_CANONICAL, MNMS_TO_CANONICAL, remap_labels
from CoopSegLib.data.normalisation import minmax_per_slice, normalise_percentiles
from CoopSegLib.data.phantom import phantom_cases, phantom_subject
from CoopSegLib.data.preprocess import PreparedVolume, prepare_case, prepare_image
from CoopSegLib.data.slices import SliceDataset, VolumeCache, paired_collate, seed_worker
from CoopSegLib.data.splits import ACDC_TEST_SUBJECTS, Split, all_subjects_split, paper_split

__all__ = [
    "ACDC_TEST_SUBJECTS", "ACDC_TO_CANONICAL", "AugmentationPolicy", "Case", "MNMS_TO_CANONICAL", "MODEL_SIZE",
    "MODEL_SPACING", "PreparedVolume", "SliceAugmenter", "SliceDataset", "SliceMapping", "Split", "Volume",
    "VolumeCache", "all_subjects_split", "make_case", "minmax_per_slice", "normalise_percentiles", "paired_collate",
    "paper_split", "phantom_cases", "phantom_subject", "prepare_case", "prepare_image", "remap_labels",
    "seed_worker", "stack_axis", "to_model_slices",
]
