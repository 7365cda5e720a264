"""The inference engine on arrays in memory: accuracy of a small trained model, exact output grids, 2D / 3D / 4D
inputs, storage-order invariance, probabilities, input checks, progress and cancellation."""

from __future__ import annotations

import json
import threading

import numpy as np
import pytest
import torch

from CoopSegLib.bundle import BundleError, load_bundle, save_bundle
from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference import Cancelled, Segmenter
from CoopSegLib.weights import DEFAULT_BUNDLE, NO_DEFAULT_MODEL, default_bundle
from data_helpers import permute_flip_affine, permute_flip_array, rotation, undo_permute_flip
from inference_helpers import PREPROCESSING, mean_dice, ring_volume, trained_model


@pytest.fixture(scope="module")
def segmenter(bundle):
    return Segmenter(bundle, device="cpu")


@pytest.mark.parametrize("size, spacing", [(32, 1.5), (64, 0.75), (24, 2.0)])
def test_trained_model_segments_held_out_volumes_on_their_own_grid(segmenter, size, spacing):
    image, label = ring_volume(6, seed=7, size=size, spacing=spacing)
    result = segmenter.segment(image.array, image.affine)
    for labels in (result.initial, result.refined):
        assert labels.shape == image.shape and labels.dtype == np.uint8
        assert set(np.unique(labels)) <= {0, 1, 2, 3}
        assert mean_dice(labels, label.array) > 0.6
    assert result.labels is result.refined and result.stage == "stn"


def test_an_untrained_model_does_not_pass_the_same_bar(tmp_path):
    from CoopSegLib.networks import CoopSegModel, NetworkConfig
    from toy_slices import SMALL_WIDTHS

    torch.manual_seed(1)
    untrained = save_bundle(tmp_path / "untrained", CoopSegModel(NetworkConfig(widths=SMALL_WIDTHS)),
                            PREPROCESSING)
    image, label = ring_volume(6, seed=7)
    result = Segmenter(untrained, device="cpu").segment(image.array, image.affine)
    assert mean_dice(result.refined, label.array) < 0.4


def test_ftn_stage_skips_the_refinement_and_matches_the_stn_run(segmenter):
    image, _ = ring_volume(4, seed=3)
    ftn = segmenter.segment(image.array, image.affine, stage="ftn")
    stn = segmenter.segment(image.array, image.affine, stage="stn")
    assert ftn.refined is None and ftn.labels is ftn.initial
    np.testing.assert_array_equal(ftn.initial, stn.initial)


def test_batch_size_does_not_change_the_labels(bundle, segmenter):
    image, _ = ring_volume(5, seed=4)
    one_at_a_time = Segmenter(bundle, device="cpu", max_slices=1).segment(image.array, image.affine)
    together = segmenter.segment(image.array, image.affine)
    assert np.mean(one_at_a_time.refined == together.refined) > 0.999


def test_a_loaded_bundle_and_its_folder_give_the_same_segmenter_and_the_bundle_is_left_as_it_was(bundle, segmenter):
    image, _ = ring_volume(3, seed=5)
    loaded = load_bundle(bundle)
    loaded.model.train()
    before = {name: value.clone() for name, value in loaded.model.state_dict().items()}
    from_bundle = Segmenter(loaded, device="cpu", channels_last=True).segment(image.array, image.affine)
    np.testing.assert_array_equal(from_bundle.refined, segmenter.segment(image.array, image.affine).refined)
    assert loaded.model.training  # the Segmenter ran a copy in eval mode
    weight = next(p for p in loaded.model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[2] > 1)
    assert weight.is_contiguous() and not weight.is_contiguous(memory_format=torch.channels_last)
    after = loaded.model.state_dict()
    assert all(torch.equal(before[name], after[name]) for name in before)  # BatchNorm statistics included


def test_the_stages_used_alone_give_what_segment_gives(segmenter):
    from CoopSegLib.inference.components import keep_largest_components

    image, _ = ring_volume(5, seed=6)
    whole = segmenter.segment(image.array, image.affine, largest_component=True)
    prepared = segmenter.prepare(image.array, image.affine)
    slice_pass = segmenter.predict_slices(prepared, "stn", signals=True)
    assert slice_pass.initial.shape == (len(prepared.slices), segmenter.size, segmenter.size)
    mapped = segmenter.map_back(prepared, slice_pass, clean_up=keep_largest_components)
    np.testing.assert_array_equal(mapped.refined, whole.refined)
    np.testing.assert_array_equal(mapped.initial, whole.initial)
    assert segmenter.estimate(prepared, slice_pass).volume == pytest.approx(whole.quality.volume, abs=1e-6)
    untouched = segmenter.map_back(prepared, slice_pass)  # no clean-up: the raw labels, at least as many voxels
    assert (untouched.refined > 0).sum() >= (mapped.refined > 0).sum()
    with pytest.raises(CoopSegError, match="needs a pass with signals"):
        segmenter.estimate(prepared, segmenter.predict_slices(prepared, "ftn", signals=False))


