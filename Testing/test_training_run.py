"""Training runs end to end on the phantom: the default command, exact resumes, Ctrl-C, torchrun, bad input."""

import csv
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from CoopSegLib.bundle import load_bundle
from CoopSegLib.data import phantom_cases, phantom_subject, prepare_case
from CoopSegLib.inference import Segmenter
from CoopSegLib.inference.quality import uses_flip
from CoopSegLib.inference.slice_predictor import SlicePredictor
from CoopSegLib.runtime import Runtime
from CoopSegLib.training.loop import run_training
from CoopSegLib.training.settings import TrainingSettings, read_yaml
from CoopSegLib.training.validation import validate

from toy_slices import SMALL_WIDTHS
from data_helpers import ACDC_ROOT as ACDC, REPO, dice

TRAIN = REPO / "Training" / "train.py"
# The default run, shrunk: same code path, small networks and slices, a few steps.
TINY = ["data.phantom_subjects=3", "data.n_validation=1", "data.size=48", f"method.widths={list(SMALL_WIDTHS)}",
        "train.batch_size=4", "log.every=1", "validation.every=2", "checkpoint.every=100"]


def tiny_settings(*extra, output_root=None):
    return TrainingSettings.from_mapping({}, [*TINY, *extra, f"output_root={output_root or 'runs'}"])


def train_py(*args, timeout=300, **kwargs):
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, timeout=timeout,
                          cwd=kwargs.pop("cwd", REPO), **kwargs)


def model_state(run_dir):
    return torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["trainer"]["model"]


