"""The data of a training run: read the cases the settings name, split them by subject, build the datasets.

Everything here runs before the first training step, so a missing folder, an unreadable file or a split that
cannot be made stops the run with one message naming the file or key, before any weights are made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from CoopSegLib.data.augmentation import AugmentationPolicy, SliceAugmenter, augmentation_kind
from CoopSegLib.data.case import Case
from CoopSegLib.data.intensity_augmentation import IntensityAugmenter
from CoopSegLib.data.preprocess import PreparedVolume
from CoopSegLib.data.slices import SliceDataset, VolumeCache
from CoopSegLib.bundle import read_metadata, recorded_subjects
from CoopSegLib.data.splits import (Split, all_subjects_split, check_unseen, inherited_split, paper_split,
                                    stratified_split, subjects_of)
from CoopSegLib.errors import ConfigError, CoopSegError
from CoopSegLib.training.settings import TrainingSettings


@dataclass
class RunData:
    split: Split
    train: SliceDataset  # paired slices of the training subjects, augmented as the settings say
    validation: List[PreparedVolume]  # held-out volumes on the model grid (empty when n_validation is 0)


def make_split(settings: TrainingSettings, subjects: List[str]) -> Split:
    """The split ``data.split`` names, of the available ``subjects``; never validating on a subject that
    train.init_from's weights were trained on."""
    data, start = settings.data, settings.starting_bundle()
    seen: List[str] = []
    if start is not None:
        metadata = read_metadata(start)
        seen = recorded_subjects(metadata, "train")
    if data.split == "paper":
        split = paper_split(subjects, settings.split_seed, data.n_train, data.n_validation, data.pool_size)
    elif data.split == "stratified":
        from CoopSegLib.data.readers import read_acdc_groups

        split = stratified_split(read_acdc_groups(data.root, subjects), data.validation_per_group,
                                 settings.split_seed)
    elif data.split == "inherit":
        split = inherited_split(seen, recorded_subjects(metadata, "validation"), subjects,
                                f"train.init_from {start}")
    else:
        split = all_subjects_split(subjects, data.n_validation, settings.split_seed)
    if start is not None:
        check_unseen(split.validation, seen, f"train.init_from {start}",
                     " (data.split: inherit keeps the split those weights were trained with)")
    return split


def read_cases(settings: TrainingSettings, subjects: Optional[List[str]] = None) -> List[Case]:
    """Cases of the configured source (all subjects, or just ``subjects`` where the reader can select)."""
    data = settings.data
    frames = tuple(data.frames)
    if data.format == "phantom":
        from CoopSegLib.data.phantom import phantom_cases

        return phantom_cases(data.phantom_subjects, data.phantom_seed, frames)
    from CoopSegLib.data import readers

    if data.format == "acdc":
        return readers.read_acdc(data.root, subjects, frames)
    if data.format == "packed":
        return readers.read_packed(data.root, subjects, frames)
    if data.format == "mnms":
        return readers.read_mnms(data.root, subjects=subjects, frames=frames)
    if data.format in ("nnunet", "pairs"):  # files of any coding: data.label_codes, named or detected
        from CoopSegLib.training.label_codes import read_with_codes

        if data.format == "nnunet":
            return read_with_codes(settings, lambda codes: readers.read_nnunet(data.root, codes),
                                   readers.pairs.nnunet_label_map(data.root))
        return read_with_codes(settings, lambda codes: readers.read_pairs_csv(data.root, codes))
    raise ConfigError(f"unknown data.format {data.format!r}")


def load_run_data(settings: TrainingSettings, with_validation: bool = True) -> RunData:
    """Read, split and prepare. ``with_validation=False`` skips preparing validation volumes (non-zero ranks)."""
    split, cases = split_cases(settings, ("train", "validation"))
    train_cases = split.select(cases, "train")
    if not train_cases:
        raise CoopSegError(f"{settings.data.root or 'phantom'}: no training cases after the split")
    data = settings.data
    cache = VolumeCache()
    kind = augmentation_kind(data.augmentation)
    augmenter = None if kind == "none" else SliceAugmenter(
        AugmentationPolicy(spacing=data.spacing_mm), data.augmentation_backend,
        IntensityAugmenter() if kind == "strong" else None)
    dataset = SliceDataset(train_cases, data.spacing_mm, data.size, augmenter, data.empty_slices,
                           seed=settings.train.seed, paired=settings.train.paired, cache=cache, crop=data.crop)
    validation = []
    if with_validation:
        validation = [cache.get(case, data.spacing_mm, data.size) for case in split.select(cases, "validation")]
    return RunData(split, dataset, validation)


def load_validation_data(settings: TrainingSettings) -> tuple:
    """(split, prepared validation volumes) of a run, reading only its validation subjects where the reader can
    select (ACDC, packed): for scoring a run's checkpoints again without its training data."""
    split, cases = split_cases(settings, ("validation",))
    cache = VolumeCache()
    data = settings.data
    return split, [cache.get(case, data.spacing_mm, data.size) for case in split.select(cases, "validation")]


def split_cases(settings: TrainingSettings, parts: tuple) -> tuple:
    """(split, labelled cases): the split of the configured source and its cases, only those of the split's
    ``parts`` ("train", "validation") where the reader can select (ACDC, packed: 10 + 5 subjects read, not 80)."""
    data = settings.data
    if data.format in ("acdc", "packed"):
        from CoopSegLib.data.readers import list_acdc_subjects, list_packed_subjects

        listing = list_acdc_subjects if data.format == "acdc" else list_packed_subjects
        split = make_split(settings, listing(data.root))
        cases = read_cases(settings, [s for part in parts for s in getattr(split, part)])
    else:
        cases = read_cases(settings)
        split = make_split(settings, subjects_of(cases))
    unlabelled = [case.source or case.key for case in cases if case.label is None]
    if unlabelled:
        raise CoopSegError(f"{unlabelled[0]}: training and validation need a label map for every image")
    return split, cases
