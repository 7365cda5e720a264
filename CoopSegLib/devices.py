"""The devices a user names, as words: the standard library only, so the Slicer module checks a choice without
importing torch (``CoopSegLib.runtime`` turns a name into a torch device and holds the rest of the policy)."""

from __future__ import annotations

DEVICES = ("auto", "cpu", "cuda")  # the kinds of device a user chooses from (the Slicer module's list too)
DEVICE_CHOICES = "auto, cpu, cuda, cuda:N (gpu, gpu:N mean cuda, cuda:N)"
NO_CUDA = "CUDA was asked for but no CUDA device is available; choose the device cpu or auto (--device cpu)"


def canonical_device_name(name: str) -> str:
    """A device name as torch spells it: 'gpu' and 'gpu:N' (users' and older scenes' word) become 'cuda' / 'cuda:N'.

    >>> canonical_device_name("GPU:1"), canonical_device_name("cpu")
    ('cuda:1', 'cpu')
    """
    name = name.strip().lower()
    return "cuda" + name[len("gpu"):] if name == "gpu" or name.startswith("gpu:") else name


def device_choice(name: str) -> str:
    """One of ``DEVICES`` as torch names it (the Slicer module's device list); ValueError for anything else.

    >>> device_choice("GPU"), device_choice("auto")
    ('cuda', 'auto')
    """
    canonical = canonical_device_name(name)
    if canonical not in DEVICES:
        raise ValueError(f"unknown device {name!r}; use one of {', '.join(DEVICES)}")
    return canonical
