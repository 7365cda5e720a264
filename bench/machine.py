"""The fields every benchmark's JSON line reports about the machine it ran on."""

import os
import resource

import torch


def machine_fields(device: torch.device) -> dict:
    """Peak resident memory so far, the device and its name, torch's thread count and version."""
    return {
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device) if device.type == "cuda" else f"{os.cpu_count()} CPU cores",
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