def test_storage_order_and_obliqueness_do_not_change_the_answer(segmenter):
    image, _ = ring_volume(6, seed=8)
    reference = segmenter.segment(image.array, image.affine).refined
    for perm, flips, oblique in (((2, 0, 1), (True, False, False), rotation(20, 2)),
                                 ((1, 2, 0), (False, True, True), rotation(-25, 0) @ rotation(10, 1))):
        array = permute_flip_array(image.array, perm, flips)
        affine = oblique @ permute_flip_affine(image.affine, image.shape, perm, flips)
        moved = segmenter.segment(array, affine).refined
        assert moved.shape == array.shape
        np.testing.assert_array_equal(undo_permute_flip(moved, perm, flips), reference)


def test_a_cine_is_segmented_frame_by_frame(segmenter):
    frames = [ring_volume(5, seed=seed)[0] for seed in (11, 12, 13)]
    cine = np.stack([frame.array for frame in frames], axis=-1)
    result = segmenter.segment(cine, frames[0].affine, probabilities=True, entropy=True)
    assert result.refined.shape == cine.shape and result.initial.shape == cine.shape
    assert result.probabilities.shape == (4,) + cine.shape and result.entropy.shape == cine.shape
    # Batched with other frames' slices or alone, the arithmetic is the same up to the kernels' summation order
    # (equal here; other CPUs may pick other kernels per batch size), so allow a voxel or so at exact ties.
    for t, frame in enumerate(frames):
        alone = segmenter.segment(frame.array, frame.affine, probabilities=True)
        assert np.mean(result.refined[..., t] == alone.refined) > 0.999
        assert np.mean(result.initial[..., t] == alone.initial) > 0.999
        np.testing.assert_allclose(result.probabilities[..., t], alone.probabilities, atol=1e-4)


def test_a_2d_slice_is_segmented_as_a_one_slice_volume(segmenter):
    image, label = ring_volume(4, seed=9)
    plane = image.array[:, :, 2]
    affine = image.affine.copy()
    affine[:3, 2] = 0.0  # 2D images often carry no third axis at all
    result = segmenter.segment(plane, affine, probabilities=True, entropy=True)
    assert result.refined.shape == plane.shape and result.probabilities.shape == (4,) + plane.shape
    assert mean_dice(result.refined, label.array[:, :, 2]) > 0.5
    # A 3D one-slice volume with a thin slice (thinner than the pixels) is the same thing.
    thin = image.affine.copy()
    thin[:3, 2] = (0.0, 0.0, 1.0)
    volume = segmenter.segment(plane[:, :, None], thin).refined
    np.testing.assert_array_equal(volume[:, :, 0], result.refined)


def test_probabilities_and_entropy_are_consistent(segmenter):
    image, _ = ring_volume(4, seed=10, size=48, spacing=1.0)
    result = segmenter.segment(image.array, image.affine, probabilities=True, entropy=True)
    p = result.probabilities
    assert p.dtype == np.float32 and p.shape == (4,) + image.shape
    np.testing.assert_allclose(p.sum(axis=0), 1.0, atol=1e-5)
    assert p.min() >= 0.0 and np.mean(p.argmax(axis=0) == result.refined) > 0.97
    assert result.entropy.dtype == np.float32 and 0.0 <= result.entropy.min() and result.entropy.max() <= 1.0
    assert result.entropy[result.refined == 1].mean() < result.entropy[p.max(axis=0) < 0.6].mean()
    only_entropy = segmenter.segment(image.array, image.affine, entropy=True)
    assert only_entropy.probabilities is None
    np.testing.assert_allclose(only_entropy.entropy, result.entropy, atol=1e-6)


def test_largest_component_option_removes_islands(segmenter):
    from scipy import ndimage  # the oracle (scipy comes with TorchIO; inference itself does not need it)

    from CoopSegLib.inference.components import keep_largest_components

    image, _ = ring_volume(6, seed=14)
    prepared = segmenter.prepare(image.array, image.affine)
    slice_pass = segmenter.predict_slices(prepared, "stn", signals=False)
    # segment(largest_component=True) is this clean-up of the same pass, frame by frame on the input's grid.
    whole = segmenter.segment(image.array, image.affine, largest_component=True, quality=False)
    cleaned = segmenter.map_back(prepared, slice_pass, clean_up=keep_largest_components)
    np.testing.assert_array_equal(whole.refined, cleaned.refined)
    np.testing.assert_array_equal(whole.initial, cleaned.initial)
    # Islands of every structure in a corner of the label map, whatever the toy model predicts: the clean-up
    # removes them and nothing else.
    plain = segmenter.map_back(prepared, slice_pass).refined.copy()
    for offset, code in enumerate((1, 2, 3)):
        plain[1 + 3 * offset:3 + 3 * offset, 1:3, :] = code
    assert max(ndimage.label(plain == code)[1] for code in (1, 2, 3)) > 1  # the model's structure + an island
    kept = keep_largest_components(plain)
    for code in (1, 2, 3):
        assert ndimage.label(kept == code)[1] == 1
    changed = kept != plain
    assert changed.any() and (kept[changed] == 0).all()  # cleaning only ever removes


