"""Runtime policy shared by training and inference: which device to run on and whether to compute in bf16.

One place decides both, so that a model trains and predicts under the same rules (``CooperativeTrainer`` and
``Segmenter`` call these; neither imports the other for them). Devices are named as torch names them ("cuda");
"gpu" is accepted from users as another word for it and never used inside.
"""

from __future__ import annotations

import contextlib
from typing import ContextManager, Union

import torch

PRECISIONS = ("auto", "bf16", "fp32")


DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (gpu, gpu:N mean cuda, cuda:N)"


def canonical_device_name(name: str) -> str:
    """A device name as torch spells it: 'gpu' and 'gpu:N' (users' and older scenes' word) become 'cuda' / 'cuda:N'.

    >>> canonical_device_name("GPU:1"), canonical_device_name("cpu")
    ('cuda:1', 'cpu')
    """
    name = name.strip().lower()
    return "cuda" + name[len("gpu"):] if name == "gpu" or name.startswith("gpu:") else name


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
        raise RuntimeError("CUDA was asked for but no CUDA device is available; use --device cpu or auto")
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