def assert_same_weights(a, b):
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def test_default_command_trains_writes_a_bundle_and_says_how_to_use_it(tmp_path):
    result = train_py(*[arg for item in TINY for arg in ("--set", item)], "--set", "train.steps=4",
                      "--output-root", str(tmp_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    at = next(index for index, line in enumerate(lines) if line.startswith("model bundle: "))
    assert "coopseg segment" in lines[at + 1]
    bundle_path = Path(lines[at].split(": ", 1)[1])
    assert bundle_path.name == "model.coopseg" and bundle_path.parent.parent == tmp_path
    run_dir = bundle_path.parent
    assert run_dir.name.startswith("phantom_default-")
    assert f"--model {bundle_path}" in lines[at + 1]
    # It ends with the demo: the bundle segments a phantom subject it never saw (subjects 0-2 trained and
    # validated it), through the inference code, with the Dice and a picture of input, FTN and FTN+STN.
    assert lines[-2].startswith("demo: the phantom demo model on phantom subject 3 (ED), never seen in training")
    (case,) = phantom_subject(3, frames=("ED",))
    segmentation = Segmenter(bundle_path, device="cpu").segment(case.image.array, case.image.affine)
    for stage, labels in (("FTN", segmentation.initial), ("FTN+STN", segmentation.refined)):
        expected = np.mean([dice(labels == code, case.label.array == code) for code in (1, 2, 3)])
        assert f"{stage} {expected:.2f}" in lines[-2]
    picture = Path(lines[-1].split("picture (input, FTN, FTN+STN): ", 1)[1])
    assert picture == run_dir / "demo.png" and picture.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert "step 4/4" in result.stderr  # progress lines (no terminal: plain lines)

    bundle = load_bundle(bundle_path)
    assert bundle.metadata["preprocessing"]["size"] == 48
    assert bundle.metadata["training"]["steps"] == 4 and bundle.metadata["training"]["run"] == "phantom_default"
    assert tuple(bundle.metadata["network"]["widths"]) == SMALL_WIDTHS and "architecture" not in bundle.metadata
    assert bundle.metadata["training"]["objective"]["hard_examples"]  # the training settings, apart from the network
    # The bundle holds the best validated weights: scoring them again gives the Dice recorded for that step.
    best = bundle.metadata["training"]["weights_from_step"]
    rows = list(csv.DictReader(open(run_dir / "validation.csv")))
    assert [int(r["step"]) for r in rows] == [2, 4]
    recorded = next(float(r["stn_mean"]) for r in rows if int(r["step"]) == best)
    assert max(float(r["stn_mean"]) for r in rows) == recorded
    assert len(list(csv.DictReader(open(run_dir / "losses.csv")))) == 4
    assert "| FTN+STN |" in (run_dir / "report.md").read_text()
    # train.py calibrated the bundle's quality estimate on the run's own validation subject, and only on it.
    validation = bundle.metadata["training"]["data"]["validation_subjects"]
    assert bundle.metadata["quality"]["fitted_on"]["subjects"] == sorted(validation) and len(validation) == 1
    assert uses_flip(bundle.metadata["quality"], "stn")  # with the flipped look, as the shipped calibration


def test_tensorboard_has_the_papers_loss_names_dice_and_pictures(tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    outcome = run_training(tiny_settings("train.steps=2", output_root=tmp_path), tmp_path / "run", say=lambda _: None)
    events = EventAccumulator(str(outcome.run_dir / "tensorboard"), size_guidance={"images": 0}).Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"L_std/L_rec", "L_std/L_seg", "L_std/L_shp_pred", "L_std/L_shp_gt", "L_hard/L_rec", "L_hard/L_seg",
            "L_hard/L_shp_pred", "L_hard/L_shp_corrupt", "L_total", "dice_FTN/myo", "dice_FTN+STN/rv"} <= scalars
    assert {f"examples/{name}" for name in ("1_input", "3_corrupted_image", "4_corrupted_segmentation", "5_FTN",
                                            "6_FTN+STN")} <= set(events.Tags()["images"])


def test_resume_continues_exactly(tmp_path):
    straight = run_training(tiny_settings("train.steps=5"), tmp_path / "straight", say=lambda _: None)
    run_training(tiny_settings("train.steps=3"), tmp_path / "split", say=lambda _: None)
    resumed = run_training(tiny_settings("train.steps=5"), tmp_path / "split", resume=True, say=lambda _: None)
    assert straight.step == resumed.step == 5
    assert_same_weights(model_state(tmp_path / "straight"), model_state(tmp_path / "split"))
    losses = [list(csv.DictReader(open(tmp_path / run / "losses.csv"))) for run in ("straight", "split")]
    assert [r["L_total"] for r in losses[0]] == [r["L_total"] for r in losses[1]]


def test_ctrl_c_saves_a_checkpoint_that_resumes_exactly(tmp_path):
    run_dir = tmp_path / "interrupted"
    args = [*[arg for item in TINY for arg in ("--set", item)], "--set", "train.steps=500", "--run-dir", str(run_dir)]
    process = subprocess.Popen([sys.executable, str(TRAIN), *args], cwd=REPO, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True)
    for line in process.stderr:  # wait until training is under way
        if line.startswith("step 2/500"):
            break
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "stopped by SIGINT" in stdout and f"--resume {run_dir}" in stdout
    step = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)["trainer"]["step"]
    assert 2 <= step < 500 and not (run_dir / "model.coopseg").exists()

    result = train_py("--resume", str(run_dir), "--set", f"train.steps={step + 2}")
    assert result.returncode == 0, result.stderr
    straight = run_training(tiny_settings(f"train.steps={step + 2}"), tmp_path / "straight", say=lambda _: None)
    assert straight.step == step + 2
    assert_same_weights(model_state(tmp_path / "straight"), model_state(run_dir))


def test_same_seed_same_weights_other_seed_other_weights(tmp_path):
    runs = [run_training(tiny_settings("train.steps=2", f"train.seed={seed}"), tmp_path / f"run{index}",
                         say=lambda _: None) for index, seed in enumerate((5, 5, 6))]
    states = [load_bundle(run.bundle).model.state_dict() for run in runs]
    assert_same_weights(states[0], states[1])
    first_layer = "ftn.encoder.input_block.0.0.weight"
    assert not torch.equal(states[0][first_layer], states[2][first_layer])


def test_two_processes_with_torchrun_and_gloo(tmp_path):
    run_dir = tmp_path / "ddp"
    command = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2", str(TRAIN),
               *[arg for item in TINY for arg in ("--set", item)], "--set", "train.steps=3", "--device", "cpu",
               "--run-dir", str(run_dir)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    result = subprocess.run(command, cwd=REPO, capture_output=True, text=True, timeout=300, env=env)
    assert result.returncode == 0, result.stderr[-3000:]
    assert result.stdout.count("model bundle: ") == 1  # rank 0 alone reports and writes
    assert "x 2 processes" in result.stdout
    checkpoint = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True)
    assert checkpoint["world_size"] == 2 and len(checkpoint["rng"]) == 2
    assert not torch.equal(checkpoint["rng"][0]["torch"], checkpoint["rng"][1]["torch"])  # own noise per process
    assert len(list(csv.DictReader(open(run_dir / "losses.csv")))) == 3
    # Each process takes half of every epoch.
    found = re.search(r"(\d+) slices \((\d+) steps per epoch per process\)", result.stdout)
    assert int(found.group(2)) == int(found.group(1)) // 2 // 4
    bundle = load_bundle(run_dir / "model.coopseg")
    assert bundle.metadata["training"]["processes"] == 2


