"""The slice predictor: model slices in, the model's predictions out, the one way every caller runs the networks.

It owns what must not drift between validation during training, the ``Segmenter`` and the hard-example previews:
chunking the slices into batches of at most ``max_slices``, the per-slice min-max that training applies to every
slice (``SliceDataset``), and the numeric context (device, bf16 autocast, channels_last, no autograd) of its
``Runtime``. Slices are the model grid's (S, H, W) after the volume-wise normalisation and resampling of
``prepare_image``, before the per-slice min-max.

    predictor = SlicePredictor(model, Runtime.create("cpu"))
    labels = predictor.labels(slices)                         # {"ftn": (S, H, W), "stn": (S, H, W)} uint8
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, Tuple, TypeVar, Union

import numpy as np
import torch

from CoopSegLib.data.normalisation import minmax_per_slice
from CoopSegLib.errors import CoopSegError
from CoopSegLib.networks import STAGES, CoopSegModel, Prediction
from CoopSegLib.runtime import Runtime

DEFAULT_MAX_SLICES = 32  # slices per forward pass: bounds activation memory (~25 MB per 192x192 slice in fp32)
Slices = Union[np.ndarray, torch.Tensor]
Measured = TypeVar("Measured")
# (model, the batch as the networks saw it, their prediction) -> what a caller measures in the same pass
Measure = Callable[[CoopSegModel, torch.Tensor, Prediction], Measured]


class SlicePredictor:
    """``model`` (put in eval mode) run on batches of model slices under ``runtime``'s numerics.

    >>> from CoopSegLib.networks import NetworkConfig
    >>> predictor = SlicePredictor(CoopSegModel(NetworkConfig(widths=(8, 16, 32))), Runtime.create("cpu", "fp32"),
    ...                            max_slices=2)
    >>> labels = predictor.labels(np.random.default_rng(0).random((3, 32, 32), dtype=np.float32))
    >>> sorted(labels), labels["stn"].shape, labels["stn"].dtype, list(predictor.batches(3))
    (['ftn', 'stn'], (3, 32, 32), dtype('uint8'), [(0, 2), (2, 3)])
    """

    def __init__(self, model: CoopSegModel, runtime: Runtime, max_slices: int = DEFAULT_MAX_SLICES) -> None:
        if max_slices < 1:
            raise CoopSegError(f"max_slices must be at least 1, got {max_slices}")
        self.model = runtime.place(model).eval()
        self.runtime = runtime
        self.max_slices = int(max_slices)

    @property
    def num_classes(self) -> int:
        return self.model.config.num_classes

    @staticmethod
    def normalise(slices: Slices) -> torch.Tensor:
        """Each slice min-maxed to [0, 1] on its own (float32, on the CPU), as the training slices are."""
        if isinstance(slices, np.ndarray):
            slices = torch.from_numpy(np.ascontiguousarray(slices, dtype=np.float32))
        return minmax_per_slice(slices.float())

    def model_input(self, slices: Slices) -> torch.Tensor:
        """Slices (S, H, W) -> the network input (S, 1, H, W): normalised, on the device, in the memory format."""
        return self.runtime.to_device(self.normalise(slices)[:, None])

    def batches(self, count: int) -> Iterator[Tuple[int, int]]:
        """(start, stop) of each forward pass over ``count`` slices."""
        for start in range(0, count, self.max_slices):
            yield start, min(count, start + self.max_slices)

    def numerics(self, gradients: bool = False) -> contextlib.ExitStack:
        """The context of a forward pass: the runtime's autocast, and inference mode unless ``gradients`` (the
        previews' targeted masks differentiate a loss with respect to the codes)."""
        stack = contextlib.ExitStack()
        if not gradients:
            stack.enter_context(torch.inference_mode())
        stack.enter_context(self.runtime.autocast())
        return stack

    def predict(self, slices: Slices, stage: str = "stn") -> Prediction:
        """``CoopSegModel.predict`` (float32 logits) of one batch of slices."""
        with self.numerics():
            return self.model.predict(self.model_input(slices), stage)

    def predict_with(self, slices: Slices, measure: Measure, stage: str = "stn") -> Tuple[Prediction, Measured]:
        """One batch's prediction and what ``measure`` takes from the same pass (in the same numerics)."""
        with self.numerics():
            images = self.model_input(slices)
            prediction = self.model.predict(images, stage)
            return prediction, measure(self.model, images, prediction)

    def labels(self, slices: Slices) -> Dict[str, np.ndarray]:
        """Both stages' label maps (S, H, W) uint8 of all ``slices``, batch by batch."""
        out = {stage: np.empty((len(slices), *slices.shape[1:]), dtype=np.uint8) for stage in STAGES}
        for start, stop in self.batches(len(slices)):
            prediction = self.predict(slices[start:stop], "stn")
            out["ftn"][start:stop] = prediction.initial.argmax(1).to("cpu", torch.uint8).numpy()
            out["stn"][start:stop] = prediction.refined.argmax(1).to("cpu", torch.uint8).numpy()
        return out
