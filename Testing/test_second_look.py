"""segment(second_look=True): a flagged result gets a second pass on a blurred input, kept only when it scores
higher on the quality estimate; an unflagged one is returned as it was."""

import nibabel as nib
import numpy as np

from CoopSegLib.cli import main
from CoopSegLib.data.nifti import load_nifti
from CoopSegLib.evaluation.metrics import overlap_scores
from CoopSegLib.evaluation.test_sets import build_test_sets
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.quality_file import QUALITY_FILE, read_quality_file
from data_helpers import ACDC_ROOT, needs_acdc, spiked_copy

SUBJECT = "patient082"  # a validation subject of the shipped model; its second spiked copy defeats the first pass


def mean_dice(labels, reference):
    return float(np.mean([s.dice for s in overlap_scores(labels, reference.array, reference.spacing,
                                                         distances=False).values()]))


@needs_acdc
def test_second_look_rescues_a_spiked_volume_and_leaves_a_clean_one_alone():
    segmenter = Segmenter(device="cpu")
    cases = {case.key: case for case in build_test_sets(ACDC_ROOT, ["clean", "spike"], [SUBJECT])}
    spiked = cases[f"{SUBJECT}_ES_spike_2"]
    plain = segmenter.segment(spiked.image.array, spiked.image.affine)
    reports = []
    looked = segmenter.segment(spiked.image.array, spiked.image.affine, second_look=True,
                               progress=lambda fraction, message: reports.append((fraction, message)))
    assert plain.quality.flag == "review" and not plain.blurred
    assert looked.blurred and looked.quality.volume > plain.quality.volume
    assert mean_dice(looked.refined, spiked.label) > mean_dice(plain.refined, spiked.label) + 0.3
    # One progress bar over all looks: it never goes back, the looks say so, and it ends once, at "done"
    fractions = [fraction for fraction, _ in reports]
    assert fractions == sorted(fractions) and reports[-1] == (1.0, "done") and fractions.count(1.0) == 1
    assert any(message.startswith("second look (blur 1.5 px): segmenting slices") for _, message in reports)

    clean = cases[f"{SUBJECT}_ES"]
    first = segmenter.segment(clean.image.array, clean.image.affine)
    again = segmenter.segment(clean.image.array, clean.image.affine, second_look=True)
    assert first.quality.flag == "ok" and not again.blurred
    assert np.array_equal(first.refined, again.refined) and np.array_equal(first.initial, again.initial)


@needs_acdc
def test_segment_command_takes_the_second_look_by_default(tmp_path):
    """`coopseg segment` looks again unless --no-second-look (as the Slicer module, whose checkbox is on)."""
    spiked = spiked_copy(SUBJECT, 2)
    source = tmp_path / "spiked.nii.gz"
    nib.save(nib.Nifti1Image(spiked.image.array.astype(np.float32), spiked.image.affine), source)
    for flag, folder in ((["--no-second-look"], "plain"), ([], "looked")):
        assert main(["segment", str(source), "--output-dir", str(tmp_path / folder), "--device", "cpu", *flag]) == 0
    plain, _, _ = load_nifti(tmp_path / "plain" / "spiked.nii.gz")
    looked, _, _ = load_nifti(tmp_path / "looked" / "spiked.nii.gz")
    assert mean_dice(looked, spiked.label) > mean_dice(plain, spiked.label) + 0.3
    # quality.csv says which answer was kept
    assert read_quality_file(tmp_path / "looked" / QUALITY_FILE)["spiked"].blurred
    assert not read_quality_file(tmp_path / "plain" / QUALITY_FILE)["spiked"].blurred


@needs_acdc
def test_a_volume_the_first_blur_leaves_flagged_gets_the_stronger_one(monkeypatch):
    """patient006's second spiked copy: the shipped model's 1.5 px look is still flagged; the 3 px look rescues it."""
    from CoopSegLib.inference import engine

    spiked = spiked_copy("patient006", 2)
    segmenter = Segmenter(device="cpu")
    messages = []
    looked = segmenter.segment(spiked.image.array, spiked.image.affine, second_look=True,
                               progress=lambda fraction, message: messages.append(message))
    assert any(message.startswith("second look (blur 3 px)") for message in messages)
    monkeypatch.setattr(engine, "SECOND_LOOK_SIGMAS", engine.SECOND_LOOK_SIGMAS[:1])  # the 1.5 px look alone
    single = segmenter.segment(spiked.image.array, spiked.image.affine, second_look=True)
    assert single.quality.flag == "review" and looked.blurred
    assert mean_dice(looked.refined, spiked.label) > mean_dice(single.refined, spiked.label) + 0.3