@pytest.mark.parametrize("config", sorted(p.stem for p in (REPO / "Training" / "configs").glob("*.yaml")))
def test_every_shipped_config_takes_a_step_on_the_phantom(config, tmp_path):
    path = REPO / "Training" / "configs" / f"{config}.yaml"
    crops = ["data.crop=32"] if (read_yaml(path).get("data") or {}).get("crop") else []  # inside the 64 px slices
    settings = TrainingSettings.from_yaml(
        path, ["data.format=phantom", "data.split=all", "data.phantom_subjects=2", "data.n_validation=1",
               "data.size=64", "train.steps=1", "train.batch_size=2", "log.tensorboard=false",
               "data.label_codes=null", f"output_root={tmp_path}", *crops])  # the phantom: canonical codes
    outcome = run_training(settings, tmp_path / config, say=lambda _: None)
    assert outcome.step == 1 and outcome.bundle is not None
    bundle = load_bundle(outcome.bundle)
    assert bundle.model.config == settings.method.config().network
    volume = prepare_case(phantom_cases(1, seed=50)[0], settings.data.spacing_mm, 64)
    prediction = bundle.model.predict(torch.from_numpy(volume.image[:2, None]))
    assert prediction.refined.shape == (2, 4, 64, 64) and torch.isfinite(prediction.refined).all()


def test_a_stopped_run_is_finished_into_a_float16_bundle(tmp_path):
    # What finishing an interrupted run at its last checkpoint looks like: resume with train.steps at that step.
    first = run_training(tiny_settings("train.steps=4"), tmp_path / "r", say=lambda _: None)
    full_size = (first.bundle / "weights.pt").stat().st_size
    weights_before = model_state(tmp_path / "r")
    again = run_training(tiny_settings("train.steps=4", "checkpoint.bundle_storage=float16"), tmp_path / "r",
                         resume=True, say=lambda _: None)
    assert again.step == 4 and again.best_step == first.best_step  # no further training, same selection
    assert_same_weights(weights_before, model_state(tmp_path / "r"))
    bundle = load_bundle(again.bundle)
    assert bundle.metadata["weights"]["storage"] == "float16"
    assert (again.bundle / "weights.pt").stat().st_size < 0.6 * full_size


def test_bundle_from_training_predicts_as_the_trainer_validated(tmp_path):
    settings = tiny_settings("train.steps=2", "validation.every=0", "train.precision=fp32")
    outcome = run_training(settings, tmp_path / "r", say=lambda _: None)
    bundle = load_bundle(outcome.bundle)
    held_out = bundle.metadata["training"]["data"]["validation_subjects"]
    volumes = [prepare_case(case, settings.data.spacing_mm, settings.data.size)
               for case in phantom_cases(3, seed=0) if case.subject in held_out]
    assert len(volumes) == 2  # ED and ES of the held-out subject

    # validate() takes a slice predictor: score the loaded bundle the way training scored its weights.
    predictor = SlicePredictor(bundle.model, Runtime.create("cpu", "fp32", channels_last=False))
    assert validate(predictor, volumes).row() == pytest.approx(outcome.best.row(), abs=1e-3, nan_ok=True)

    # The inference engine takes the bundle as it is: its grid, its networks, any input geometry.
    segmenter = Segmenter(outcome.bundle, device="cpu", precision="fp32")
    assert (segmenter.spacing, segmenter.size) == (pytest.approx(settings.data.spacing_mm), settings.data.size)
    case = next(case for case in phantom_cases(3, seed=0) if case.subject in held_out)
    result = segmenter.segment(case.image.array, case.image.affine)
    assert result.refined.shape == result.initial.shape == case.image.shape
    assert result.refined.dtype == np.uint8 and set(np.unique(result.refined)) <= {0, 1, 2, 3}


