"""The carry folder for Training/gpu_table1.py: what a GPU machine needs to train and score Table 1, under 64 MiB.

    python Training/gpu_table1_pack.py --data ../shared/data/ACDC/training          # -> .carry/table1
    python Training/gpu_table1_pack.py --data DATA --max-test-subjects 2 --output /tmp/pack   # a smaller one

The device machine gets the working tree and the carried paths, 64 MiB in all, and no NIfTI reader; so the data
travel as packed cases (``CoopSegLib.data.packed``: NumPy arrays in LZMA zips, needing nothing beyond NumPy):

  cases/       ED and ES frames of every subject any fold trains or validates on (the folds of ``--seeds``, drawn
               with the configuration's split settings exactly as train.py draws them), and of the test subjects;
               int16 images and canonical uint8 labels, bit for bit what the ACDC reader gives.
               cases/subjects.json lists every subject of DATA, so splits drawn on the pack equal those on DATA.
  corrupted/   ES frames of the test subjects under the four TorchIO artefacts at the paper's parameters, made
               here (TorchIO needs SimpleITK, a 50 MB wheel) with the same copy seeds as ``coopseg corrupt``;
               stored as int16 (rounded to whole numbers, like the scanner's images), or float32 where they
               would not fit.
  manifest.json  folds, test subjects, sets, copies, corruption seed, the configurations and sizes.

Test subjects are those no fold trains or validates on, taken round-robin over ACDC's five groups (numbered in
blocks of 20) until the travelling total (working tree + .whl/ + pack) would pass ``--budget-mib``. The folder is
built beside its destination and renamed into place, so an error leaves nothing half-written.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Dict, List, Sequence

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))  # run from a source checkout without installing

from CoopSegLib.errors import CoopSegError  # noqa: E402

DEFAULT_CONFIGS = ("paper_acdc10_standard", "paper_acdc10_cooperative")
CORRUPTED_SETS = ("bias", "ghosting", "motion", "spike")
MIB = 1 << 20
LIMIT_MIB = 64  # what one device call may carry: working tree + carried paths


def folder_bytes(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file()) if folder.is_dir() else 0


def working_tree_bytes(repo: Path = REPO) -> int:
    """Bytes of what travels without being carried: tracked files and untracked files git does not ignore."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"], cwd=repo,
                             capture_output=True, check=True).stdout.decode().split("\0")
    return sum((repo / name).stat().st_size for name in listing if name and (repo / name).is_file())


def training_settings(config: str, data: Path, seed: int, overrides: Sequence[str]):
    from CoopSegLib.training.settings import TrainingSettings

    sys.path.insert(0, str(REPO / "Training"))
    from train import resolve_config

    return TrainingSettings.from_yaml(resolve_config(config), [*overrides, f"data.root={data}", f"train.seed={seed}"])


def fold_splits(data: Path, configs: Sequence[str], seeds: Sequence[int], overrides: Sequence[str]) -> Dict[str, dict]:
    """seed -> {train, validation} as train.py draws them; every configuration must draw the same subjects."""
    from CoopSegLib.data.readers import list_acdc_subjects
    from CoopSegLib.training.run_data import make_split

    subjects = list_acdc_subjects(data)
    folds: Dict[str, dict] = {}
    for seed in seeds:
        splits = {config: make_split(training_settings(config, data, seed, overrides), subjects) for config in configs}
        first = next(iter(splits.values()))
        if any(split != first for split in splits.values()):
            raise CoopSegError(f"seed {seed}: the configurations {', '.join(configs)} draw different subjects; "
                               "Table 1 compares methods on the same folds")
        folds[str(seed)] = {"train": list(first.train), "validation": list(first.validation)}
    return folds


