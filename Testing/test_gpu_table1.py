"""Table 1 on a GPU, tested on the CPU: packed cases, the carry folder (Training/gpu_table1_pack.py) and a tiny
end-to-end run of the orchestration (Training/gpu_table1.py run): probe, plan, concurrent training, scoring, tables,
archives."""

import json
import subprocess
import sys
import tarfile
import zipfile

import numpy as np
import pytest

from CoopSegLib.data.packed import read_packed_case, write_packed_case
from CoopSegLib.data.readers import list_acdc_subjects, read_acdc, read_packed
from CoopSegLib.errors import CoopSegError
from toy_slices import SMALL_WIDTHS
from data_helpers import ACDC_ROOT, REPO, needs_acdc

sys.path.insert(0, str(REPO / "Training"))
import gpu_table1_pack  # noqa: E402  (Training/gpu_table1_pack.py)

TINY_SPLIT = ["data.n_train=1", "data.n_validation=1"]
TINY_RUN = ["data.size=48", f"method.widths={list(SMALL_WIDTHS)}", "train.batch_size=2", "validation.every=2",
            "checkpoint.every=100", "train.workers=0"]


def test_a_packed_case_reads_back_bit_for_bit_and_a_damaged_one_is_named(tmp_path):
    rng = np.random.default_rng(1)
    image = rng.integers(-50, 3000, (30, 20, 4)).astype(np.int16)
    label = rng.integers(0, 4, image.shape).astype(np.uint8)
    affine = np.diag([-1.5625, -1.5625, 10.0, 1.0])
    path = write_packed_case(tmp_path / "p1_ES.zip", image, affine, label, {"subject": "p1", "frame": "ES"})
    read_image, read_affine, read_label, record = read_packed_case(path)
    assert read_image.dtype == np.int16 and np.array_equal(read_image, image)
    assert np.array_equal(read_label, label) and np.array_equal(read_affine, affine) and record["subject"] == "p1"
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_LZMA}
    with pytest.raises(CoopSegError, match="does not match image"):
        write_packed_case(tmp_path / "bad.zip", image, affine, label[:2], {})
    assert not (tmp_path / "bad.zip").exists()
    (tmp_path / "broken.zip").write_bytes(path.read_bytes()[:100])
    with pytest.raises(CoopSegError, match="broken.zip: unreadable packed case"):
        read_packed_case(tmp_path / "broken.zip")


def test_subjects_interleave_over_the_acdc_groups():
    names = [f"patient{n:03d}" for n in (1, 2, 21, 22, 41, 81)]
    assert gpu_table1_pack.group_round_robin(names) == ["patient001", "patient021", "patient041", "patient081",
                                                        "patient002", "patient022"]


def test_corrupted_copies_are_rounded_to_int16_only_where_they_fit():
    values = np.array([[[-3.4, 0.6, 1200.5]]], dtype=np.float32)
    assert gpu_table1_pack.compact_copy(values).dtype == np.int16
    assert gpu_table1_pack.compact_copy(values).tolist() == [[[-3, 1, 1200]]]
    huge = np.array([[[1e6]]], dtype=np.float32)
    assert gpu_table1_pack.compact_copy(huge).dtype == np.float32


@pytest.fixture(scope="module")
def tiny_pack(tmp_path_factory):
    """A real pack of ACDC: fold 40 with 1 training and 1 validation subject, and 1 test subject."""
    if not ACDC_ROOT.is_dir():
        pytest.skip(f"real ACDC data not found at {ACDC_ROOT}")
    output = tmp_path_factory.mktemp("pack") / "table1"
    manifest = gpu_table1_pack.build_pack(ACDC_ROOT, output, seeds=(40,), overrides=TINY_SPLIT,
                                          max_test_subjects=1, say=lambda message: None)
    return output, manifest


