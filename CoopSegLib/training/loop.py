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
from datetime import datetime
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import numpy as np
import torch
from torch.utils.data import DataLoader, default_collate

from CoopSegLib.bundle import load_bundle, save_bundle
from CoopSegLib.cooperative.trainer import CooperativeTrainer
from CoopSegLib.data.slices import paired_collate
from CoopSegLib.data.splits import check_unseen
from CoopSegLib.errors import CoopSegError
from CoopSegLib.networks import CoopSegModel
from CoopSegLib.inference.slice_predictor import SlicePredictor
from CoopSegLib.runtime import resolve_device, uses_bf16
from CoopSegLib.training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from CoopSegLib.training.distributed import ProcessGroup
from CoopSegLib.training.logbook import Logbook, check_tensorboard_available
from CoopSegLib.training.order import EpochItems, TrainingOrder, worker_generator
from CoopSegLib.training.outcome import TrainingOutcome
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
        return TrainingRun(settings, data, group, device, run_dir, say).run(resume)
    finally:
        group.stop()


class TrainingRun:
    """One process's part of a training run, in methods that read like the loop: set up, resume, start, step,
    validate, checkpoint, finish.

    Every process calls the collectives (``group.gather``, ``mean``, ``any``) at the same steps; rank 0 alone
    validates and writes files. ``run_training`` builds one and calls ``run``.
    """

    def __init__(self, settings: TrainingSettings, data: RunData, group: ProcessGroup, device: torch.device,
                 run_dir: Optional[Path], say: Callable[[str], None]):
        self.settings, self.data, self.group, self.device, self.say = settings, data, group, device, say
        self.main = group.is_main
        self.run_dir = Path(group.broadcast(str(run_dir if run_dir is not None else new_run_dir(settings))))
        self.best: Optional[ValidationResult] = None  # the validation with the best FTN+STN Dice so far
        self.best_step: Optional[int] = None
        self.elapsed_before = 0.0  # wall time of the run before this process resumed it
        self.last_checkpoint_step: Optional[int] = None
        # Set by set_up (the trainer) and start (the step plan and its bookkeeping), before the first step.
        self.trainer: Optional[CooperativeTrainer] = None
        self.total = 0  # steps planned
        self.order: Optional[TrainingOrder] = None
        self.logbook: Optional[Logbook] = None  # rank 0 only
        self.progress: Optional[Progress] = None
        self.slices_per_step = 0
        self.outcome: Optional[TrainingOutcome] = None
        self.started = self.tick = 0.0  # perf_counter at the start, and at the end of the last step
        self.window: Dict[str, List[float]] = defaultdict(list)  # loss values since the last log line
        self.window_time, self.window_steps = 0.0, 0

    def run(self, resume: bool) -> TrainingOutcome:
        self.set_up(resume)
        if resume:
            self.resume()
        self.start(resume)
        try:
            with StopRequest() as stop:
                for batch in make_loader(self.data, self.order, self.settings, self.device):
                    step, keep = self.step(batch)
                    if self.main and self.validation_due(step):
                        self.validate(step, batch, keep)
                    if step % self.settings.checkpoint.every == 0 or step == self.total:
                        self.checkpoint()
                    if self.group.any(stop.requested is not None, self.device):
                        self.outcome.interrupted = stop.requested or "a signal on another process"
                        if self.last_checkpoint_step != step:
                            self.checkpoint()
                        break
                    self.tick = time.perf_counter()
        finally:
            self.progress.close()
            if self.logbook is not None:
                self.logbook.close()
        return self.finish()

    def set_up(self, resume: bool) -> None:
        """The trainer, with identical initial weights on every process (DDP also broadcasts rank 0's)."""
        train = self.settings.train
        seed_everything(train.seed)
        self.trainer = CooperativeTrainer(self.settings.method.config(), self.device, train.precision,
                                          train.channels_last, train.compile, train.ema_decay,
                                          train.ema_warmup)
        if train.init_from is not None and not resume:
            try:
                self.trainer.load_weights(load_bundle(self.settings.starting_bundle()).model.state_dict())
            except RuntimeError as error:
                raise CoopSegError(f"train.init_from: {train.init_from} does not fit this run's networks "
                                   f"({str(error).strip().splitlines()[0]})") from None
        if self.group.distributed:
            self.trainer.wrap_distributed()
        seed_everything(train.seed + 7919 * self.group.rank)  # each process its own noise and masks

    def resume(self) -> None:
        """The trainer, this process's random states and the best score so far, from the last checkpoint."""
        state = load_checkpoint(self.run_dir / LAST_CHECKPOINT)
        if len(state["rng"]) != self.group.world_size:
            raise CoopSegError(f"{self.run_dir / LAST_CHECKPOINT}: written by {len(state['rng'])} process(es); "
                               f"resume with the same number (this run has {self.group.world_size})")
        if "split" in state:  # checkpoints before the split was recorded hold none to check
            check_unseen(self.data.split.validation, state["split"]["train"], str(self.run_dir / LAST_CHECKPOINT))
        self.trainer.load_state_dict(state["trainer"])
        restore_rng_state(state["rng"][self.group.rank])
        self.best_step, self.elapsed_before = state["best_step"], state["elapsed_s"]
        self.best = ValidationResult.from_row(state["best_dice"]) if state["best_dice"] is not None else None
        self.last_checkpoint_step = self.trainer.step

    def start(self, resume: bool) -> None:
        """The step plan and order, the settings file, the announcement, the logbook and the progress line."""
        settings, data, group, trainer, train = self.settings, self.data, self.group, self.trainer, self.settings.train
        batches_per_epoch = TrainingOrder.epoch_batches(len(data.train), train.batch_size, group.world_size)
        self.total = train.steps if train.steps is not None else train.epochs * batches_per_epoch
        if trainer.step > self.total:
            raise CoopSegError(f"{self.run_dir}: already trained {trainer.step} steps, more than the {self.total} "
                               "asked for; pass a larger train.steps (or train.epochs) to continue")
        self.order = TrainingOrder(len(data.train), train.batch_size, train.seed, trainer.step, self.total,
                                   group.world_size, group.rank)
        if self.main:
            save_settings(settings, self.run_dir)
            self.announce()
        self.logbook = Logbook(self.run_dir, settings.log.tensorboard, trainer.step if resume else None) \
            if self.main else None
        self.progress = Progress(self.total, trainer.step, settings.log.every, enabled=self.main)
        self.slices_per_step = train.batch_size * (2 if train.paired else 1) * group.world_size
        self.outcome = TrainingOutcome(self.run_dir, trainer.step, self.total, None)
        self.started = time.perf_counter()
        self.window = defaultdict(list)
        self.window_time, self.window_steps = 0.0, 0
        self.tick = time.perf_counter()

    def announce(self) -> None:
        settings, data, group, trainer = self.settings, self.data, self.group, self.trainer
        self.say(f"run folder: {self.run_dir}")
        self.say(f"data: {settings.data.format} {settings.data.root or ''}".rstrip()
                 + f" | {len(data.split.train)} training subjects, {len(data.train)} slices "
                 f"({self.order.batches_per_epoch} steps per epoch per process) | {len(data.validation)} "
                 "validation volumes")
        processes = f" x {group.world_size} processes" if group.distributed else ""
        self.say(f"method: {settings.method.variant} | device {self.device}{processes}"
                 f" | {'bf16' if trainer.bf16 else 'fp32'}{', channels_last' if trainer.channels_last else ''}"
                 f" | steps {trainer.step} -> {self.total}")

    def validation_due(self, step: int) -> bool:
        every = self.settings.validation.every
        return bool(self.data.validation) and (step == self.total or (every > 0 and step % every == 0))

    def step(self, batch: dict) -> Tuple[int, bool]:
        """One optimisation step at the scheduled rate, logged; returns the step and whether it kept its hard
        examples (for the pictures of a validation)."""
        settings, train = self.settings, self.settings.train
        step = self.trainer.step + 1
        rate = learning_rate_at(step, self.total, self.trainer.config.learning_rate, train.schedule,
                                train.warmup_steps, train.final_lr_fraction)
        self.trainer.set_learning_rate(rate)
        keep = self.main and settings.validation.images and settings.log.tensorboard and self.validation_due(step)
        losses = self.trainer.train_step(batch["image"], batch["label"], keep_examples=keep)
        if not all(math.isfinite(v) for v in losses.values()):
            raise FloatingPointError(f"non-finite loss at step {step}: {losses}; lower the learning rate or "
                                     "check the data")
        for name, value in losses.items():
            self.window[name].append(value)
        now = time.perf_counter()
        self.window_time, self.window_steps, self.tick = self.window_time + now - self.tick, self.window_steps + 1, now
        speed = self.slices_per_step * self.window_steps / self.window_time
        if step % settings.log.every == 0 or step == self.total:
            self.log_losses(step, rate, speed)
        self.progress.update(step, losses["total"], speed)
        return step, keep

    def log_losses(self, step: int, rate: float, speed: float) -> None:
        """The window's mean losses over every process (a collective), written by rank 0; the window restarts."""
        means = self.group.mean([float(np.mean(v)) for v in self.window.values()], self.device)
        if self.main:
            self.logbook.losses(step, (step - 1) // self.order.batches_per_epoch, dict(zip(self.window, means)),
                                speed, rate)
        self.outcome.samples_per_s = speed
        self.window, self.window_time, self.window_steps = defaultdict(list), 0.0, 0

    def validate(self, step: int, batch: dict, keep: bool) -> None:
        """Dice of both stages on the validation volumes; the best weights so far go to best.pt (rank 0 only)."""
        result = validate(SlicePredictor(self.trainer.evaluation_model, self.trainer.runtime), self.data.validation)
        improved = self.best is None or result.score > self.best.score
        if improved:
            self.best, self.best_step = result, step
            save_checkpoint(self.run_dir / BEST_CHECKPOINT, {"model": self.trainer.evaluation_model.state_dict(),
                                                             "step": step, "score": result.score})
        self.logbook.validation(step, (step - 1) // self.order.batches_per_epoch, result.row(), improved)
        if keep:
            self.logbook.pictures(step, pictures(self.trainer, batch, self.trainer.last_hard_examples))
        self.progress.write(f"step {step}: Dice FTN {result.mean('ftn'):.3f}, FTN+STN {result.mean('stn'):.3f}"
                            f"{' (best so far)' if improved else ''}")

    def checkpoint(self) -> None:
        """last.pt: trainer, every process's random states (a collective), best score, elapsed time, settings."""
        rng = self.group.gather(capture_rng_state())
        if self.main:
            save_checkpoint(self.run_dir / LAST_CHECKPOINT, {
                "trainer": self.trainer.state_dict(), "rng": rng, "best_step": self.best_step,
                "best_dice": self.best.row() if self.best is not None else None,
                "elapsed_s": self.elapsed_before + time.perf_counter() - self.started,
                "world_size": self.group.world_size,
                "settings": self.settings.to_dict(),
                "split": {"train": list(self.data.split.train), "validation": list(self.data.split.validation)},
            })
        self.last_checkpoint_step = self.trainer.step

    def finish(self) -> TrainingOutcome:
        """The outcome; for a completed run on rank 0 also the bundle (best weights when validated) and report."""
        outcome, trainer = self.outcome, self.trainer
        outcome.step, outcome.best, outcome.best_step = trainer.step, self.best, self.best_step
        elapsed = self.elapsed_before + time.perf_counter() - self.started
        if outcome.interrupted or not self.main:
            return outcome
        model = trainer.evaluation_model
        if self.best_step is not None and (self.run_dir / BEST_CHECKPOINT).is_file():
            model = CoopSegModel(trainer.config.network)
            model.load_state_dict(load_checkpoint(self.run_dir / BEST_CHECKPOINT)["model"])
        settings = self.settings
        preprocessing = {"spacing_mm": settings.data.spacing_mm, "size": settings.data.size,
                         "intensity": "2nd-98th percentile clip of the volume, min-max to [0, 1]"}
        record = bundle_training_record(settings, self.data, outcome, elapsed, self.device, self.group.world_size)
        record["objective"] = trainer.config.objective_dict()
        outcome.bundle = save_bundle(self.run_dir / BUNDLE_NAME, model, preprocessing, record,
                                     storage=settings.checkpoint.bundle_storage, overwrite=True)
        write_report(self.run_dir / "report.md", settings, self.data, outcome, record)
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
