"""The trainer: owns the model, the cooperative objective, one Adam optimiser over every module, and the numerics.

One step = forward of L_std + L_hard, one backward, one optimiser step. bf16 autocast is used where it helps (GPUs
with bf16, CPUs with native bf16), channels_last everywhere by default; the step does no per-iteration gc.collect() or
torch.cuda.empty_cache() (the authors' code did both: they cost time and free nothing the allocator would not reuse).
"""

from __future__ import annotations

from typing import Any, Optional, Union

import torch
from torch import nn
from torch.optim.swa_utils import AveragedModel

from CoopSegLib.cooperative.config import CooperativeConfig
from CoopSegLib.cooperative.hard_examples import HardExamples
from CoopSegLib.cooperative.objective import CooperativeLoss, CooperativeObjective
from CoopSegLib.cooperative.weight_average import weight_average
from CoopSegLib.networks import CoopSegModel, Prediction
from CoopSegLib.runtime import Runtime


class CooperativeTrainer:
    """Trains a ``CoopSegModel`` with the cooperative objective: ``train_step`` on batches, ``predict`` to look.

    ``precision`` "auto" trains in bf16 autocast where the device has fast bf16 (float32 weights either way);
    ``ema_decay`` keeps an exponential moving average of the weights for validation and the bundle (``ema_warmup``:
    a lower decay over the first thousands of steps, for runs from scratch; cooperative/weight_average.py).

    >>> import torch
    >>> trainer = CooperativeTrainer(CooperativeConfig.variant("standard", widths=(8, 16, 32)), "cpu", "fp32")
    >>> losses = trainer.train_step(torch.rand(2, 1, 32, 32), torch.randint(0, 4, (2, 32, 32)))
    >>> trainer.step, sorted(losses)[:2]
    (1, ['std/rec', 'std/seg'])
    >>> trainer.predict(torch.rand(1, 1, 32, 32), stage="ftn").initial.shape
    torch.Size([1, 4, 32, 32])
    """

    def __init__(
        self,
        config: Optional[CooperativeConfig] = None,
        device: Union[str, torch.device] = "cpu",
        precision: str = "auto",
        channels_last: Optional[bool] = None,
        compile: bool = False,
        ema_decay: Optional[float] = None,
        ema_warmup: bool = False,
    ):
        self.config = config = config if config is not None else CooperativeConfig()
        # The device, precision and memory format under training's defaults (runtime.default_channels_last).
        self.runtime = Runtime.create(device, precision, channels_last, training=True)
        self.model = self.runtime.place(CoopSegModel(config.network))
        self.objective = CooperativeObjective(config, self.model)
        if compile:
            # Compile the encoders and decoders, not the step: hard-example generation draws schemes in Python.
            for part in self.compilable_parts():
                part.compile()
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=config.learning_rate)
        # An exponential moving average of the weights (and BatchNorm statistics), updated after every step:
        # validation, best-model selection and the bundle then use the average, which is smoother than the last
        # step's weights.
        self.average: Optional[AveragedModel] = None
        if ema_decay is not None:
            self.average = weight_average(self.model, ema_decay, ema_warmup)
        # What a training step calls: the objective itself, or a DistributedDataParallel wrapper of it.
        self.step_module: nn.Module = self.objective
        self.step = 0
        # The hard examples of the last step taken with keep_examples=True (for pictures of training).
        self.last_hard_examples: Optional[HardExamples] = None

    def wrap_distributed(self) -> None:
        """Run training steps through DistributedDataParallel (initialise the process group first).

        The whole objective is one module's forward, so one wrapper covers FTN and STN; gradients are averaged
        across processes in the single backward pass.
        """
        from torch.nn.parallel import DistributedDataParallel

        device_ids = [self.device.index if self.device.index is not None else torch.cuda.current_device()] \
            if self.device.type == "cuda" else None
        self.step_module = DistributedDataParallel(self.objective, device_ids=device_ids)

    def compilable_parts(self) -> list:
        ftn, stn = self.model.ftn, self.model.stn
        parts = [ftn.encoder, ftn.decoupler, ftn.image_decoder, ftn.segmentation_decoder, stn.encoder, stn.decoder]
        return [part for part in parts if part is not None]

    @property
    def device(self) -> torch.device:
        return self.runtime.device

    @property
    def bf16(self) -> bool:
        return self.runtime.bf16

    @property
    def channels_last(self) -> bool:
        return self.runtime.channels_last

    def autocast(self):
        return self.runtime.autocast()

    def to_device(self, images: torch.Tensor, labels: Optional[torch.Tensor] = None) -> tuple:
        images = self.runtime.to_device(images)
        if labels is not None:
            labels = labels.to(self.device, non_blocking=True).long()
        return images, labels

    def losses(self, images: torch.Tensor, labels: torch.Tensor) -> CooperativeLoss:
        """The objective on a batch, with gradients attached, without stepping the optimiser."""
        images, labels = self.to_device(images, labels)
        with self.autocast():
            return self.step_module(images, labels)

    def train_step(self, images: torch.Tensor, labels: torch.Tensor, keep_examples: bool = False) -> dict:
        """One optimisation step; returns every loss term as a float (one device sync for all of them).

        ``keep_examples`` keeps this step's hard examples (x_hat, p_hat) in ``last_hard_examples``.
        """
        self.objective.train()
        loss = self.losses(images, labels)
        self.last_hard_examples = loss.hard if keep_examples else None
        self.optimizer.zero_grad(set_to_none=True)
        loss.total.backward()
        self.optimizer.step()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.step += 1
        names = ["total", *loss.terms]
        values = torch.stack([loss.total.detach(), *(t.detach() for t in loss.terms.values())]).float().tolist()
        return dict(zip(names, values))

    @property
    def evaluation_model(self) -> CoopSegModel:
        """What validation and the bundle use: the weight average when there is one, else the trained weights."""
        return self.average.module if self.average is not None else self.model

    def set_learning_rate(self, rate: float) -> None:
        for group in self.optimizer.param_groups:
            group["lr"] = rate

    def predict(self, images: torch.Tensor, stage: str = "stn") -> Prediction:
        """The evaluation model's eval-mode prediction (``CoopSegModel.predict``) for N x 1 x H x W images."""
        model = self.evaluation_model
        model.eval()
        images, _ = self.to_device(images)
        with self.autocast():
            return model.predict(images, stage)

    def state_dict(self) -> dict:
        state = {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(), "step": self.step}
        if self.average is not None:
            state["average"] = self.average.state_dict()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])  # strict: a mismatch is an error, never random weights
        self.optimizer.load_state_dict(state["optimizer"])
        # The saved optimizer carries the old rate; a resumed run takes the one its settings give now (so a run can
        # be continued at a lower rate), while Adam's moments carry over.
        self.set_learning_rate(self.config.learning_rate)
        self.step = int(state["step"])
        if self.average is not None:
            if "average" in state:
                self.average.load_state_dict(state["average"])
            else:  # a checkpoint from a run without averaging: the average starts from its weights
                self._restart_average()

    def load_weights(self, model_state: dict[str, Any]) -> None:
        """Start from trained weights (``train.init_from``): the model and its average; the optimiser starts anew."""
        self.model.load_state_dict(model_state)  # strict
        if self.average is not None:
            self._restart_average()

    def _restart_average(self) -> None:
        """A fresh weight average of the current weights, at the same decay."""
        self.average = AveragedModel(self.model, multi_avg_fn=self.average.multi_avg_fn, use_buffers=True)
