"""Training/compare_checkpoints.py: two runs' best weights scored again on their shared validation volumes, paired."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest

from CoopSegLib.training.loop import run_training
from data_helpers import REPO
from test_training_run import tiny_settings

SCRIPT = REPO / "Training" / "compare_checkpoints.py"


def compare(*args):
    return subprocess.run([sys.executable, str(SCRIPT), *map(str, args)], capture_output=True, text=True,
                          timeout=600, cwd=REPO)


def best_row(run_dir):
    rows = list(csv.DictReader(open(run_dir / "validation.csv")))
    return max(rows, key=lambda row: float(row["stn_mean"]))


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("compare")
    made = {}
    for name, extra in (("first", ["train.seed=1"]), ("second", ["train.seed=2"]),
                        ("other_split", ["train.seed=1", "data.n_validation=2"])):
        run_training(tiny_settings("train.steps=2", *extra, output_root=root), root / name, say=lambda _: None)
        made[name] = root / name
    return made


def test_each_run_scores_what_its_validation_recorded_and_the_difference_is_paired(runs):
    result = compare(runs["first"], runs["second"])
    assert result.returncode == 0, result.stderr
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    for which in ("first", "second"):
        recorded = best_row(runs[which])
        assert summary[f"{which}_step"] == int(recorded["step"])
        assert summary[f"{which}_stn"] == pytest.approx(float(recorded["stn_mean"]), abs=1e-6)
    assert summary["subjects"] == 1  # the tiny runs hold one validation subject: no interval
    assert f"{summary['difference']:+.4f}" in result.stdout


def test_runs_that_validate_on_different_subjects_are_refused(runs):
    result = compare(runs["first"], runs["other_split"])
    assert result.returncode == 2
    assert "validate on different volumes: no paired comparison" in result.stderr
