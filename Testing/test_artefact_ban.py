"""The artefact test sets stay unseen: no module of CoopSegLib or Training/ outside the evaluation side uses the
TorchIO artefact transforms, the project's corruption helpers or a Fourier transform (DESIGN.md).

Every module is parsed (ast), so names in comments, docstrings and strings do not count, and a new module is
checked without being listed here. The allowed modules are named with the reason they may.
"""

from __future__ import annotations

import ast
from pathlib import Path
from typing import Dict, Iterator, Set, Tuple

import pytest

REPO = Path(__file__).resolve().parents[1]
ROOTS = ("CoopSegLib", "Training")

# TorchIO's artefact transforms, random and not (ACDC-C's RandBias, RandGhosting, RandMotion, RandSpike).
ARTEFACT_TRANSFORMS = {"RandomBiasField", "RandomGhosting", "RandomMotion", "RandomSpike",
                       "BiasField", "Ghosting", "Motion", "Spike"}
# The project's helpers that make the corrupted copies, and the modules that hold them.
CORRUPTION_HELPERS = {"corrupt_volume", "corrupt_files", "corruption_seed", "CORRUPTIONS", "build_test_sets"}
CORRUPTION_MODULES = {"CoopSegLib.data.corruption", "CoopSegLib.evaluation.test_sets"}
# Fourier transforms: the k-space where ghosting, motion and spikes are simulated.
FFT_MODULES = {"torch.fft", "numpy.fft", "scipy.fft", "scipy.fftpack"}

EVALUATION = "builds or scores the test sets"
ALLOWED: Dict[str, Dict[str, str]] = {
    "artefact transforms": {
        "CoopSegLib/data/corruption.py": "makes the artefact test sets",
    },
    "corruption helpers": {
        "CoopSegLib/data/corruption.py": "makes the artefact test sets",
        "CoopSegLib/evaluation/*": EVALUATION,
        "CoopSegLib/cli/corrupt.py": "coopseg corrupt writes the test sets' files",
        "CoopSegLib/cli/evaluate.py": EVALUATION,
        "Training/reproduce_table1.py": EVALUATION + " (Table 1)",
        "Training/compare_evaluations.py": "scores two models' evaluations of the test sets (names the artefact sets)",
        "Training/gpu_table1_pack.py": "packs the test cases beside the training cases, scored only",
    },
    "Fourier transforms": {
        "CoopSegLib/data/phantom.py": "smooths the synthetic phantom's texture (the demo's data, no artefact)",
        "CoopSegLib/data/corruption.py": "makes the artefact test sets",
        "CoopSegLib/evaluation/*": EVALUATION,
    },
}


def modules() -> Iterator[Path]:
    for root in ROOTS:
        yield from sorted((REPO / root).rglob("*.py"))


def _dotted(node: ast.AST) -> str:
    """"torch.fft.fft2" for an attribute chain on a name, "" for anything else."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    return ".".join([node.id, *reversed(parts)]) if isinstance(node, ast.Name) else ""


def uses(path: Path) -> Dict[str, Set[str]]:
    """What ``path``'s code uses of each banned kind: category -> the names or modules, with line numbers."""
    tree = ast.parse(path.read_text(), str(path))
    aliases = {"np": "numpy", "tio": "torchio"}  # and whatever the module itself imports under another name
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({alias.asname: alias.name for alias in node.names if alias.asname})
    found: Dict[str, Set[str]] = {category: set() for category in ALLOWED}

    def note(category: str, what: str, node: ast.AST) -> None:
        found[category].add(f"{what} (line {node.lineno})")

    for node in ast.walk(tree):
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            base = (node.module or "") if isinstance(node, ast.ImportFrom) else ""
            for alias in node.names:
                full = f"{base}.{alias.name}" if base else alias.name
                if any(full == m or full.startswith(m + ".") or base == m for m in FFT_MODULES):
                    note("Fourier transforms", full, node)
                if full in CORRUPTION_MODULES or alias.name in CORRUPTION_HELPERS:  # the module, or a helper
                    note("corruption helpers", full, node)
                if alias.name in ARTEFACT_TRANSFORMS:
                    note("artefact transforms", full, node)
        elif isinstance(node, ast.Attribute):
            dotted = _dotted(node)
            head, _, rest = dotted.partition(".")
            resolved = f"{aliases.get(head, head)}.{rest}" if rest else ""
            if any(resolved == m or resolved.startswith(m + ".") for m in FFT_MODULES):
                note("Fourier transforms", resolved, node)
            if node.attr in ARTEFACT_TRANSFORMS:
                note("artefact transforms", dotted or node.attr, node)
            if node.attr in CORRUPTION_HELPERS:
                note("corruption helpers", dotted or node.attr, node)
        elif isinstance(node, ast.Name):
            if node.id in ARTEFACT_TRANSFORMS:
                note("artefact transforms", node.id, node)
            if node.id in CORRUPTION_HELPERS:
                note("corruption helpers", node.id, node)
    return found


