"""The order in which one process sees training slices: a pure function of (seed, step), so resuming is exact.

Each epoch is DistributedSampler's shuffle for that epoch (the same permutation on every process, each taking its
own share), cut into whole batches. Step ``s`` reads batch ``s % batches_per_epoch`` of epoch
``s // batches_per_epoch``; starting at any step needs no saved sampler state. Items are requested as
(epoch, index) pairs so that a DataLoader's persistent workers draw each item's augmentation for the right epoch.
"""

from __future__ import annotations

from typing import Iterator, List, Tuple

import torch
from torch.utils.data import Dataset, DistributedSampler, Sampler

from CoopSegLib.data.slices import SliceDataset
from CoopSegLib.errors import CoopSegError


class TrainingOrder(Sampler):
    """Batch sampler over (epoch, index) pairs for steps ``start_step`` to ``total_steps`` of one process."""

    def __init__(self, dataset_size: int, batch_size: int, seed: int, start_step: int, total_steps: int,
                 world_size: int = 1, rank: int = 0) -> None:
        self.dataset_size, self.batch_size, self.seed = dataset_size, batch_size, seed
        self.world_size, self.rank = world_size, rank
        self.start_step, self.total_steps = start_step, total_steps
        self.batches_per_epoch = self.epoch_batches(dataset_size, batch_size, world_size)

    @staticmethod
    def epoch_batches(dataset_size: int, batch_size: int, world_size: int = 1) -> int:
        """Whole batches one process reads per epoch (its share of the slices, the remainder left out)."""
        per_process = dataset_size // world_size
        if per_process < batch_size:
            raise CoopSegError(
                f"train.batch_size {batch_size} is larger than the {per_process} training slices each of the "
                f"{world_size} process(es) gets; lower train.batch_size or add training subjects")
        return per_process // batch_size

    def epoch_indices(self, epoch: int) -> List[int]:
        sampler = DistributedSampler(range(self.dataset_size), num_replicas=self.world_size, rank=self.rank,
                                     shuffle=True, seed=self.seed, drop_last=True)
        sampler.set_epoch(epoch)
        return list(sampler)[: self.batches_per_epoch * self.batch_size]

    def batch(self, step: int) -> List[Tuple[int, int]]:
        """The (epoch, index) pairs read at ``step`` (0-based)."""
        epoch, position = divmod(step, self.batches_per_epoch)
        indices = self.epoch_indices(epoch)[position * self.batch_size:(position + 1) * self.batch_size]
        return [(epoch, index) for index in indices]

    def __iter__(self) -> Iterator[List[Tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield self.batch(step)  # one shuffle of a few thousand indices per step: negligible next to a step

    def __len__(self) -> int:
        return max(0, self.total_steps - self.start_step)


class EpochItems(Dataset):
    """A SliceDataset addressed by (epoch, index), so each item's random draws follow its epoch in any worker."""

    def __init__(self, dataset: SliceDataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: Tuple[int, int]) -> dict:
        epoch, index = key
        self.dataset.set_epoch(epoch)
        return self.dataset[index]


def worker_generator(seed: int) -> torch.Generator:
    """The DataLoader's own generator: its worker seeds then never consume (or depend on) the global RNG."""
    return torch.Generator().manual_seed(seed)
