"""Runtime policy shared by training, inference and the Slicer module: the device, bf16 or not, the memory format,
and how tensors reach the device.

One place decides all of them, so that a model trains and predicts under the same rules: ``Runtime`` holds the
choices (``CooperativeTrainer``, ``SlicePredictor`` and the ``Segmenter`` read them from here; none imports another
for them). Devices are named as torch names them ("cuda"); "gpu" is accepted from users as another word for it and
never used inside. The words of an error fit the command line and the Slicer module alike.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import ContextManager, Optional, Union

import torch

PRECISIONS = ("auto", "bf16", "fp32")
from CoopSegLib.devices import DEVICE_CHOICES, NO_CUDA, canonical_device_name  # the words; the policy is here

def resolve_device(device: Union[str, torch.device]) -> torch.device:
    """'auto' picks CUDA when available; asking for CUDA on a machine without it is an error, not a silent CPU run.

    'gpu' (the Slicer module's word for it) means 'cuda'; a name torch does not know is refused with the choices.

    >>> resolve_device("cpu"), resolve_device("CPU")
    (device(type='cpu'), device(type='cpu'))
    """
    if isinstance(device, str):
        name = canonical_device_name(device)
        if name == "auto":
            return torch.device("cuda" if torch.cuda.is_available() else "cpu")
        try:
            device = torch.device(name)
        except RuntimeError:  # torch's message lists every device type it was built to know
            raise ValueError(f"unknown device {device!r}; use one of {DEVICE_CHOICES}") from None
    device = torch.device(device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(NO_CUDA)
    return device


def cpu_has_fast_bf16() -> bool:
    """True on CPUs with native bf16 arithmetic (AVX512-BF16 or AMX), where oneDNN's bf16 kernels beat fp32."""
    probes = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")  # private torch.cpu helpers: guard their absence
    return any(getattr(torch.cpu, name, lambda: False)() for name in probes)


def uses_bf16(precision: str, device: torch.device) -> bool:
    """'auto': bf16 autocast on GPUs that support it and on CPUs with native bf16, fp32 elsewhere."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, not {precision!r}")
    if precision == "auto":
        if device.type == "cuda":
            return torch.cuda.is_bf16_supported()
        return device.type == "cpu" and cpu_has_fast_bf16()
    return precision == "bf16"


def numeric_context(device: torch.device, bf16: bool) -> ContextManager:
    """The context of every forward pass on ``device``: bf16 autocast when ``bf16``, else nothing."""
    if not bf16:
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16)


def default_channels_last(device: torch.device, bf16: bool, training: bool) -> bool:
    """The memory format's default: channels_last on every device, in every precision, training or not. It suits
    cuDNN and oneDNN bf16 convolutions (bench/train_step.py); in fp32 on CPUs it pays off for inference
    (bench/inference.py: 0.46 s instead of 0.65 s per ACDC volume on 2 cores) and for training too (an AVX2-only
    2-core CPU, shared: 3.71 -> 3.47 CPU seconds per step of 8 slices at 128 px, bench/train_step.py --compare
    channels_last)."""
    return True


@dataclass(frozen=True)
class Runtime:
    """Where and how the networks compute: ``device``, bf16 autocast or not, channels_last or not.

    >>> runtime = Runtime.create("cpu", "fp32")
    >>> runtime.device, runtime.bf16, runtime.channels_last
    (device(type='cpu'), False, True)
    >>> runtime.to_device(torch.zeros(2, 1, 8, 8)).is_contiguous(memory_format=torch.channels_last)
    True
    """

    device: torch.device
    bf16: bool
    channels_last: bool

    @classmethod
    def create(cls, device: Union[str, torch.device] = "auto", precision: str = "auto",
               channels_last: Optional[bool] = None, training: bool = False) -> "Runtime":
        """The runtime for a device name ("auto", "cpu", "cuda[:N]", "gpu"), a precision ("auto", "bf16", "fp32")
        and a memory format (None: ``default_channels_last``); ValueError / RuntimeError for a bad choice."""
        resolved = resolve_device(device)
        bf16 = uses_bf16(precision, resolved)
        chosen = default_channels_last(resolved, bf16, training) if channels_last is None else bool(channels_last)
        return cls(resolved, bf16, chosen)

    def autocast(self) -> ContextManager:
        """The numeric context of every forward pass: bf16 autocast when chosen, else nothing."""
        return numeric_context(self.device, self.bf16)

    def to_device(self, images: torch.Tensor) -> torch.Tensor:
        """A batch N x C x H x W on the device, in the networks' memory format."""
        images = images.to(self.device, non_blocking=True)
        return images.contiguous(memory_format=torch.channels_last) if self.channels_last else images

    def place(self, model: torch.nn.Module) -> torch.nn.Module:
        """``model`` moved to the device, in the memory format (in place, as ``Module.to`` does)."""
        model.to(self.device)
        return model.to(memory_format=torch.channels_last) if self.channels_last else model
