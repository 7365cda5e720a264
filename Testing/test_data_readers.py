"""Readers on real NIfTI files written to a temporary folder: ACDC, M&Ms, nnU-Net folders, CSV pairs; splits."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest

from CoopSegLib.data.labels import ACDC_TO_CANONICAL, remap_labels
from CoopSegLib.data.nifti import header_affine, read_volume
from CoopSegLib.data.phantom import phantom_subject
from CoopSegLib.data.readers import read_acdc, read_mnms, read_nnunet, read_pairs_csv
from CoopSegLib.data.splits import ACDC_TEST_SUBJECTS, all_subjects_split, paper_split
from CoopSegLib.errors import CoopSegError

CANONICAL_TO_ACDC = np.array([0, 3, 2, 1], np.uint8)  # inverse of ACDC_TO_CANONICAL


def save(path, array, affine, odd_sform=False):
    """Write NIfTI; ``odd_sform`` mimics ACDC: sform with unit scales, true spacing only in pixdim, no qform."""
    if not odd_sform:
        nib.save(nib.Nifti1Image(array, affine), str(path))
        return
    spacing = np.linalg.norm(affine[:3, :3], axis=0)
    header = nib.Nifti1Header()
    header.set_data_dtype(array.dtype)
    header.set_data_shape(array.shape)
    header.set_sform(affine @ np.diag(list(1.0 / spacing) + [1.0]), code=2)
    header.set_qform(None, code=0)
    header.set_zooms(tuple(spacing) + tuple(header.get_zooms()[3:]))
    nib.save(nib.Nifti1Image(array, None, header=header), str(path))


@pytest.fixture(scope="module")
def subjects():
    return {seed: phantom_subject(seed) for seed in (11, 12)}


@pytest.fixture()
def acdc_root(tmp_path, subjects):
    for number, cases in zip((1, 2), subjects.values()):
        folder = tmp_path / f"patient{number:03d}"
        folder.mkdir()
        frames = {"ED": 1, "ES": 9 + number}
        (folder / "Info.cfg").write_text(f"ED: {frames['ED']}\nES: {frames['ES']}\nGroup: NOR\nNbFrame: 20\n")
        for case in cases:
            stem = folder / f"{folder.name}_frame{frames[case.frame]:02d}"
            save(f"{stem}.nii.gz", case.image.array, case.image.affine, odd_sform=True)
            save(f"{stem}_gt.nii.gz", CANONICAL_TO_ACDC[case.label.array], case.image.affine, odd_sform=True)
    return tmp_path


def test_acdc_reader_remaps_labels_and_reads_true_spacing(acdc_root, subjects):
    cases = read_acdc(acdc_root)
    assert [c.key for c in cases] == ["patient001_ED", "patient001_ES", "patient002_ED", "patient002_ES"]
    assert cases[3].metadata["frame_number"] == 11
    for case, truth in zip(cases, subjects[11] + subjects[12]):
        np.testing.assert_array_equal(case.label.array, truth.label.array)  # remapped back to canonical
        np.testing.assert_array_equal(case.image.array, truth.image.array)
        np.testing.assert_allclose(case.image.affine, truth.image.affine, atol=1e-5)  # pixdim, not the unit sform
        assert case.image.spacing[2] == pytest.approx(truth.metadata["thickness"], abs=1e-4)


def test_acdc_missing_ground_truth_names_the_file(acdc_root):
    (acdc_root / "patient002" / "patient002_frame11_gt.nii.gz").unlink()
    with pytest.raises(CoopSegError, match="patient002_frame11_gt.nii.gz: file not found"):
        read_acdc(acdc_root)
    assert len(read_acdc(acdc_root, ["patient001"])) == 2


def test_acdc_shape_affine_and_value_checks(acdc_root):
    gt = acdc_root / "patient001" / "patient001_frame01_gt.nii.gz"
    image = read_volume(acdc_root / "patient001" / "patient001_frame01.nii.gz")
    save(gt, np.zeros(image.shape[:2] + (image.shape[2] + 1,), np.uint8), image.affine)
    with pytest.raises(CoopSegError, match="patient001_frame01_gt.nii.gz: label shape"):
        read_acdc(acdc_root, ["patient001"])
    shifted = image.affine.copy()
    shifted[0, 3] += 5.0
    save(gt, np.zeros(image.shape, np.uint8), shifted)
    with pytest.raises(CoopSegError, match="patient001_frame01_gt.nii.gz: label geometry"):
        read_acdc(acdc_root, ["patient001"])
    bad = np.zeros(image.shape, np.uint8)
    bad[0, 0, 0] = 5
    save(gt, bad, image.affine)
    with pytest.raises(CoopSegError, match="patient001_frame01_gt.nii.gz: unknown label value"):
        read_acdc(acdc_root, ["patient001"])
    (acdc_root / "patient001" / "Info.cfg").write_text("Group: NOR\n")
    with pytest.raises(CoopSegError, match="Info.cfg: missing or non-integer 'ED:'"):
        read_acdc(acdc_root, ["patient001"])


def test_remap_labels():
    assert remap_labels(np.array([[0, 1], [2, 3]]), ACDC_TO_CANONICAL).tolist() == [[0, 3], [2, 1]]
    with pytest.raises(CoopSegError, match="x.nii: unknown label value.*0.5"):
        remap_labels(np.array([0.0, 0.5]), ACDC_TO_CANONICAL, "x.nii")


def test_header_affine_prefers_consistent_sform(tmp_path):
    affine = np.array([[0.0, -1.5, 0.0, 10.0], [1.5, 0.0, 0.0, -3.0], [0.0, 0.0, 8.0, 2.0], [0, 0, 0, 1]])
    save(tmp_path / "a.nii.gz", np.zeros((4, 5, 6), np.int16), affine)
    np.testing.assert_allclose(header_affine(nib.load(str(tmp_path / "a.nii.gz")).header), affine, atol=1e-6)
    save(tmp_path / "b.nii.gz", np.zeros((4, 5, 6), np.int16), affine, odd_sform=True)
    loaded = nib.load(str(tmp_path / "b.nii.gz"))
    assert np.allclose(np.linalg.norm(loaded.affine[:3, :3], axis=0), 1.0)  # what nibabel's .affine says
    np.testing.assert_allclose(header_affine(loaded.header), affine, atol=1e-6)


def test_mnms_reader_picks_ed_es_from_csv(tmp_path, subjects):
    for code, seed in (("A1B2C3", 11), ("Z9Y8X7", 12)):
        ed, es = subjects[seed]
        folder = tmp_path / "Training" / "Labeled" / code
        folder.mkdir(parents=True)
        frames = np.zeros(ed.image.shape + (6,), np.int16)
        labels = np.zeros(ed.image.shape + (6,), np.uint8)
        frames[..., 0], labels[..., 0] = ed.image.array, ed.label.array  # M&Ms codes are canonical
        frames[..., 4] = es.image.array  # ED and ES of a phantom subject share the grid
        labels[..., 4] = es.label.array
        save(folder / f"{code}_sa.nii.gz", frames, ed.image.affine)
        save(folder / f"{code}_sa_gt.nii.gz", labels, ed.image.affine)
    (tmp_path / "info.csv").write_text(
        "External code,VendorName,Vendor,Centre,ED,ES\nA1B2C3,Siemens,A,1,0,4\nZ9Y8X7,Philips,B,2,0,4\n"
    )
    cases = read_mnms(tmp_path)
    assert [c.key for c in cases] == ["A1B2C3_ED", "A1B2C3_ES", "Z9Y8X7_ED", "Z9Y8X7_ES"]
    assert cases[2].metadata["vendor"] == "B"
    np.testing.assert_array_equal(cases[0].label.array, subjects[11][0].label.array)
    np.testing.assert_array_equal(cases[1].label.array, subjects[11][1].label.array)
    (tmp_path / "info.csv").write_text("External code,ED,ES\nA1B2C3,0,9\n")
    with pytest.raises(CoopSegError, match="ES frame 9 beyond the 6 frames"):
        read_mnms(tmp_path, subjects=["A1B2C3"])


def test_nnunet_folder_maps_label_names(tmp_path, subjects):
    case = subjects[11][0]
    (tmp_path / "imagesTr").mkdir()
    (tmp_path / "labelsTr").mkdir()
    save(tmp_path / "imagesTr" / "patient011_frame01_0000.nii.gz", case.image.array, case.image.affine)
    save(tmp_path / "labelsTr" / "patient011_frame01.nii.gz", CANONICAL_TO_ACDC[case.label.array], case.image.affine)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"background": 0, "RV": 1, "MLV": 2, "LVC": 3}}))
    (read,) = read_nnunet(tmp_path)
    assert (read.subject, read.frame) == ("patient011", "frame01")
    np.testing.assert_array_equal(read.label.array, case.label.array)
    (tmp_path / "dataset.json").write_text(json.dumps({"labels": {"0": "background", "1": "liver"}}))
    with pytest.raises(CoopSegError, match="'liver' is not a known cardiac structure"):
        read_nnunet(tmp_path)


def test_csv_pairs(tmp_path, subjects):
    case = subjects[12][1]
    save(tmp_path / "img.nii.gz", case.image.array, case.image.affine)
    save(tmp_path / "lab.nii.gz", case.label.array, case.image.affine)
    (tmp_path / "pairs.csv").write_text("image,label,subject\nimg.nii.gz,lab.nii.gz,s1\nimg.nii.gz,,s2\n")
    first, second = read_pairs_csv(tmp_path / "pairs.csv")
    assert first.subject == "s1" and second.label is None
    np.testing.assert_array_equal(first.label.array, case.label.array)
    (tmp_path / "pairs.csv").write_text("image,label\nimg.nii.gz,missing.nii.gz\n")
    with pytest.raises(CoopSegError, match="missing.nii.gz: file not found"):
        read_pairs_csv(tmp_path / "pairs.csv")


def test_paper_split_is_subject_level_deterministic_and_excludes_test_subjects():
    subjects = [f"patient{n:03d}" for n in range(1, 101)]
    split = paper_split(subjects, seed=40)
    assert len(split.train) == 10 and len(split.validation) == 5
    assert not set(split.train) & set(split.validation)
    assert not (set(split.train) | set(split.validation)) & set(ACDC_TEST_SUBJECTS)
    assert split == paper_split(list(reversed(subjects)), seed=40)
    assert paper_split(subjects, seed=20).train != split.train
    pool = sorted(set(subjects) - set(ACDC_TEST_SUBJECTS))[:40]
    assert all(s in pool for s in split.train) and not set(split.validation) & set(pool)
    with pytest.raises(CoopSegError, match="needs 15 subjects"):
        paper_split(subjects[:12], seed=1)
    everything = all_subjects_split(subjects, n_validation=5, seed=3)
    assert len(everything.train) == 95 and len(set(everything.train) | set(everything.validation)) == 100
