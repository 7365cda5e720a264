"""Slice dataset: items, empty-slice policies, caching, paired batches, determinism across DataLoader workers."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import DataLoader

from CoopSegLib.data.augmentation import SliceAugmenter
from CoopSegLib.data.phantom import phantom_cases
from CoopSegLib.data.slices import SliceDataset, VolumeCache, paired_collate, seed_worker
from CoopSegLib.errors import CoopSegError

SIZE = 96  # a smaller grid keeps these tests fast; the code path is the same as 192
SPACING = 2.8


@pytest.fixture(scope="module")
def cases():
    return phantom_cases(3, seed=30)


@pytest.fixture(scope="module")
def cache():
    return VolumeCache()


def make(cases, cache, **kwargs):
    return SliceDataset(cases, spacing=SPACING, size=SIZE, cache=cache, **kwargs)


def test_items_and_cache(cases, cache):
    dataset = make(cases, cache, empty_slices="keep")
    assert len(cache) == len(cases)
    assert len(dataset) == sum(case.image.shape[2] for case in cases)
    item = dataset[0]
    assert item["image"].shape == (1, SIZE, SIZE) and item["image"].dtype == torch.float32
    assert item["label"].shape == (SIZE, SIZE) and item["label"].dtype == torch.int64
    assert float(item["image"].min()) == 0.0 and float(item["image"].max()) == 1.0
    volume = cache.get(cases[0], SPACING, SIZE)
    assert make(cases, cache).volumes[0] is volume  # prepared once, shared
    assert cache.nbytes > 0


def test_empty_slice_policies(cases, cache):
    keep, drop, replace = (make(cases, cache, empty_slices=p) for p in ("keep", "drop", "replace"))
    labelled = sum(len(v.labelled_slices()) for v in keep.volumes)
    assert len(drop) == labelled < len(keep) == len(replace)
    empty_in_keep = sum(int(keep[i]["label"].max() == 0) for i in range(len(keep)))
    assert empty_in_keep == len(keep) - labelled
    assert all(int(replace[i]["label"].max()) > 0 for i in range(len(replace)))
    # A replaced slice comes from the same volume.
    for i, (v, _) in enumerate(replace.index):
        assert replace.source_slice(i)[0] == v
    with pytest.raises(CoopSegError, match="unknown empty-slice policy"):
        make(cases, cache, empty_slices="skip")


def test_augmented_items_are_deterministic_and_change_with_epoch(cases, cache):
    dataset = make(cases, cache, augmenter=SliceAugmenter(), seed=4)
    a, b = dataset[3], dataset[3]
    assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[3]["image"], a["image"])
    other = make(cases, cache, augmenter=SliceAugmenter(), seed=5)
    assert not torch.equal(other[3]["image"], a["image"])


def test_same_batches_with_and_without_workers(cases, cache):
    dataset = make(cases, cache, augmenter=SliceAugmenter(), seed=9, paired=True)

    def batches(workers):
        loader = DataLoader(dataset, batch_size=5, shuffle=True, num_workers=workers, collate_fn=paired_collate,
                            worker_init_fn=seed_worker, generator=torch.Generator().manual_seed(0))
        return [batch for _, batch in zip(range(3), loader)]

    serial, parallel = batches(0), batches(2)
    for a, b in zip(serial, parallel):
        assert torch.equal(a["image"], b["image"]) and torch.equal(a["label"], b["label"])


def test_paired_collate_is_augmented_then_the_same_clean(cases, cache):
    dataset = make(cases, cache, augmenter=SliceAugmenter(), paired=True, seed=2)
    items = [dataset[i] for i in range(10)]
    batch = paired_collate(items)
    assert batch["image"].shape == (20, 1, SIZE, SIZE) and batch["label"].shape == (20, SIZE, SIZE)
    assert batch["augmented"].tolist() == [True] * 10 + [False] * 10
    assert batch["key"][:10] == batch["key"][10:]
    plain = make(cases, cache, paired=False, seed=2)
    for i in range(10):
        assert torch.equal(batch["image"][10 + i], plain[i]["image"])  # clean half = the un-augmented item
        assert torch.equal(batch["label"][10 + i], plain[i]["label"])
    changed = [not torch.equal(batch["image"][i], batch["image"][10 + i]) for i in range(10)]
    assert all(changed)
    with pytest.raises(CoopSegError, match="paired=True"):
        paired_collate([plain[0]])


def test_unlabelled_case_is_refused(cases):
    unlabelled = phantom_cases(1, seed=99, frames=("ED",))[0]
    unlabelled.label = None
    with pytest.raises(CoopSegError, match="need a label map"):
        SliceDataset([unlabelled], spacing=SPACING, size=SIZE)
