"""The budgeted recipe's levers: learning-rate schedule, heart-centred crops, generic intensity augmentation,
weight averaging and starting from a bundle; each deterministic, resumable, and checked in the settings."""

from __future__ import annotations

import csv
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from CoopSegLib.bundle import load_bundle
from CoopSegLib.cooperative import CooperativeConfig, CooperativeTrainer
from CoopSegLib.data.augmentation import SliceAugmenter
from CoopSegLib.data.crops import heart_crop_window
from CoopSegLib.data.filters import gaussian_blur
from CoopSegLib.data.intensity_augmentation import IntensityAugmenter, IntensityPolicy
from CoopSegLib.data.phantom import phantom_cases
from CoopSegLib.data.slices import SliceDataset, VolumeCache
from CoopSegLib.errors import ConfigError, CoopSegError
from CoopSegLib.training.loop import load_run_settings, run_training
from CoopSegLib.training.schedule import learning_rate_at
from CoopSegLib.training.settings import TrainingSettings

from toy_slices import SMALL_WIDTHS, ring_slices
from test_training_run import TINY, TRAIN, assert_same_weights, model_state, tiny_settings

REPO = Path(__file__).resolve().parents[1]
RECIPE = ["train.schedule=cosine", "train.warmup_steps=2", "train.ema_decay=0.5", "data.crop=32",
          "data.augmentation=strong"]


def test_cosine_schedule_warms_up_then_decays_to_its_floor():
    rates = [learning_rate_at(step, 20, 1e-3, "cosine", warmup_steps=4, final_fraction=0.05)
             for step in range(1, 21)]
    assert rates[:4] == pytest.approx([2.5e-4, 5e-4, 7.5e-4, 1e-3])
    assert all(a > b for a, b in zip(rates[3:], rates[4:]))  # strictly falling after the warm-up
    assert rates[-1] == pytest.approx(5e-5)
    assert learning_rate_at(7, 20, 1e-3, "constant") == 1e-3
    # Re-planned for a longer run, the same step gets a higher rate (the tail stretches).
    assert learning_rate_at(10, 40, 1e-3, "cosine") > learning_rate_at(10, 20, 1e-3, "cosine")
    with pytest.raises(ValueError, match="schedule must be one of"):
        learning_rate_at(1, 10, 1e-3, "linear")


def test_run_logs_the_scheduled_rate(tmp_path):
    run_training(tiny_settings("train.steps=6", "train.schedule=cosine", "train.warmup_steps=2",
                               "method.learning_rate=1e-3", "log.tensorboard=false"), tmp_path / "r",
                 say=lambda _: None)
    rows = list(csv.DictReader(open(tmp_path / "r" / "losses.csv")))
    logged = [float(row["learning_rate"]) for row in rows]
    assert logged == pytest.approx([learning_rate_at(s, 6, 1e-3, "cosine", 2) for s in range(1, 7)], rel=1e-5)


def test_a_stopped_and_resumed_recipe_run_equals_an_uninterrupted_one(tmp_path):
    extra = ["train.steps=12", "log.tensorboard=false", *RECIPE]
    straight = run_training(tiny_settings(*extra), tmp_path / "straight", say=lambda _: None)
    run_dir = tmp_path / "split"
    args = [arg for item in [*TINY, *extra] for arg in ("--set", item)]
    process = subprocess.Popen([sys.executable, str(TRAIN), *args, "--run-dir", str(run_dir)], cwd=REPO,
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # Ctrl-C once training is under way
        if line.startswith("step 2/12"):
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 130, stderr
    stopped_at = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["trainer"]["step"]
    assert 2 <= stopped_at < 12
    resumed = run_training(tiny_settings(*extra), run_dir, resume=True, say=lambda _: None)
    assert straight.step == resumed.step == 12 and resumed.interrupted is None
    assert_same_weights(model_state(tmp_path / "straight"), model_state(run_dir))
    averages = [torch.load(folder / "checkpoints" / "last.pt", weights_only=True)["trainer"]["average"]
                for folder in (tmp_path / "straight", run_dir)]
    assert_same_weights(*averages)
    logs = [list(csv.DictReader(open(folder / "losses.csv"))) for folder in (tmp_path / "straight", run_dir)]
    for column in ("L_total", "learning_rate"):
        assert [r[column] for r in logs[0]] == [r[column] for r in logs[1]]


def test_the_bundle_holds_the_weight_average_not_the_last_weights(tmp_path):
    outcome = run_training(tiny_settings("train.steps=4", "validation.every=0", "train.ema_decay=0.5",
                                         "log.tensorboard=false"), tmp_path / "r", say=lambda _: None)
    trainer_state = torch.load(tmp_path / "r" / "checkpoints" / "last.pt", weights_only=True)["trainer"]
    shipped = load_bundle(outcome.bundle).model.state_dict()
    average = {k[len("module."):]: v for k, v in trainer_state["average"].items() if k.startswith("module.")}
    assert_same_weights(shipped, average)
    layer = "ftn.encoder.input_block.0.0.weight"
    assert not torch.equal(shipped[layer], trainer_state["model"][layer])


def test_weight_average_follows_the_weights_at_its_decay():
    config = CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS)
    trainer = CooperativeTrainer(config, "cpu", "fp32", ema_decay=0.75)
    images, labels = ring_slices(4, 32, seed=2)
    before = {k: v.clone() for k, v in trainer.model.state_dict().items()}
    trainer.train_step(images, labels)  # the first update copies the weights
    trainer.train_step(images, labels)
    after = trainer.model.state_dict()
    average = trainer.evaluation_model.state_dict()
    layer = "ftn.encoder.input_block.0.0.weight"
    assert not torch.equal(before[layer], after[layer])
    # Two updates: a = w1, then a = 0.75 w1 + 0.25 w2; w1 is not kept, but a lies strictly between w1 and w2.
    assert not torch.allclose(average[layer], after[layer])
    # A checkpoint written without averaging (an older run) resumes with the average starting at its weights.
    plain = CooperativeTrainer(config, "cpu", "fp32")
    plain.train_step(images, labels)
    trainer.load_state_dict(plain.state_dict())
    trainer.train_step(images, labels)
    resumed_average = trainer.evaluation_model.state_dict()
    assert torch.allclose(resumed_average[layer], trainer.model.state_dict()[layer])  # first update copies


