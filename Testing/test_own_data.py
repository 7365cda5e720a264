"""Training on one's own files: a pairs CSV of real ACDC-coded label maps is read with LV and RV where they belong
(codes detected by the shipped model, or declared), ambiguous codes stop the run before training, and the
own_data configuration trains from the shipped model through train.py."""

from __future__ import annotations

import os
import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from CoopSegLib.data.labels import ACDC_TO_CANONICAL, remap_labels
from CoopSegLib.errors import CoopSegError
from CoopSegLib.training.run_data import read_cases
from CoopSegLib.training.settings import TrainingSettings
from data_helpers import ACDC_ROOT, REPO, needs_acdc

# The shipped model's validation subjects: fine-tuning it may validate on them (a run never validates on a subject
# its starting weights were trained on).
SUBJECTS = ("patient006", "patient042")
TRAIN = REPO / "Training" / "train.py"
# Two steps of the own_data recipe from the shipped model, as small as it goes: one slice per step in 32 px crops,
# one validation volume at the end, no TensorBoard, no calibration.
TINY = ["train.steps=2", "train.batch_size=1", "data.crop=32", "data.n_validation=1", "validation.every=0",
        "validation.images=false", "log.tensorboard=false"]


def pairs_csv(folder, label_of=lambda path: path):
    """A CSV of the ED frames of SUBJECTS and their _gt files (``label_of`` may write another label file)."""
    lines = ["image,label"]
    for subject in SUBJECTS:
        image = ACDC_ROOT / subject / f"{subject}_frame01.nii.gz"
        lines.append(f"{image},{label_of(ACDC_ROOT / subject / f'{subject}_frame01_gt.nii.gz')}")
    path = folder / "cases.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def settings_for(csv, *overrides):
    return TrainingSettings.from_yaml(REPO / "Training" / "configs" / "own_data.yaml",
                                      [f"data.root={csv}", "train.device=cpu", *overrides])


def stored_labels(subject):
    return np.asarray(nib.load(str(ACDC_ROOT / subject / f"{subject}_frame01_gt.nii.gz")).dataobj)


@needs_acdc
def test_acdc_coded_pairs_are_read_with_lv_and_rv_in_place(tmp_path, capsys):
    csv = pairs_csv(tmp_path)
    detected = {case.subject: case.label.array for case in read_cases(settings_for(csv))}
    assert "reference codes: acdc, detected" in capsys.readouterr().err
    declared = {case.subject: case.label.array for case in read_cases(settings_for(csv, "data.label_codes=acdc"))}
    as_canonical = {c.subject: c.label.array for c in read_cases(settings_for(csv, "data.label_codes=canonical"))}
    for subject in SUBJECTS:
        stored = stored_labels(subject)
        expected = remap_labels(stored, ACDC_TO_CANONICAL)
        assert (stored == 3).any() and np.array_equal(expected == 1, stored == 3)  # ACDC's 3 is the LV cavity
        np.testing.assert_array_equal(detected[subject], expected)
        np.testing.assert_array_equal(declared[subject], expected)
        np.testing.assert_array_equal(as_canonical[subject], stored)  # declared codes are obeyed, not second-guessed


def mixed_codes(folder):
    """Writes each _gt with LV and RV swapped on every other slice: neither coding explains the file."""
    def write(path):
        image = nib.load(str(path))
        labels = np.asarray(image.dataobj).copy()
        odd = labels[..., 1::2]
        labels[..., 1::2] = np.where(odd == 1, 3, np.where(odd == 3, 1, odd))
        out = folder / path.name
        nib.save(nib.Nifti1Image(labels, image.affine, image.header), str(out))
        return out
    return write


def train_py(*args):
    environment = {**os.environ, "OMP_NUM_THREADS": "2",
                   "PYTHONPATH": os.pathsep.join([str(REPO), os.environ.get("PYTHONPATH", "")])}
    return subprocess.run([sys.executable, str(TRAIN), *args], capture_output=True, text=True, timeout=900,
                          cwd=REPO, env=environment)


@needs_acdc
def test_ambiguous_label_codes_stop_the_run_before_training(tmp_path):
    csv = pairs_csv(tmp_path, mixed_codes(tmp_path))
    with pytest.raises(CoopSegError, match=r"cannot tell how the references are coded.*--set data\.label_codes=acdc"):
        read_cases(settings_for(csv))
    result = train_py("--config", "own_data", "--data", str(csv), "--device", "cpu",
                      "--output-root", str(tmp_path / "runs"))
    assert result.returncode == 2 and "Traceback" not in result.stderr
    (line,) = result.stderr.strip().splitlines()
    assert line.startswith("train.py: error: cannot tell how the references are coded") and "label_codes" in line
    assert not (tmp_path / "runs").exists()


@needs_acdc
def test_own_data_config_fine_tunes_the_shipped_model_on_acdc_coded_pairs(tmp_path):
    csv = pairs_csv(tmp_path)
    overrides = [value for override in TINY for value in ("--set", override)]
    result = train_py("--config", "own_data", "--data", str(csv), "--device", "cpu", *overrides,
                      "--run-dir", str(tmp_path / "run"), "--no-calibrate")
    assert result.returncode == 0, result.stderr[-3000:]
    assert "reference codes: acdc, detected" in result.stderr
    assert "1 training subjects" in result.stdout and "steps 0 -> 2" in result.stdout
    assert (tmp_path / "run" / "model.coopseg" / "metadata.json").is_file()


def test_an_nnunet_folder_takes_its_dataset_json_names_unless_told_otherwise(tmp_path):
    from CoopSegLib.data.nifti import write_nifti

    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    stored = np.zeros((8, 8, 2), np.uint8)
    stored[1:3], stored[3:5], stored[5:7] = 1, 2, 3  # RV, MLV, LVC as nnU-Net's ACDC task names them
    image = np.random.default_rng(0).integers(0, 900, stored.shape).astype(np.int16)
    write_nifti(image, np.eye(4), tmp_path / "imagesTr" / "case_001_0000.nii.gz")
    write_nifti(stored, np.eye(4), tmp_path / "labelsTr" / "case_001.nii.gz")
    (tmp_path / "dataset.json").write_text('{"labels": {"background": 0, "RV": 1, "MLV": 2, "LVC": 3}}')
    settings = TrainingSettings.from_mapping({"data": {"format": "nnunet", "root": str(tmp_path)}})
    (named,) = read_cases(settings)  # no detection needed: the names say it
    np.testing.assert_array_equal(named.label.array, remap_labels(stored, ACDC_TO_CANONICAL))
    (declared,) = read_cases(TrainingSettings.from_mapping(
        {"data": {"format": "nnunet", "root": str(tmp_path), "label_codes": "canonical"}}))
    np.testing.assert_array_equal(declared.label.array, stored)
