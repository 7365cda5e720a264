"""Layers that hold: importing the inference package (and the Slicer worker's module) loads neither the trainer nor
training's parts, and adds none of torch's optimiser, weight-average or DDP modules beyond what ``import torch``
loads itself. Checked in a fresh interpreter, where nothing else has been imported yet."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

TRAINING_MODULES = ("CoopSegLib.cooperative.trainer", "CoopSegLib.cooperative.objective", "CoopSegLib.training",
                    "CoopSegLib.data.augmentation", "CoopSegLib.data.intensity_augmentation", "CoopSegLib.data.slices")
TORCH_TRAINING_MODULES = ("torch.optim", "torch.optim.swa_utils", "torch.nn.parallel.distributed")

PROBE = """
import json, sys
import torch
with_torch = set(sys.modules)
import CoopSegLib.inference.engine, CoopSegLib.inference.previews, CoopSegLib.inference.worker
print(json.dumps({"torch": sorted(with_torch), "ours": sorted(set(sys.modules) - with_torch)}))
"""


def loaded_modules() -> dict:
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, check=True, cwd=REPO,
                         env=environment)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_importing_inference_loads_no_training_code():
    modules = loaded_modules()
    ours = set(modules["ours"])
    assert "CoopSegLib.inference.slice_predictor" in ours and "CoopSegLib.cooperative.hard_examples" in ours
    loaded_training = [name for name in ours for module in TRAINING_MODULES
                       if name == module or name.startswith(module + ".")]
    assert loaded_training == []
    # torch may load these itself at ``import torch`` (2.x does); our imports must not be what brings them in.
    assert [name for name in TORCH_TRAINING_MODULES if name in ours] == []


def test_the_lazy_packages_still_give_every_name_they_list():
    import CoopSegLib.cooperative as cooperative
    import CoopSegLib.data as data
    from CoopSegLib.cooperative.trainer import CooperativeTrainer

    assert cooperative.CooperativeTrainer is CooperativeTrainer
    for package in (cooperative, data):
        assert all(getattr(package, name) is not None for name in package.__all__)
        assert set(package.__all__) <= set(dir(package))


SLICER_PROBE = """
import json, sys
sys.path.insert(0, "CoopSeg")
import slicer
import CoopSegMRML.logic, CoopSegMRML.previews, CoopSegMRML.tables
print(json.dumps(sorted(sys.modules)))
"""


def test_the_slicer_logic_loads_without_torch():
    """Choosing an input, showing results and reading the worker's events run on Slicer's GUI thread: the scene
    logic and what it imports load no torch (the model is imported when a preview first needs it)."""
    import pytest

    pytest.importorskip("slicer", reason="slicer-core is not installed")
    environment = {**os.environ, "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    out = subprocess.run([sys.executable, "-c", SLICER_PROBE], capture_output=True, text=True, check=True, cwd=REPO,
                         env=environment)
    modules = json.loads(out.stdout.strip().splitlines()[-1])
    assert "CoopSegMRML.logic" in modules and "torch" not in modules