def test_a_run_can_start_from_a_bundle(tmp_path, bundle):
    # The session bundle (conftest) has the small widths at 48 px; a run of that architecture starts from it.
    settings = tiny_settings("train.steps=1", "validation.every=0", "log.tensorboard=false",
                             "method.learning_rate=1e-12", f"train.init_from={bundle}")
    source = load_bundle(bundle).model
    assert source.config == settings.method.config().network
    run_training(settings, tmp_path / "r", say=lambda _: None)
    trained = model_state(tmp_path / "r")
    for name, value in source.named_parameters():
        assert torch.allclose(trained[name], value, atol=1e-6), name
    other = tiny_settings("train.steps=1", "validation.every=0", "log.tensorboard=false",
                          "method.widths=[8, 16, 32]", f"train.init_from={bundle}")
    with pytest.raises(CoopSegError, match="train.init_from"):
        run_training(other, tmp_path / "mismatch", say=lambda _: None)


@pytest.fixture(scope="module")
def phantom_dataset_parts():
    return phantom_cases(2, seed=31), VolumeCache()


def test_crops_hold_the_whole_labelled_heart_and_are_deterministic(phantom_dataset_parts):
    cases, cache = phantom_dataset_parts
    common = dict(spacing=2.8, size=96, cache=cache, augmenter=SliceAugmenter(), seed=3, paired=True)
    whole, cropped = SliceDataset(cases, **common), SliceDataset(cases, crop=48, **common)
    for index in range(0, len(whole), 3):
        full, crop = whole[index], cropped[index]
        assert crop["image"].shape == (1, 48, 48) and crop["image_clean"].shape == (1, 48, 48)
        # Crops draw after the augmentation: the same slice, augmented alike, minus background.
        for key in ("label", "label_clean"):
            assert torch.equal(torch.bincount(crop[key].flatten(), minlength=4)[1:],
                               torch.bincount(full[key].flatten(), minlength=4)[1:])
        assert torch.equal(crop["image"], cropped[index]["image"])
    with pytest.raises(CoopSegError, match="crop"):
        SliceDataset(cases, crop=128, **common)


def test_crop_windows_vary_and_centre_a_heart_too_large_for_them():
    label = torch.zeros(64, 64, dtype=torch.long)
    label[20:30, 30:40] = 1
    generator = torch.Generator().manual_seed(0)
    windows = {heart_crop_window(label, 32, generator) for _ in range(40)}
    assert len(windows) > 10
    assert all(top <= 20 and top + 32 >= 30 and left <= 30 and left + 32 >= 40 for top, left in windows)
    label[2:62, 30:40] = 2  # taller than the window: centred on it
    assert heart_crop_window(label, 32, generator)[0] == 16


def test_strong_augmentation_changes_intensities_only_and_repeats_for_a_seed():
    images, labels = ring_slices(6, 48, seed=4)
    paper, strong = SliceAugmenter(), SliceAugmenter(intensity=IntensityAugmenter())
    paper_out = paper(images[:, 0], labels, torch.Generator().manual_seed(9))
    strong_out = strong(images[:, 0], labels, torch.Generator().manual_seed(9))
    again = strong(images[:, 0], labels, torch.Generator().manual_seed(9))
    assert torch.equal(paper_out[1], strong_out[1])  # the same geometry: labels untouched
    assert torch.equal(strong_out[0], again[0])
    assert float(strong_out[0].amin()) == 0.0 and float(strong_out[0].amax()) == 1.0
    # Always-on transforms: every slice changes.
    always = IntensityPolicy(noise_probability=1, blur_probability=1, contrast_probability=1,
                             low_resolution_probability=1, gamma_probability=1)
    out = torch.stack([IntensityAugmenter(always)(image, torch.Generator().manual_seed(i))
                       for i, image in enumerate(images)])
    assert not torch.allclose(out, images, atol=1e-3)