def group_round_robin(subjects: Sequence[str]) -> List[str]:
    """Subjects interleaved over ACDC's groups (patient001-020 DCM, 021-040 HCM, ...): every group early on."""
    groups: Dict[int, List[str]] = {}
    for name in sorted(subjects):
        digits = "".join(ch for ch in name if ch.isdigit())
        groups.setdefault((int(digits) - 1) // 20 if digits else 0, []).append(name)
    ordered, columns = [], list(groups.values())
    for index in range(max(map(len, columns), default=0)):
        ordered += [column[index] for column in columns if index < len(column)]
    return ordered


def compact_copy(array: np.ndarray) -> np.ndarray:
    """A corrupted copy as int16 (rounded) where it fits, else float32 as made: ACDC's images are whole numbers."""
    rounded = np.rint(array)
    info = np.iinfo(np.int16)
    if np.isfinite(rounded).all() and rounded.min() >= info.min and rounded.max() <= info.max:
        return rounded.astype(np.int16)
    return np.asarray(array, dtype=np.float32)


def pack_subject_frames(data: Path, subject: str, cases_dir: Path) -> None:
    from CoopSegLib.data.packed import write_packed_case
    from CoopSegLib.data.readers import read_acdc_subject
    from CoopSegLib.data.readers.packed import packed_case_path

    for case in read_acdc_subject(data / subject, ("ED", "ES")):
        write_packed_case(packed_case_path(cases_dir, case.subject, case.frame), case.image.array, case.image.affine,
                          case.label.array, {"subject": case.subject, "frame": case.frame, "set": "clean",
                                             "key": case.key, "source": case.source, "metadata": case.metadata})


def pack_corrupted(data: Path, subject: str, folder: Path, copies: int, seed: int) -> None:
    from CoopSegLib.data.packed import PACKED_SUFFIX, write_packed_case
    from CoopSegLib.evaluation.test_sets import build_test_sets

    for case in build_test_sets(data, CORRUPTED_SETS, [subject], copies, seed):
        write_packed_case(folder / f"{case.key}{PACKED_SUFFIX}", compact_copy(case.image.array), case.image.affine,
                          case.label.array, {"subject": subject, "frame": "ES", "set": case.set, "key": case.key})


def build_pack(data: Path, output: Path, configs: Sequence[str] = DEFAULT_CONFIGS, seeds: Sequence[int] = (40, 20, 10),
               overrides: Sequence[str] = (), copies: int = 1, corruption_seed: int = 0,
               max_test_subjects: int = 0, budget_mib: float = LIMIT_MIB - 1, say=print) -> dict:
    """Write the carry folder ``output`` (replacing one there) and return its manifest."""
    from CoopSegLib.data.readers import list_acdc_subjects

    data, output = Path(data), Path(output)
    folds = fold_splits(data, configs, seeds, overrides)
    used = sorted({s for fold in folds.values() for part in fold.values() for s in part})
    held_out = group_round_robin([s for s in list_acdc_subjects(data) if s not in used])
    if max_test_subjects:
        held_out = held_out[:max_test_subjects]
    fixed = working_tree_bytes() + folder_bytes(REPO / ".whl")
    budget = int(budget_mib * MIB)
    output.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{output.name}-", dir=output.parent))
    try:
        cases, corrupted = staging / "cases", staging / "corrupted"
        cases.mkdir()
        corrupted.mkdir()
        (cases / "subjects.json").write_text(json.dumps(list_acdc_subjects(data)))
        for index, subject in enumerate(used, 1):
            say(f"packing fold subject {index}/{len(used)}: {subject}")
            pack_subject_frames(data, subject, cases)
        if fixed + folder_bytes(staging) > budget:
            raise CoopSegError(f"the fold subjects alone make {(fixed + folder_bytes(staging)) / MIB:.1f} MiB with the "
                               f"working tree, over the {budget_mib} MiB budget")
        tested: List[str] = []
        for subject in held_out:
            before = {p for p in staging.rglob("*") if p.is_file()}
            pack_subject_frames(data, subject, cases)
            pack_corrupted(data, subject, corrupted, copies, corruption_seed)
            if fixed + folder_bytes(staging) > budget:  # this subject does not fit: take it out again and stop
                for path in set(staging.rglob("*")) - before:
                    if path.is_file():
                        path.unlink()
                break
            tested.append(subject)
            say(f"packed test subject {len(tested)}: {subject} ({(fixed + folder_bytes(staging)) / MIB:.1f} MiB "
                "travelling so far)")
        if not tested:
            raise CoopSegError(f"no test subject fits in the {budget_mib} MiB budget")
        manifest = {
            "source": str(data), "configs": list(configs), "overrides": list(overrides), "seeds": list(seeds),
            "folds": folds, "test_subjects": tested, "sets": ["clean", *CORRUPTED_SETS], "copies": copies,
            "corruption_seed": corruption_seed,
            "corrupted_storage": "int16 (rounded) where it fits, else float32",
            "bytes": {"pack": folder_bytes(staging), "working_tree": working_tree_bytes(),
                      "wheels": folder_bytes(REPO / ".whl")},
        }
        if sum(manifest["bytes"].values()) > budget:  # e.g. wheels added while this ran
            raise CoopSegError(f"{sum(manifest['bytes'].values()) / MIB:.1f} MiB would travel, over the {budget_mib} "
                               "MiB budget (the working tree or .whl/ grew while packing); pack again")
        (staging / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        if output.exists():
            shutil.rmtree(output)
        staging.rename(output)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    total = sum(manifest["bytes"].values())
    say(f"wrote {output}: {len(used)} fold subjects, {len(tested)} test subjects; "
        f"{manifest['bytes']['pack'] / MIB:.1f} MiB pack, {total / MIB:.1f} MiB travelling with the working tree and "
        f".whl/ (limit {LIMIT_MIB} MiB)")
    return manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", required=True, metavar="DIR", help="ACDC training/ folder (patientNNN/ folders)")
    parser.add_argument("--output", default=str(REPO / ".carry" / "table1"), metavar="DIR",
                        help="carry folder to write (default .carry/table1, ignored by git)")
    parser.add_argument("--configs", default=",".join(DEFAULT_CONFIGS), help="configurations whose folds to pack")
    parser.add_argument("--seeds", default="40,20,10", help="fold seeds (the paper's: 40,20,10)")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="settings override the runs will use too (e.g. data.n_train=2), repeatable")
    parser.add_argument("--copies", type=int, default=1, help="corrupted copies per ES frame and artefact (1)")
    parser.add_argument("--corruption-seed", type=int, default=0, help="as coopseg corrupt --seed (0)")
    parser.add_argument("--max-test-subjects", type=int, default=0, metavar="N", help="at most N (default: fill)")
    parser.add_argument("--budget-mib", type=float, default=LIMIT_MIB - 1,
                        help=f"travelling total to stay under (default {LIMIT_MIB - 1}: 1 MiB below the limit)")
    args = parser.parse_args(argv)
    try:
        build_pack(Path(args.data), Path(args.output), args.configs.split(","),
                   [int(s) for s in args.seeds.split(",")], args.overrides, args.copies, args.corruption_seed,
                   args.max_test_subjects, args.budget_mib)
    except CoopSegError as error:
        print(f"gpu_table1_pack.py: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
