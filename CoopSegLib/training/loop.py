"""One training run end to end: data, trainer, steps, validation, checkpoints, model bundle and report.

A run lives in one folder (``runs/<name>-<time>/`` by default):

    config.yaml        the resolved settings (``--resume`` reads them back)
    losses.csv         loss terms by the paper's names, every log.every steps
    validation.csv     3D Dice per structure for FTN and FTN+STN at each validation
    tensorboard/       the same scalars, plus pictures of training batches and their hard examples
    checkpoints/       last.pt (resume point) and best.pt (best FTN+STN Dice)
    model.coopseg/     the model bundle (best weights when there was validation, else the last)
    report.md          what was trained, on what, how long, and how well

Under torchrun every process trains on its own share of each epoch; rank 0 alone writes any of the above.
"""

from __future__ import annotations

import math
import random
import socket
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from CoopSegLib.bundle import load_bundle, save_bundle
from CoopSegLib.cooperative.model import CooperativeModel
from CoopSegLib.cooperative.trainer import CooperativeTrainer
from CoopSegLib.data.slices import paired_collate
from CoopSegLib.errors import CoopSegError
from CoopSegLib.runtime import resolve_device, uses_bf16
from CoopSegLib.training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from CoopSegLib.training.distributed import ProcessGroup
from CoopSegLib.training.logbook import Logbook, check_tensorboard_available
from CoopSegLib.training.order import EpochItems, TrainingOrder, worker_generator
from CoopSegLib.training.progress import Progress
from CoopSegLib.training.report import write_report
from CoopSegLib.training.run_data import RunData, load_run_data
from CoopSegLib.training.schedule import learning_rate_at
from CoopSegLib.training.settings import TrainingSettings
from CoopSegLib.training.stop_request import StopRequest, ignore_interrupts_in_worker
from CoopSegLib.training.validation import ValidationResult, validate

CONFIG_FILE = "config.yaml"
LAST_CHECKPOINT = Path("checkpoints") / "last.pt"
BEST_CHECKPOINT = Path("checkpoints") / "best.pt"
BUNDLE_NAME = "model.coopseg"
PICTURE_SLICES = 4


@dataclass
class TrainingOutcome:
    run_dir: Path
    step: int
    total_steps: int
    interrupted: Optional[str]  # the signal that stopped the run, or None when it completed
    bundle: Optional[Path] = None
    best: Optional[ValidationResult] = None  # the validation with the best FTN+STN Dice, and its step
    best_step: Optional[int] = None
    samples_per_s: float = float("nan")


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def new_run_dir(settings: TrainingSettings) -> Path:
    """``<output_root>/<name>-<YYYYmmdd-HHMMSS>``, with a counter if that exists already: runs never overwrite."""
    root = Path(settings.output_root)
    stem = f"{settings.name}-{datetime.now():%Y%m%d-%H%M%S}"
    candidate, number = root / stem, 1
    while candidate.exists():
        number += 1
        candidate = root / f"{stem}-{number}"
    return candidate


def save_settings(settings: TrainingSettings, run_dir: Path) -> None:
    import yaml

    run_dir.mkdir(parents=True, exist_ok=True)
    text = f"# Resolved settings of this run; python Training/train.py --resume {run_dir} reads them.\n"
    (run_dir / CONFIG_FILE).write_text(text + yaml.safe_dump(settings.to_dict(), sort_keys=False))


def load_run_settings(run_dir: Path, overrides: List[str]) -> TrainingSettings:
    """The settings of an existing run (for ``--resume``), with overrides such as a longer train.steps."""
    if not (run_dir / CONFIG_FILE).is_file() or not (run_dir / LAST_CHECKPOINT).is_file():
        raise CoopSegError(f"{run_dir}: not a resumable run folder (needs {CONFIG_FILE} and {LAST_CHECKPOINT})")
    return TrainingSettings.from_yaml(run_dir / CONFIG_FILE, overrides)


def worker_count(settings: TrainingSettings, device: torch.device) -> int:
    workers = settings.train.workers
    if workers == "auto":
        return 4 if device.type == "cuda" else 0  # on CPU, workers would take cores from the step itself
    return int(workers)


def make_loader(data: RunData, order: TrainingOrder, settings: TrainingSettings, device: torch.device) -> DataLoader:
    workers = worker_count(settings, device)
    return DataLoader(
        EpochItems(data.train), batch_sampler=order,
        collate_fn=paired_collate if settings.train.paired else default_collate,
        num_workers=workers, pin_memory=device.type == "cuda",
        worker_init_fn=ignore_interrupts_in_worker if workers else None,
        generator=worker_generator(settings.train.seed), persistent_workers=workers > 0,
        prefetch_factor=4 if workers else None,
    )