def test_gaussian_blur_keeps_the_mean_and_removes_fine_texture():
    stripes = (torch.arange(64) % 2).float().repeat(64, 1)[None]  # one-pixel stripes: the finest texture
    blurred = gaussian_blur(stripes, 1.5)
    assert float(blurred.mean()) == pytest.approx(float(stripes.mean()), abs=1e-3)
    assert float(blurred.std()) < 0.05 * float(stripes.std())


@pytest.mark.parametrize("override, message", [
    ("train.schedule=step", "train.schedule must be one of"),
    ("data.crop=30", "data.crop must be a multiple of 8"),
    ("data.crop=96", "data.crop must be a multiple of 8 between 8 and data.size"),
    ("train.ema_decay=1.0", "train.ema_decay must lie strictly between 0 and 1"),
    ("data.augmentation=heavy", "data.augmentation must be one of none, paper, strong"),
    ("train.warmup_steps=-1", "train.warmup_steps must not be negative"),
    ("train.init_from=/no/such/bundle", "train.init_from: no model bundle folder"),
])
def test_recipe_settings_are_checked(override, message):
    with pytest.raises(ConfigError, match=re.escape(message)):
        TrainingSettings.from_mapping({}, [f"method.widths={list(SMALL_WIDTHS)}", "data.size=48", override])


def test_old_settings_files_keep_their_meaning():
    settings = TrainingSettings.from_mapping({"data": {"augmentation": False}})
    assert settings.data.augmentation is False and settings.train.schedule == "constant"
    assert settings.data.crop is None and settings.train.ema_decay is None


def test_warmed_up_average_moves_at_the_warm_up_decay_then_the_full_one():
    from CoopSegLib.cooperative.weight_average import warmed_decay

    config = CooperativeConfig.variant("cooperative", widths=SMALL_WIDTHS)
    images, labels = ring_slices(4, 32, seed=2)
    layer = "ftn.encoder.input_block.0.0.weight"
    warm = CooperativeTrainer(config, "cpu", "fp32", ema_decay=0.999, ema_warmup=True)
    warm.train_step(images, labels)  # the first update copies the weights
    first = warm.model.state_dict()[layer].clone()
    warm.train_step(images, labels)
    second = warm.model.state_dict()[layer]
    expected = first + (1 - warmed_decay(0.999, 1)) * (second - first)  # decay 2/11, not 0.999
    assert torch.allclose(warm.evaluation_model.state_dict()[layer], expected, atol=1e-7)
    # Far into a run the warm-up has ended: the decay is the configured one.
    assert warmed_decay(0.999, 50_000) == 0.999 and warmed_decay(0.999, 100) < 0.92
    # A checkpoint keeps the warm-up: the restored average continues at the same decay schedule.
    resumed = CooperativeTrainer(config, "cpu", "fp32", ema_decay=0.999, ema_warmup=True)
    resumed.load_state_dict(warm.state_dict())
    assert int(resumed.average.n_averaged) == 2


def test_a_resume_with_a_new_length_follows_the_new_plan_from_where_it_stopped(tmp_path):
    """How issue 31's campaign fitted its schedule to the CPU budget (``--resume RUN --set train.steps=N``): the rate
    is a function of the step and the planned length alone, so after the resume it is the new plan's."""
    extra = ["train.schedule=cosine", "train.warmup_steps=1", "method.learning_rate=1e-3", "log.tensorboard=false",
             "validation.every=0"]
    run_dir = tmp_path / "r"
    run_training(tiny_settings("train.steps=3", *extra), run_dir, say=lambda _: None)
    outcome = run_training(load_run_settings(run_dir, ["train.steps=6"]), run_dir, resume=True, say=lambda _: None)
    assert outcome.step == 6
    logged = [float(row["learning_rate"]) for row in csv.DictReader(open(run_dir / "losses.csv"))]
    assert logged[:3] == pytest.approx([learning_rate_at(s, 3, 1e-3, "cosine", 1) for s in (1, 2, 3)], rel=1e-5)
    assert logged[3:] == pytest.approx([learning_rate_at(s, 6, 1e-3, "cosine", 1) for s in (4, 5, 6)], rel=1e-5)
    assert load_bundle(outcome.bundle).metadata["training"]["steps"] == 6  # the bundle records the plan it ended on