def test_bad_data_folder_stops_before_training_with_one_line(tmp_path):
    result = train_py("--config", "paper_acdc10_cooperative", "--data", str(tmp_path / "nowhere"),
                      "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "nowhere: ACDC folder not found" in result.stderr
    assert not (tmp_path / "runs").exists()
    (tmp_path / "taken").mkdir()
    (tmp_path / "taken" / "config.yaml").write_text("name: other\n")
    result = train_py("--run-dir", str(tmp_path / "taken"))
    assert result.returncode == 2 and "taken: already holds a run; continue it with --resume" in result.stderr
    assert (tmp_path / "taken" / "config.yaml").read_text() == "name: other\n"
    result = train_py("--set", "train.batch_sise=3", "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "unknown setting train.batch_sise" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_a_gpu_is_a_setting_problem_found_before_the_data(tmp_path):
    from CoopSegLib.devices import NO_CUDA

    result = train_py("--device", "cuda", "--set", "train.steps=2", "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2 and result.stderr.strip().splitlines() == [
        f"train.py: error: the embedded default: train.device: {NO_CUDA}"]
    # With a data folder that does not exist: the device is named, so nothing was read yet.
    result = train_py("--config", "paper_acdc10_cooperative", "--data", str(tmp_path / "nowhere"), "--device", "gpu",
                      "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2 and NO_CUDA in result.stderr and "nowhere" not in result.stderr
    assert result.stderr.strip().count("\n") == 0 and not (tmp_path / "runs").exists()


@pytest.mark.skipif(not ACDC.is_dir(), reason="real ACDC data not found at ../shared/data")
def test_truncated_acdc_file_is_named_before_training(tmp_path):
    root = tmp_path / "ACDC"
    for subject in sorted(p.name for p in ACDC.iterdir())[:16]:
        (root / subject).mkdir(parents=True)
        for file in (ACDC / subject).iterdir():
            (root / subject / file.name).symlink_to(file)
    victim = sorted(root.glob("patient00[1-6]/*_frame01.nii.gz"))[0]
    victim.unlink()
    victim.write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    result = train_py("--config", "paper_acdc10_cooperative", "--data", str(root), "--set", "data.split=all",
                      "--set", "data.n_validation=1", "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2 and victim.name in result.stderr and "Traceback" not in result.stderr
    assert not (tmp_path / "runs").exists()


@pytest.mark.skipif(not ACDC.is_dir(), reason="real ACDC data not found at ../shared/data")
def test_paper_split_on_real_acdc_trains_and_validates(tmp_path):
    settings = TrainingSettings.from_yaml(
        REPO / "Training" / "configs" / "paper_acdc10_cooperative.yaml",
        [f"data.root={ACDC}", "train.steps=1", "train.batch_size=2", "log.tensorboard=false", "data.size=96",
         "data.spacing_mm=2.73438"])
    outcome = run_training(settings, tmp_path / "acdc", say=lambda _: None)
    bundle = load_bundle(outcome.bundle)
    record = bundle.metadata["training"]
    assert len(record["data"]["train_subjects"]) == 10 and len(record["data"]["validation_subjects"]) == 5
    assert not set(record["data"]["train_subjects"]) & set(record["data"]["validation_subjects"])
    assert set(outcome.best.dice["stn"]) == {"lv", "myo", "rv"}
    assert "patient" in (outcome.run_dir / "report.md").read_text()


def test_worker_processes_change_nothing_but_speed(tmp_path):
    runs = {workers: run_training(tiny_settings("train.steps=3", f"train.workers={workers}", "validation.every=0",
                                                "log.tensorboard=false"), tmp_path / f"w{workers}", say=lambda _: None)
            for workers in (0, 2)}
    assert_same_weights(model_state(runs[0].run_dir), model_state(runs[2].run_dir))
