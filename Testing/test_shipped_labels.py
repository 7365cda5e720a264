"""The shipped model's label maps on a real volume stay exactly what they were when the golden file was written.

The golden file holds the labels of the shipped bundle it names by its weights' SHA-256. It was first written by the
code before issue 17's model refactor (commit d17434d) for model v2, and the refactored code reproduced it voxel for
voxel; it was written again, by the same code, when model v4 replaced v2. On CPU in fp32:

    from CoopSegLib.bundle import file_sha256
    from CoopSegLib.bundle import file_sha256
from CoopSegLib.data.nifti import load_nifti
    from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.weights import default_bundle
    from CoopSegLib.weights import default_bundle
    array, affine, _ = load_nifti("../shared/data/ACDC/training/patient001/patient001_frame01.nii.gz")
    result = Segmenter(device="cpu", precision="fp32").segment(array, affine, stage="stn")
    np.savez_compressed("Testing/golden/shipped_patient001_frame01.npz", ftn=result.initial, stn=result.refined,
                        weights_sha256=np.array(file_sha256(default_bundle() / "weights.pt")))

A change to the prediction path, the bundle loader or the preprocessing that moves a single voxel fails here. A new
shipped bundle fails the first assertion, which says to write the golden file again (only then).
"""

from pathlib import Path

import numpy as np
import pytest

from CoopSegLib.bundle import file_sha256
from CoopSegLib.data.nifti import load_nifti
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.weights import default_bundle
from data_helpers import ACDC_ROOT, needs_acdc

GOLDEN = Path(__file__).parent / "golden" / "shipped_patient001_frame01.npz"
VOLUME = ACDC_ROOT / "patient001" / "patient001_frame01.nii.gz"


@needs_acdc
@pytest.mark.parametrize("quality", [True, False], ids=["with-quality-signals", "labels-only"])
def test_shipped_model_labels_match_the_golden_file(quality):
    golden = np.load(GOLDEN)
    assert str(golden["weights_sha256"]) == file_sha256(default_bundle() / "weights.pt"), \
        "the shipped bundle changed: write the golden file again with the recipe in this module's docstring"
    array, affine, _ = load_nifti(VOLUME)
    segmenter = Segmenter(device="cpu", precision="fp32")
    both = segmenter.segment(array, affine, stage="stn", quality=quality)
    alone = segmenter.segment(array, affine, stage="ftn", quality=quality)
    assert both.initial.dtype == np.uint8 and both.initial.shape == golden["ftn"].shape
    assert np.array_equal(both.initial, golden["ftn"])
    assert np.array_equal(both.refined, golden["stn"])
    assert np.array_equal(alone.labels, golden["ftn"]) and alone.refined is None
