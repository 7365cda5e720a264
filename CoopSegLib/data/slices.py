"""2D training slices from ED/ES volumes: an in-memory cache of preprocessed volumes and a torch Dataset.

Each item is ``dict(image=(1, H, W) float32 in [0, 1], label=(H, W) int64, key=str, slice=int)``; with
``paired=True`` it also carries ``image_clean`` / ``label_clean`` (the same slice without augmentation) and
``paired_collate`` turns a batch of N items into the paper's batch of 2N: N augmented slices followed by the same N
un-augmented.

Randomness (augmentation, choice of replacement slices) comes from a generator seeded by (seed, epoch, index), so
an item is the same whichever DataLoader worker produces it and however many workers there are; call
``set_epoch`` at the start of each epoch (as with DistributedSampler) to get new draws.
"""

from __future__ import annotations

import random
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np
import torch
from torch.utils.data import Dataset

from CoopSegLib.data.augmentation import SliceAugmenter
from CoopSegLib.data.case import Case
from CoopSegLib.data.crops import heart_crop
from CoopSegLib.data.geometry import MODEL_SIZE, MODEL_SPACING
from CoopSegLib.data.normalisation import minmax_per_slice
from CoopSegLib.data.preprocess import PreparedVolume, prepare_case
from CoopSegLib.errors import CoopSegError

# What to do with slices whose label map is empty (above the base, below the apex).
EMPTY_SLICE_POLICIES = (
    "replace",  # the authors' choice: use a labelled slice of the same volume instead (drawn per item and epoch)
    "drop",  # leave them out of the dataset
    "keep",  # train on them as all-background slices
)


class VolumeCache:
    """Preprocessed volumes kept in memory, keyed by case and model grid, so each is prepared once.

    Share one cache between datasets (e.g. training and validation views of the same cases) to avoid repeats.
    """

    def __init__(self) -> None:
        self._volumes: Dict[Tuple[str, str, float, int], PreparedVolume] = {}

    def get(self, case: Case, spacing: float = MODEL_SPACING, size: int = MODEL_SIZE) -> PreparedVolume:
        key = (case.source, case.key, float(spacing), int(size))
        if key not in self._volumes:
            if case.label is None:
                raise CoopSegError(f"{case.source or case.key}: training slices need a label map")
            self._volumes[key] = prepare_case(case, spacing, size)
        return self._volumes[key]

    def __len__(self) -> int:
        return len(self._volumes)

    @property
    def nbytes(self) -> int:
        return sum(v.image.nbytes + (v.label.nbytes if v.label is not None else 0) for v in self._volumes.values())


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """A torch generator seeded from (seed, epoch, index) through numpy's SeedSequence (well mixed, no overlap)."""
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


