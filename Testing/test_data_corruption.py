"""``coopseg corrupt``: TorchIO artefacts on the input's exact grid, deterministic, no partial outputs."""

from __future__ import annotations

import subprocess
import sys

import nibabel as nib
import numpy as np
import pytest

from CoopSegLib.cli import main
from CoopSegLib.data.corruption import CORRUPTIONS, corrupt_volume
from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.phantom import phantom_subject
from data_helpers import REPO

HEADER_FIELDS = ("dim", "pixdim", "qform_code", "sform_code", "srow_x", "srow_y", "srow_z",
                 "quatern_b", "quatern_c", "quatern_d", "qoffset_x", "qoffset_y", "qoffset_z")


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inputs")
    paths = []
    for seed in (41, 42):
        case = phantom_subject(seed, frames=("ES",))[0]
        array = case.image.array[::2, ::2, :6].copy()  # small volumes keep the test fast
        affine = case.image.affine @ np.diag([2.0, 2.0, 1.0, 1.0])
        image = nib.Nifti1Image(array, affine)
        image.header.set_qform(affine @ np.diag([1, 1, 1, 1.0]), code=1)
        path = folder / f"case{seed}.nii.gz"
        nib.save(image, str(path))
        paths.append(path)
    return paths


@pytest.mark.parametrize("kind", sorted(set(CORRUPTIONS) - {"spike_paper"}))  # 0 or 1 spikes: tested below
def test_each_kind_writes_copies_on_the_input_grid(inputs, tmp_path, kind, capsys):
    status = main(["corrupt", *map(str, inputs), "--output-dir", str(tmp_path / "out"), "--kind", kind,
                   "--copies", "2", "--seed", "7"])
    assert status == 0
    names = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert names == sorted(f"case{s}_{kind}_{c}.nii.gz" for s in (41, 42) for c in (1, 2))
    assert len(capsys.readouterr().out.splitlines()) == 4
    original = nib.load(str(inputs[0]))
    first = nib.load(str(tmp_path / "out" / f"case41_{kind}_1.nii.gz"))
    second = nib.load(str(tmp_path / "out" / f"case41_{kind}_2.nii.gz"))
    for field in HEADER_FIELDS:
        np.testing.assert_array_equal(first.header[field], original.header[field], err_msg=field)
    # The geometry is kept, the data type is not (the help says so): float32 holds the artefacts' exact values.
    assert original.get_data_dtype() == np.int16 and first.get_data_dtype() == np.float32
    data, copy2, clean = first.get_fdata(), second.get_fdata(), original.get_fdata()
    assert data.shape == clean.shape and np.isfinite(data).all()
    assert np.abs(data - clean).mean() > 1e-3 * clean.mean()  # it did corrupt
    assert not np.array_equal(data, copy2)  # copies differ
    if kind != "motion":  # 30-degree motion can scramble a small volume beyond recognition
        assert np.corrcoef(data.ravel(), clean.ravel())[0, 1] > 0.2  # still the same anatomy


def test_the_papers_spike_setting_leaves_some_copies_untouched(inputs, tmp_path):
    # TorchIO reads the authors' num_spikes=1 as 0 or 1 spikes; "spike" asks for exactly one.
    main(["corrupt", str(inputs[0]), "--output-dir", str(tmp_path / "out"), "--kind", "spike_paper", "--copies", "8",
          "--seed", "3"])
    clean = nib.load(str(inputs[0])).get_fdata()
    changed = [not np.allclose(nib.load(str(path)).get_fdata(), clean, atol=1e-3 * np.abs(clean).max())
               for path in sorted((tmp_path / "out").iterdir())]
    assert len(changed) == 8 and 0 < sum(changed) < 8


def test_same_seed_same_files_regardless_of_input_order(inputs, tmp_path):
    main(["corrupt", str(inputs[0]), str(inputs[1]), "--output-dir", str(tmp_path / "a"), "--kind", "ghosting",
          "--copies", "1", "--seed", "3"])
    main(["corrupt", str(inputs[1]), str(inputs[0]), "--output-dir", str(tmp_path / "b"), "--kind", "ghosting",
          "--copies", "1", "--seed", "3"])
    main(["corrupt", str(inputs[0]), "--output-dir", str(tmp_path / "c"), "--kind", "ghosting", "--copies", "1",
          "--seed", "4"])
    a = nib.load(str(tmp_path / "a" / "case41_ghosting_1.nii.gz")).get_fdata()
    b = nib.load(str(tmp_path / "b" / "case41_ghosting_1.nii.gz")).get_fdata()
    c = nib.load(str(tmp_path / "c" / "case41_ghosting_1.nii.gz")).get_fdata()
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


def test_bias_field_is_exp_of_a_cubic_polynomial():
    """RandomBiasField(coefficients=0.5, order=3): the image times exp(polynomial of degree <= 3 in x, y, z)."""
    rng = np.random.default_rng(0)
    array = rng.uniform(50, 100, (24, 20, 5)).astype(np.float32)
    out = corrupt_volume(Volume(array, np.diag([1.5, 1.5, 8.0, 1.0])), "bias", seed=1)
    log_field = np.log(out / array)
    assert log_field.std() > 0.05
    x, y, z = np.meshgrid(*(np.linspace(-1, 1, n) for n in array.shape), indexing="ij")
    terms = [x**i * y**j * z**k for i in range(4) for j in range(4 - i) for k in range(4 - i - j)]
    design = np.stack([t.ravel() for t in terms], axis=1)
    coefficients, *_ = np.linalg.lstsq(design, log_field.ravel(), rcond=None)
    assert np.abs(design @ coefficients - log_field.ravel()).max() < 1e-3
    assert np.abs(coefficients[1:]).max() <= 0.5 + 1e-3


def test_spike_always_adds_exactly_one_spike():
    array = np.random.default_rng(2).uniform(0, 100, (16, 16, 4)).astype(np.float32)
    volume = Volume(array, np.eye(4))
    for seed in range(6):
        spectrum = np.fft.fftn(corrupt_volume(volume, "spike", seed) - array)
        assert np.abs(spectrum).max() > 10 * np.median(np.abs(spectrum)) > 0


def test_errors_are_one_line_and_leave_nothing_behind(inputs, tmp_path):
    missing = tmp_path / "nope.nii.gz"
    command = [sys.executable, "-m", "CoopSegLib", "corrupt", str(inputs[0]), str(missing),
               "--output-dir", str(tmp_path / "out"), "--kind", "spike"]
    result = subprocess.run(command, capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [f"coopseg corrupt: error: {missing}: file not found"]
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())
    (tmp_path / "four.nii.gz").write_bytes(b"")
    nib.save(nib.Nifti1Image(np.zeros((4, 4, 4, 3), np.int16), np.eye(4)), str(tmp_path / "four.nii.gz"))
    assert main(["corrupt", str(tmp_path / "four.nii.gz"), "--output-dir", str(tmp_path / "out"),
                 "--kind", "bias"]) == 2
    assert main(["corrupt", str(inputs[0]), "--output-dir", str(tmp_path / "o"), "--kind", "bias",
                 "--copies", "0"]) == 2
    with pytest.raises(SystemExit):
        main(["corrupt", str(inputs[0]), "--output-dir", str(tmp_path / "o"), "--kind", "blur"])