def test_progress_is_monotone_and_ends_at_one(bundle):
    reports = []
    image, _ = ring_volume(5, seed=15)
    cine = np.stack([image.array] * 3, axis=-1)
    Segmenter(bundle, device="cpu", max_slices=4).segment(cine, image.affine,
                                                                progress=lambda f, m: reports.append((f, m)))
    fractions = [f for f, _ in reports]
    assert len(fractions) >= 6 and fractions == sorted(fractions) and fractions[-1] == 1.0
    assert all(isinstance(message, str) and message for _, message in reports)


def test_cancellation_raises_and_returns_nothing(segmenter):
    image, _ = ring_volume(5, seed=16)
    event = threading.Event()
    seen = []

    def progress(fraction, message):
        seen.append(fraction)
        if len(seen) == 2:
            event.set()  # a GUI's cancel button pressed while the job runs

    with pytest.raises(Cancelled):
        segmenter.segment(image.array, image.affine, progress=progress, cancel=event)
    assert max(seen) < 1.0
    with pytest.raises(Cancelled):
        segmenter.segment(image.array, image.affine, cancel=lambda: True)
    assert issubclass(Cancelled, CoopSegError)


@pytest.mark.parametrize("array, affine, message", [
    (np.full((8, 8, 3), np.nan, np.float32), np.eye(4), "NaN or infinite voxel"),
    (np.where(np.eye(8)[:, :, None] > 0, np.inf, 1.0) * np.ones((8, 8, 2)), np.eye(4), "NaN or infinite voxel"),
    (np.ones((8, 8, 3)), np.diag([1.0, 1.0, np.nan, 1.0]), "affine .* NaN or infinite"),
    (np.ones((8, 8, 3)), np.diag([1.0, 0.0, 1.0, 1.0]), "singular"),
    (np.ones((8, 8)), np.diag([1.0, 0.0, 0.0, 1.0]), "singular"),
    (np.ones((8, 8, 3)), np.eye(3), "4x4 affine"),
    (np.ones((4, 4, 3, 2, 2)), np.eye(4), "2D slice, a 3D volume or a 4D cine"),
    (np.ones(8), np.eye(4), "2D slice, a 3D volume or a 4D cine"),
    (np.ones((0, 8, 3)), np.eye(4), "empty"),
    (np.ones((8, 8, 3), complex), np.eye(4), "real numbers"),
])
def test_bad_inputs_are_refused_with_a_clear_message(segmenter, array, affine, message):
    with pytest.raises(CoopSegError, match=message):
        segmenter.segment(array, affine)


def test_bad_options_are_refused(segmenter, bundle):
    image, _ = ring_volume(2, seed=1)
    with pytest.raises(CoopSegError, match="unknown stage"):
        segmenter.segment(image.array, image.affine, stage="both")
    with pytest.raises(CoopSegError, match="unknown stage"):
        segmenter.segment_blurred(image.array, image.affine, 1.5, stage="both")
    with pytest.raises(CoopSegError, match="max_slices"):
        Segmenter(bundle, device="cpu", max_slices=0)
    if not torch.cuda.is_available():
        with pytest.raises(CoopSegError, match="CUDA"):
            Segmenter(bundle, device="cuda")


def test_bundles_with_unusable_preprocessing_are_refused(tmp_path):
    path = save_bundle(tmp_path / "odd", trained_model(), {"spacing_mm": 1.5, "size": 30})  # not a multiple of 8
    with pytest.raises(BundleError, match="multiple of 8"):
        Segmenter(path, device="cpu")
    metadata = json.loads((path / "metadata.json").read_text())
    metadata["preprocessing"] = {"size": 32}
    (path / "metadata.json").write_text(json.dumps(metadata))
    with pytest.raises(BundleError, match="spacing_mm"):
        Segmenter(path, device="cpu")


def test_without_a_shipped_model_the_default_says_what_to_do(monkeypatch, tmp_path):
    assert default_bundle() == DEFAULT_BUNDLE  # this checkout ships one
    import CoopSegLib.weights

    monkeypatch.setattr(CoopSegLib.weights, "DEFAULT_BUNDLE", tmp_path / "absent.coopseg")  # an install without
    with pytest.raises(CoopSegError) as error:
        Segmenter(None, device="cpu")
    assert str(error.value) == NO_DEFAULT_MODEL and "--model BUNDLE" in NO_DEFAULT_MODEL


def test_inference_and_evaluation_import_without_imaging_libraries():
    """The Slicer module calls inference with arrays in memory: torch + numpy only until a file is read."""
    import subprocess
    import sys

    from data_helpers import REPO

    code = ("import sys, CoopSegLib.inference, CoopSegLib.inference.files, CoopSegLib.evaluation, "
            "CoopSegLib.data.images, CoopSegLib.cli.segment, CoopSegLib.cli.evaluate, CoopSegLib.cli.indices; "
            "print(sorted(m for m in ('nibabel', 'torchio', 'SimpleITK', 'monai', 'scipy') if m in sys.modules))")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO, check=True)
    assert result.stdout.strip() == "[]"