def bundle_training_record(settings: TrainingSettings, data: RunData, outcome: TrainingOutcome,
                           elapsed_s: float, device: torch.device, world_size: int) -> dict:
    return {
        "run": settings.name,
        "data": {"format": settings.data.format, "root": settings.data.root, "frames": list(settings.data.frames),
                 "train_subjects": list(data.split.train), "validation_subjects": list(data.split.validation)},
        "steps": outcome.step,
        "weights_from_step": outcome.best_step if outcome.best_step is not None else outcome.step,
        "seed": settings.train.seed,
        "validation_dice": outcome.best.row() if outcome.best is not None else None,
        "device": str(device), "processes": world_size, "wall_time_s": round(elapsed_s, 1),
        # What a run's figures depend on beyond the seed (README, "Reproducible"): precision and thread count.
        "precision": "bf16" if uses_bf16(settings.train.precision, device) else "fp32",
        "threads": torch.get_num_threads(),
        "host": socket.gethostname(), "finished": f"{datetime.now():%Y-%m-%d %H:%M:%S}",
    }


def run_training(settings: TrainingSettings, run_dir: Optional[Path] = None, resume: bool = False,
                 say: Callable[[str], None] = print) -> TrainingOutcome:
    """Train as ``settings`` say. ``resume=True`` continues the run in ``run_dir`` from its last checkpoint."""
    group = ProcessGroup.from_environment()
    if run_dir is not None and not resume and Path(run_dir).exists() and any(Path(run_dir).iterdir()):
        raise CoopSegError(f"{run_dir}: already holds a run; continue it with --resume, or choose another folder")
    device = resolve_device(group.device(settings.train.device))
    if settings.log.tensorboard and group.is_main:
        check_tensorboard_available()
    data = load_run_data(settings, with_validation=group.is_main)  # every input problem surfaces here
    group.start(device)
    try:
        return _train(settings, data, group, device, run_dir, resume, say)
    finally:
        group.stop()