def allowed(category: str, relative: str) -> bool:
    return any(relative == pattern or (pattern.endswith("/*") and relative.startswith(pattern[:-1]))
               for pattern in ALLOWED[category])


def violations() -> Iterator[Tuple[str, str, Set[str]]]:
    for path in modules():
        relative = path.relative_to(REPO).as_posix()
        for category, names in uses(path).items():
            if names and not allowed(category, relative):
                yield category, relative, names


def test_no_module_outside_the_evaluation_side_uses_artefacts_corruption_or_fourier_transforms():
    found = list(violations())
    assert not found, "\n".join(f"{relative}: {category}: {', '.join(sorted(names))}"
                                for category, relative, names in found)


def test_the_walk_covers_every_package_and_training_script():
    walked = {path.relative_to(REPO).as_posix() for path in modules()}
    for expected in ("CoopSegLib/cooperative/trainer.py", "CoopSegLib/training/loop.py", "CoopSegLib/masking",
                     "CoopSegLib/data/augmentation.py", "CoopSegLib/inference/engine.py", "Training/train.py"):
        assert any(path.startswith(expected) for path in walked), expected


@pytest.mark.parametrize("module, category, name", [
    ("CoopSegLib/data/corruption.py", "artefact transforms", "RandomSpike"),
    ("CoopSegLib/data/phantom.py", "Fourier transforms", "numpy.fft.fft2"),
    ("CoopSegLib/evaluation/calibration.py", "corruption helpers", "corruption_seed"),
])
def test_the_check_sees_what_the_allowed_modules_use(module, category, name):
    assert any(name in found for found in uses(REPO / module)[category]), (module, category)


@pytest.mark.parametrize("source, category", [
    ("import torchio as tio\ntransform = tio.RandomMotion()", "artefact transforms"),
    ("from torchio.transforms import Ghosting", "artefact transforms"),
    ("import torch\nk = torch.fft.fft2(x)", "Fourier transforms"),
    ("import numpy as xp\nk = xp.fft.ifftn(x)", "Fourier transforms"),
    ("from torch.fft import rfft2", "Fourier transforms"),
    ("from numpy import fft", "Fourier transforms"),
    ("from CoopSegLib.data.corruption import corrupt_volume", "corruption helpers"),
    ("from CoopSegLib.data import corruption", "corruption helpers"),
    ("from CoopSegLib.evaluation.test_sets import build_test_sets", "corruption helpers"),
    ("import CoopSegLib.data.corruption as c\nc.corrupt_volume(v, 'spike', 0)", "corruption helpers"),
])
def test_each_kind_of_use_is_caught_in_a_training_module(tmp_path, source, category):
    module = tmp_path / "augment.py"
    module.write_text(source + "\n# RandomSpike and torch.fft in a comment do not count\n")
    assert uses(module)[category], source
    quiet = tmp_path / "quiet.py"
    quiet.write_text('"""Never RandomSpike, corrupt_volume or torch.fft (a docstring)."""\nSPIKE = "RandSpike"\n')
    assert not any(uses(quiet).values())


def test_training_configs_name_no_artefact_transform():
    for config in sorted((REPO / "Training" / "configs").glob("*.y*ml")):
        text = config.read_text()
        assert not {name for name in ARTEFACT_TRANSFORMS | CORRUPTION_HELPERS if name in text}, config
