"""Parts of a training run: data order, checkpoints with RNG states, validation Dice."""

import argparse
import pickle
import random

import numpy as np
import pytest
import torch

from CoopSegLib.errors import CoopSegError
from CoopSegLib.training.checkpoint import capture_rng_state, load_checkpoint, restore_rng_state, save_checkpoint
from CoopSegLib.training.order import TrainingOrder
from CoopSegLib.evaluation.metrics import overlap_scores
from CoopSegLib.training.validation import ValidationResult


def test_order_is_a_function_of_the_step_and_splits_epochs_between_processes():
    full = list(TrainingOrder(50, 4, seed=3, start_step=0, total_steps=30))
    assert len(full) == 30 and full[0] != full[12]  # 12 batches per epoch; epoch 1 is a new shuffle
    resumed = list(TrainingOrder(50, 4, seed=3, start_step=17, total_steps=30))
    assert resumed == full[17:]
    epoch0 = [index for batch in full[:12] for _, index in batch]
    assert len(set(epoch0)) == 48 and {epoch for batch in full[12:24] for epoch, _ in batch} == {1}
    ranks = [TrainingOrder(50, 4, seed=3, start_step=0, total_steps=6, world_size=2, rank=r) for r in (0, 1)]
    shares = [{index for batch in order for _, index in batch} for order in ranks]
    assert ranks[0].batches_per_epoch == 6 and not shares[0] & shares[1]  # one epoch: disjoint halves
    with pytest.raises(CoopSegError, match="larger than the 3 training slices"):
        TrainingOrder(3, 4, seed=0, start_step=0, total_steps=1)


def test_rng_state_round_trip_through_a_checkpoint(tmp_path):
    torch.manual_seed(1), np.random.seed(2), random.seed(3)
    state = capture_rng_state()
    expected = (torch.rand(3), np.random.rand(3), random.random())
    path = save_checkpoint(tmp_path / "c" / "last.pt", {"rng": [state], "step": 4})
    torch.manual_seed(9), np.random.seed(9), random.seed(9)
    restore_rng_state(load_checkpoint(path)["rng"][0])
    assert torch.equal(torch.rand(3), expected[0])
    assert np.array_equal(np.random.rand(3), expected[1]) and random.random() == expected[2]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_checkpoint_failures_leave_nothing_and_refuse_bad_files(tmp_path):
    with pytest.raises((AttributeError, TypeError, pickle.PicklingError)):
        save_checkpoint(tmp_path / "x.pt", {"bad": lambda: 0})  # unpicklable: the save fails
    assert list(tmp_path.iterdir()) == []
    path = save_checkpoint(tmp_path / "ok.pt", {"weights": torch.ones(1000)})
    path.write_bytes(path.read_bytes()[:300])
    with pytest.raises(CoopSegError, match="ok.pt: not a readable CoopSeg checkpoint"):
        load_checkpoint(path)
    torch.save({"object": argparse.Namespace(a=1)}, tmp_path / "code.pt")  # would need code to unpickle: refused
    with pytest.raises(CoopSegError, match="code.pt: not a readable"):
        load_checkpoint(tmp_path / "code.pt")


def test_validation_dice_matches_a_hand_count():  # validation scores with the evaluation's overlap_scores
    truth = torch.zeros(2, 10, 10, dtype=torch.long)
    prediction = torch.zeros_like(truth)
    truth[0, :4, :5] = 1  # 20 voxels of LV
    prediction[0, :4, :4] = 1  # 16 of them found, nothing extra
    truth[1, 5:, 5:] = 2  # 25 voxels of myocardium
    prediction[1, 5:, :5] = 2  # 25 voxels, none overlapping
    scores = overlap_scores(prediction.numpy(), truth.numpy(), (1.0, 1.0, 1.0), (1, 2, 3), distances=False)
    dice = [scores[code].dice for code in (1, 2, 3)]
    assert dice[0] == pytest.approx(2 * 16 / (20 + 16))
    assert dice[1] == pytest.approx(0.0)
    assert np.isnan(dice[2])  # RV absent from both: left out of the average, not counted as 0 or 1


def test_validation_result_round_trips_through_its_row():
    result = ValidationResult({"ftn": {"lv": 0.9, "myo": 0.7, "rv": float("nan")},
                               "stn": {"lv": 0.8, "myo": 0.6, "rv": 0.5}})
    assert result.mean("ftn") == pytest.approx(0.8) and result.score == pytest.approx(0.633333, abs=1e-5)
    again = ValidationResult.from_row(result.row())
    assert again.dice["stn"] == result.dice["stn"] and again.mean("ftn") == pytest.approx(0.8)