def _train(settings: TrainingSettings, data: RunData, group: ProcessGroup, device: torch.device,
           run_dir: Optional[Path], resume: bool, say: Callable[[str], None]) -> TrainingOutcome:
    main = group.is_main
    run_dir = Path(group.broadcast(str(run_dir if run_dir is not None else new_run_dir(settings))))
    train = settings.train
    seed_everything(train.seed)  # identical initial weights on every process (DDP also broadcasts rank 0's)
    trainer = CooperativeTrainer(settings.method.config(), device, train.precision, train.channels_last,
                                 train.compile, train.ema_decay)
    if train.init_from is not None and not resume:
        try:
            trainer.load_weights(load_bundle(train.init_from).model.state_dict())
        except RuntimeError as error:
            raise CoopSegError(f"train.init_from: {train.init_from} does not fit this run's networks "
                               f"({str(error).strip().splitlines()[0]})") from None
    if group.distributed:
        trainer.wrap_distributed()
    seed_everything(train.seed + 7919 * group.rank)  # each process its own noise and masks
    best, best_step, elapsed_before = None, None, 0.0
    if resume:
        state = load_checkpoint(run_dir / LAST_CHECKPOINT)
        if len(state["rng"]) != group.world_size:
            raise CoopSegError(f"{run_dir / LAST_CHECKPOINT}: written by {len(state['rng'])} process(es); resume "
                               f"with the same number (this run has {group.world_size})")
        trainer.load_state_dict(state["trainer"])
        restore_rng_state(state["rng"][group.rank])
        best_step, elapsed_before = state["best_step"], state["elapsed_s"]
        best = ValidationResult.from_row(state["best_dice"]) if state["best_dice"] is not None else None
    batches_per_epoch = TrainingOrder.epoch_batches(len(data.train), train.batch_size, group.world_size)
    total = train.steps if train.steps is not None else train.epochs * batches_per_epoch
    if trainer.step > total:
        raise CoopSegError(f"{run_dir}: already trained {trainer.step} steps, more than the {total} asked for; "
                           "pass a larger train.steps (or train.epochs) to continue")
    order = TrainingOrder(len(data.train), train.batch_size, train.seed, trainer.step, total, group.world_size,
                          group.rank)
    if main:
        save_settings(settings, run_dir)
        say(f"run folder: {run_dir}")
        say(f"data: {settings.data.format} {settings.data.root or ''}".rstrip()
            + f" | {len(data.split.train)} training subjects, {len(data.train)} slices "
            f"({order.batches_per_epoch} steps per epoch per process) | {len(data.validation)} validation volumes")
        processes = f" x {group.world_size} processes" if group.distributed else ""
        say(f"method: {settings.method.variant} | device {device}{processes}"
            f" | {'bf16' if trainer.bf16 else 'fp32'}{', channels_last' if trainer.channels_last else ''}"
            f" | steps {trainer.step} -> {total}")
    logbook = Logbook(run_dir, settings.log.tensorboard, trainer.step if resume else None) if main else None
    progress = Progress(total, trainer.step, settings.log.every, enabled=main)
    slices_per_step = train.batch_size * (2 if train.paired else 1) * group.world_size
    outcome = TrainingOutcome(run_dir, trainer.step, total, None)
    last_checkpoint_step = trainer.step if resume else None
    started = time.perf_counter()

    def checkpoint() -> None:
        nonlocal last_checkpoint_step
        rng = group.gather(capture_rng_state())  # collective: every process calls it at the same steps
        if main:
            save_checkpoint(run_dir / LAST_CHECKPOINT, {
                "trainer": trainer.state_dict(), "rng": rng, "best_step": best_step,
                "best_dice": best.row() if best is not None else None,
                "elapsed_s": elapsed_before + time.perf_counter() - started,
                "world_size": group.world_size,
                "settings": settings.to_dict(),
            })
        last_checkpoint_step = trainer.step

    def validation_due(step: int) -> bool:
        every = settings.validation.every
        return bool(data.validation) and (step == total or (every > 0 and step % every == 0))

    window: Dict[str, List[float]] = defaultdict(list)
    window_time, window_steps = 0.0, 0
    tick = time.perf_counter()
    try:
        with StopRequest() as stop:
            for batch in make_loader(data, order, settings, device):
                step = trainer.step + 1
                rate = learning_rate_at(step, total, trainer.config.learning_rate, train.schedule, train.warmup_steps,
                                        train.final_lr_fraction)
                trainer.set_learning_rate(rate)
                keep = main and settings.validation.images and settings.log.tensorboard and validation_due(step)
                losses = trainer.train_step(batch["image"], batch["label"], keep_examples=keep)
                if not all(math.isfinite(v) for v in losses.values()):
                    raise FloatingPointError(f"non-finite loss at step {step}: {losses}; lower the learning rate or "
                                             "check the data")
                for name, value in losses.items():
                    window[name].append(value)
                now = time.perf_counter()
                window_time, window_steps, tick = window_time + now - tick, window_steps + 1, now
                speed = slices_per_step * window_steps / window_time
                if step % settings.log.every == 0 or step == total:
                    means = group.mean([float(np.mean(v)) for v in window.values()], device)
                    if main:
                        logbook.losses(step, (step - 1) // order.batches_per_epoch, dict(zip(window, means)), speed,
                                       rate)
                    outcome.samples_per_s = speed
                    window, window_time, window_steps = defaultdict(list), 0.0, 0
                progress.update(step, losses["total"], speed)
                if main and validation_due(step):
                    result = validate(trainer, data.validation)
                    improved = best is None or result.score > best.score
                    if improved:
                        best, best_step = result, step
                        save_checkpoint(run_dir / BEST_CHECKPOINT, {"model": trainer.evaluation_model.state_dict(),
                                                                    "step": step, "score": result.score})
                    logbook.validation(step, (step - 1) // order.batches_per_epoch, result.row(), improved)
                    if keep:
                        logbook.pictures(step, pictures(trainer, batch, trainer.last_hard_examples))
                    progress.write(f"step {step}: Dice FTN {result.mean('ftn'):.3f}, FTN+STN {result.mean('stn'):.3f}"
                                   f"{' (best so far)' if improved else ''}")
                if step % settings.checkpoint.every == 0 or step == total:
                    checkpoint()
                if group.any(stop.requested is not None, device):
                    outcome.interrupted = stop.requested or "a signal on another process"
                    if last_checkpoint_step != step:
                        checkpoint()
                    break
                tick = time.perf_counter()
    finally:
        progress.close()
        if logbook is not None:
            logbook.close()
    outcome.step, outcome.best, outcome.best_step = trainer.step, best, best_step
    elapsed = elapsed_before + time.perf_counter() - started
    if outcome.interrupted or not main:
        return outcome
    model = trainer.evaluation_model
    if best_step is not None and (run_dir / BEST_CHECKPOINT).is_file():
        model = CooperativeModel(trainer.config)
        model.load_state_dict(load_checkpoint(run_dir / BEST_CHECKPOINT)["model"])
    preprocessing = {"spacing_mm": settings.data.spacing_mm, "size": settings.data.size,
                     "intensity": "2nd-98th percentile clip of the volume, min-max to [0, 1]"}
    record = bundle_training_record(settings, data, outcome, elapsed, device, group.world_size)
    outcome.bundle = save_bundle(run_dir / BUNDLE_NAME, model, preprocessing, record,
                                 storage=settings.checkpoint.bundle_storage, overwrite=True)
    write_report(run_dir / "report.md", settings, data, outcome, record)
    return outcome


def pictures(trainer: CooperativeTrainer, batch: dict, hard) -> Dict[str, torch.Tensor]:
    """Panels for TensorBoard: a few slices of the batch, their hard examples, and both stages' predictions."""
    n = PICTURE_SLICES
    images, labels = batch["image"][:n], batch["label"][:n]
    prediction = trainer.predict(images)
    panels = {"1_input": images, "2_ground_truth": labels, "5_FTN": prediction.initial.argmax(1),
              "6_FTN+STN": prediction.refined.argmax(1)}
    if hard is not None:
        panels["3_corrupted_image"] = hard.image[:n]
        panels["4_corrupted_segmentation"] = hard.logits[:n].argmax(1)
    return panels