class SliceDataset(Dataset):
    """Short-axis slices of labelled cases on the model grid, optionally augmented.

    ``empty_slices``: one of EMPTY_SLICE_POLICIES. With "replace", a volume without any labelled slice keeps its
    empty slices (there is nothing to replace them with). ``crop``: serve ``crop`` x ``crop`` windows that hold the
    labelled heart (data/crops.py), each slice of a pair its own window, after the slice's min-max.
    """

    def __init__(
        self,
        cases: Sequence[Case],
        spacing: float = MODEL_SPACING,
        size: int = MODEL_SIZE,
        augmenter: Optional[SliceAugmenter] = None,
        empty_slices: str = "replace",
        seed: int = 0,
        paired: bool = False,
        cache: Optional[VolumeCache] = None,
        crop: Optional[int] = None,
    ) -> None:
        if empty_slices not in EMPTY_SLICE_POLICIES:
            raise CoopSegError(f"unknown empty-slice policy {empty_slices!r}; "
                               f"use one of {', '.join(EMPTY_SLICE_POLICIES)}")
        if not cases:
            raise CoopSegError("no cases to make training slices from")
        self.cache = cache if cache is not None else VolumeCache()
        self.volumes: List[PreparedVolume] = [self.cache.get(case, spacing, size) for case in cases]
        self.labelled: List[np.ndarray] = [volume.labelled_slices() for volume in self.volumes]
        self.index: List[Tuple[int, int]] = []
        for v, volume in enumerate(self.volumes):
            for s in range(volume.image.shape[0]):
                if empty_slices == "drop" and s not in self.labelled[v]:
                    continue
                self.index.append((v, s))
        if not self.index:
            raise CoopSegError("no labelled slices in the given cases")
        self.augmenter = augmenter
        self.empty_slices = empty_slices
        self.seed = int(seed)
        self.epoch = 0
        self.paired = paired
        if crop is not None and not 0 < crop <= size:
            raise CoopSegError(f"crop must lie between 1 and the slice size {size}, not {crop}")
        self.crop = crop

    def set_epoch(self, epoch: int) -> None:
        """Select the random draws of this epoch (call before iterating, in the main process)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.index)

    def source_slice(self, index: int, generator: Optional[torch.Generator] = None) -> Tuple[int, int]:
        """(volume, slice) actually served for ``index``, after the empty-slice policy."""
        v, s = self.index[index]
        labelled = self.labelled[v]
        if self.empty_slices == "replace" and len(labelled) and s not in labelled:
            generator = generator if generator is not None else item_generator(self.seed, self.epoch, index)
            s = int(labelled[int(torch.randint(0, len(labelled), (1,), generator=generator))])
        return v, s

    def __getitem__(self, index: int) -> Dict[str, object]:
        if not 0 <= index < len(self.index):
            raise IndexError(index)
        generator = item_generator(self.seed, self.epoch, index)
        v, s = self.source_slice(index, generator)
        volume = self.volumes[v]
        image = torch.from_numpy(volume.image[s : s + 1].copy())  # (1, H, W)
        label = torch.from_numpy(volume.label[s : s + 1].astype(np.int64))
        clean_image = minmax_per_slice(image)
        item: Dict[str, object] = {"key": volume.key, "slice": s}
        if self.augmenter is not None:
            aug_image, aug_label = self.augmenter(image, label, generator)
        else:
            aug_image, aug_label = clean_image, label
        if self.crop is not None:
            aug_image, aug_label = heart_crop(aug_image, aug_label, self.crop, generator)
            if self.paired:
                clean_image, label = heart_crop(clean_image, label, self.crop, generator)
        item["image"] = aug_image.float()
        item["label"] = aug_label[0]
        if self.paired:
            item["image_clean"] = clean_image.float()
            item["label_clean"] = label[0]
        return item


def paired_collate(items: Sequence[Dict[str, object]]) -> Dict[str, object]:
    """Batch N paired items into 2N slices: the N augmented first, then the same N un-augmented (the paper's 10+10).

    Use with ``SliceDataset(..., paired=True)`` and ``DataLoader(batch_size=10, collate_fn=paired_collate)``.
    """
    if not items or "image_clean" not in items[0]:
        raise CoopSegError("paired_collate needs items from SliceDataset(paired=True)")
    images = [item["image"] for item in items] + [item["image_clean"] for item in items]
    labels = [item["label"] for item in items] + [item["label_clean"] for item in items]
    keys = [item["key"] for item in items]
    slices = [item["slice"] for item in items]
    return {
        "image": torch.stack(images),  # type: ignore[arg-type]
        "label": torch.stack(labels),  # type: ignore[arg-type]
        "key": keys + keys,
        "slice": torch.tensor(slices + slices),
        "augmented": torch.tensor([True] * len(items) + [False] * len(items)),
    }


def seed_worker(worker_id: int) -> None:
    """DataLoader ``worker_init_fn``: seed Python's and numpy's generators from the worker's torch seed.

    The dataset itself does not need it (it seeds per item), but code added later that calls ``random`` or
    ``np.random`` inside a worker then differs between workers and repeats with the DataLoader's generator.
    """
    seed = torch.initial_seed() % 2**32
    random.seed(seed)
    np.random.seed(seed)
