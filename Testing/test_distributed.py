"""The cooperative step under DistributedDataParallel: two CPU processes with the gloo backend."""

import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from CoopSegLib.cooperative import CooperativeConfig, CooperativeTrainer

from toy_slices import SMALL_WIDTHS, ring_slices


def train_two_steps(rank: int, world_size: int, init_file: str, results: str) -> None:
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world_size)
    try:
        torch.manual_seed(100 + rank)  # different initial weights: DDP must broadcast rank 0's
        trainer = CooperativeTrainer(CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS), precision="fp32")
        trainer.wrap_distributed()
        images, labels = ring_slices(4, 32, seed=rank)  # each rank sees its own shard
        for _ in range(2):
            losses = trainer.train_step(images, labels)
        flat = torch.cat([p.detach().flatten() for p in trainer.model.parameters()])
        gathered = [torch.zeros_like(flat) for _ in range(world_size)]
        dist.all_gather(gathered, flat)
        if rank == 0:
            torch.save({"params": gathered, "loss": losses["total"]}, results)
    finally:
        dist.destroy_process_group()


def test_two_gloo_processes_keep_identical_weights(tmp_path):
    results = tmp_path / "results.pt"
    mp.spawn(train_two_steps, args=(2, str(tmp_path / "init"), str(results)), nprocs=2, join=True)
    outcome = torch.load(results, weights_only=True)
    rank0, rank1 = outcome["params"]
    assert torch.equal(rank0, rank1)  # gradients were averaged: both ranks took the same Adam steps
    torch.manual_seed(100)
    initial = torch.cat([p.detach().flatten() for p in CooperativeTrainer(
        CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS), precision="fp32").model.parameters()])
    assert not torch.equal(rank0, initial) and torch.isfinite(torch.tensor(outcome["loss"]))