@needs_acdc
def test_the_pack_holds_the_folds_exactly_and_fits_the_carry_limit(tiny_pack):
    from CoopSegLib.data.splits import paper_split
    from CoopSegLib.data.readers.packed import list_packed_subjects

    pack, manifest = tiny_pack
    expected = paper_split(list_acdc_subjects(ACDC_ROOT), 40, n_train=1, n_validation=1)
    fold = manifest["folds"]["40"]
    assert (tuple(fold["train"]), tuple(fold["validation"])) == (expected.train, expected.validation)
    # Splits drawn on the pack are those drawn on the ACDC folder (the pack lists every source subject).
    assert list_packed_subjects(pack / "cases") == list_acdc_subjects(ACDC_ROOT)
    (test,) = manifest["test_subjects"]
    assert test not in fold["train"] + fold["validation"]
    subjects = [*fold["train"], *fold["validation"], test]
    for packed, original in zip(read_packed(pack / "cases", subjects), read_acdc(ACDC_ROOT, subjects)):
        assert packed.key == original.key
        assert packed.image.array.dtype == original.image.array.dtype
        assert np.array_equal(packed.image.array, original.image.array)
        assert np.array_equal(packed.label.array, original.label.array)
        assert np.allclose(packed.image.affine, original.image.affine, atol=0)
    with pytest.raises(CoopSegError, match="patient100.* not packed"):
        read_packed(pack / "cases", ["patient100"])
    # The corrupted copies are TorchIO's, rounded to whole numbers (the same seeds as coopseg corrupt).
    from CoopSegLib.evaluation.test_sets import build_test_sets

    for case in build_test_sets(ACDC_ROOT, ("bias", "spike"), [test], copies=1, seed=0):
        image, _, label, record = read_packed_case(pack / "corrupted" / f"{case.key}.zip")
        assert record["set"] == case.set and np.array_equal(label, case.label.array)
        assert np.abs(image.astype(np.float32) - case.image.array).max() <= 0.5
    travelling = sum(manifest["bytes"].values())
    # The pack as counted before its manifest was written into it (the manifest is a few hundred bytes).
    assert 0 <= gpu_table1_pack.folder_bytes(pack) - manifest["bytes"]["pack"] < 2 ** 16
    # The tree as it was when packed; other tests may write a few untracked files meanwhile.
    assert abs(manifest["bytes"]["working_tree"] - gpu_table1_pack.working_tree_bytes()) < 2 ** 20
    assert travelling < 64 * 2 ** 20


@needs_acdc
def test_a_pack_over_its_budget_is_refused_and_leaves_nothing(tmp_path):
    with pytest.raises(CoopSegError, match="over the 1.0 MiB budget"):
        gpu_table1_pack.build_pack(ACDC_ROOT, tmp_path / "table1", seeds=(40,), overrides=TINY_SPLIT,
                                   budget_mib=1.0, say=lambda message: None)
    assert list(tmp_path.iterdir()) == []


@needs_acdc
def test_the_orchestration_runs_end_to_end_on_the_cpu(tiny_pack, tmp_path):
    pack, manifest = tiny_pack
    out, work = tmp_path / "out", tmp_path / "work"
    command = [sys.executable, str(REPO / "Training" / "gpu_table1.py"), "run", "--pack", str(pack), "--out", str(out),
               "--work", str(work), "--device", "cpu", "--deadline-s", "900", "--reserve-s", "120",
               "--probe-limit-s", "400",
               "--probe-epochs", "1", "--probe-log-every", "1", "--max-steps", "3",
               *[arg for item in TINY_RUN for arg in ("--set", item)]]
    result = subprocess.run(command, capture_output=True, text=True, timeout=1200, cwd=REPO)  # limits for a loaded CI
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert sorted(p.name for p in out.iterdir()) == ["bundles_cooperative.tar", "bundles_standard.tar",
                                                    "logs.tar.gz", "plan.json", "table1.csv", "table1.md"]
    plan = json.loads((out / "plan.json").read_text())
    assert plan["steps"] == 3 and plan["limited_by"] == "--max-steps" and plan["step_s"] > 0
    assert plan["paper_steps"] > plan["steps"]
    assert plan["fraction"] == pytest.approx(3 / plan["paper_steps"])
    # Every model on the same cases: 2 clean frames + 4 artefacts x 1 copy, 2 stages, 3 structures.
    lines = (out / "table1.csv").read_text().splitlines()
    assert lines[0] == "seed,method,set,case,stage,structure,dice,hd95,subject,frame,group"
    assert len(lines) - 1 == 2 * 6 * 2 * 3
    cases = {tuple(line.split(",")[1:4]) for line in lines[1:]}
    assert {tuple(case) for method, *case in cases} == {("clean", f"{manifest['test_subjects'][0]}_{frame}")
                                                 for frame in ("ED", "ES")} | {
        (s, f"{manifest['test_subjects'][0]}_ES_{s}_1") for s in ("bias", "ghosting", "motion", "spike")}
    text = (out / "table1.md").read_text()
    assert "## Mean ± SD over seeds 40" in text and "## Seed 40" in text
    assert "| cooperative - standard | FTN+STN |" in text and "Capped by --max-steps." in text
    assert f"| cooperative_seed40 | paper_acdc10_cooperative | 40 | 3 | {plan['paper_steps']} |" in text
    for method in ("standard", "cooperative"):
        with tarfile.open(out / f"bundles_{method}.tar") as bundles:
            names = bundles.getnames()
        assert f"{method}_seed40/model.coopseg/metadata.json" in names
    with tarfile.open(out / "logs.tar.gz") as logs:
        names = logs.getnames()
    assert {"runs/standard_seed40.log", "runs/cooperative_seed40/losses.csv", "probe/standard_seed40.log",
            "score_cooperative_seed40.log"} <= set(names)
