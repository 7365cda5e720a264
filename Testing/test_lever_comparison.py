"""Training/compare_levers.py (issue 14, item 6): each arm is the new recipe with exactly the lever it names changed,
every arm gets the same planned wall-clock, and its table reads evaluation.csv as `coopseg evaluate` summarises it."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Training"))

import compare_levers  # noqa: E402  (Training/compare_levers.py)
import train  # noqa: E402  (Training/train.py)


def settings_of(arm, tmp_path, minutes=11.0):
    start = tmp_path / "start.coopseg"  # settings check that the starting bundle's folder exists
    start.mkdir(exist_ok=True)
    command = compare_levers.train_command(arm, tmp_path / arm.name, "DATA", str(start), minutes)
    return train.settings_from_arguments(train.build_parser().parse_args(command[2:]))


def levers(settings) -> dict:
    method = dict(settings.method.overrides)
    return {"crop": settings.data.crop, "augmentation": settings.data.augmentation,
            "ranking": method.get("mask_ranking", "magnitude"), "average": settings.train.ema_decay,
            "schedule": settings.train.schedule, "seed": settings.train.seed, "batch": settings.train.batch_size,
            "rate": method["learning_rate"]}


def test_each_arm_changes_only_its_lever(tmp_path):
    arms = {arm.name: arm for arm in compare_levers.ARMS}
    new = levers(settings_of(arms["new"], tmp_path))
    assert new == {"crop": 160, "augmentation": "strong", "ranking": "magnitude", "average": 0.999,
                   "schedule": "cosine", "seed": 0, "batch": 8, "rate": 2e-4}
    changed = {"new_seed1": {"seed": 1}, "no_crop": {"crop": None}, "paper_augmentation": {"augmentation": "paper"},
               "expected_loss_ranking": {"ranking": "expected_loss"}, "no_average": {"average": None}}
    for name, difference in changed.items():
        assert levers(settings_of(arms[name], tmp_path)) == {**new, **difference}, name
    today = levers(settings_of(arms["today"], tmp_path))
    assert today == {"crop": None, "augmentation": True, "ranking": "magnitude", "average": None,
                     "schedule": "constant", "seed": 0, "batch": 4, "rate": 2e-5}
    for arm in compare_levers.ARMS:  # same start, same split, validated once at the end, never calibrated
        settings = settings_of(arm, tmp_path)
        assert settings.train.init_from == str(tmp_path / "start.coopseg") and settings.data.split_seed == 0
        assert settings.validation.every == 0
        assert "--no-calibrate" in compare_levers.train_command(arm, tmp_path / arm.name, "D", "S", 11.0)


def test_arms_get_equal_planned_wall_clock(tmp_path):
    for minutes in (5.0, 11.0):
        for arm in compare_levers.ARMS:
            planned_s = settings_of(arm, tmp_path, minutes).train.steps * compare_levers.SECONDS_PER_STEP[arm.speed]
            assert minutes * 60 - compare_levers.SECONDS_PER_STEP[arm.speed] < planned_s <= minutes * 60


def test_a_stopped_arm_is_resumed(tmp_path):
    arm = compare_levers.ARMS[1]
    (tmp_path / arm.name / "checkpoints").mkdir(parents=True)
    command = compare_levers.train_command(arm, tmp_path / arm.name, "DATA", "START", 11.0)
    assert command[-2:] == ["--resume", str(tmp_path / arm.name)] and "--config" not in command


def test_table_matches_the_evaluation_summary():
    """The shipped model's scored evaluation (docs/model_card_eval): the table's means equal evaluation.md's."""
    folder = ROOT / "docs" / "model_card_eval"
    dice = compare_levers.mean_dice(folder / "evaluation.csv")
    summary = (folder / "evaluation.md").read_text()
    for stage in ("FTN", "FTN+STN"):
        row = re.search(rf"^\| {re.escape(stage)} \| (.+) \|$", summary, re.MULTILINE).group(1).split(" | ")
        for name, written in zip(compare_levers.SETS, row):
            assert dice[(name, stage)] == pytest.approx(float(written), abs=5e-5), (name, stage)
    arm = compare_levers.ARMS[1]
    table = compare_levers.comparison_table([(arm, 375, 11.2, dice)])
    assert f"| new | 375 | 11.2 | FTN+STN | {dice[('clean', 'FTN+STN')]:.3f} |" in table
    assert table.count("\n") == 3  # heading, rule, one row per stage
