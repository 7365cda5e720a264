"""The README's Python example reads files as `coopseg segment` does, so it gives the labels the command writes."""

from __future__ import annotations

import nibabel as nib
import numpy as np

from CoopSegLib.cli import main
from CoopSegLib.inference import Segmenter, read_image
from data_helpers import ACDC_ROOT, needs_acdc


@needs_acdc
def test_the_python_example_gives_the_labels_coopseg_segment_writes(tmp_path):
    path = ACDC_ROOT / "patient006" / "patient006_frame01.nii.gz"  # a validation subject of the shipped model
    assert main(["segment", str(path), "--output-dir", str(tmp_path), "--device", "cpu"]) == 0
    written = np.asarray(nib.load(str(tmp_path / path.name)).dataobj)

    image = read_image(path)  # the README's example
    segmenter = Segmenter(None, device="cpu")
    np.testing.assert_array_equal(segmenter.segment(image.array, image.affine, second_look=True).labels, written)
    header = nib.load(str(path)).header
    np.testing.assert_allclose(np.linalg.norm(image.affine[:3, :3], axis=0), header["pixdim"][1:4])

    # nibabel's .affine is ACDC's sform with 1 mm voxels: the model then sees the heart at the wrong scale.
    naive = nib.load(str(path))
    assert np.allclose(np.linalg.norm(naive.affine[:3, :3], axis=0), 1.0)
    agreement = np.mean(segmenter.segment(np.asarray(naive.dataobj), naive.affine, second_look=True).labels == written)
    assert agreement < 0.995


def readme_python_blocks():
    """The README's ```python blocks, in order."""
    import re

    from data_helpers import REPO

    return re.findall(r"^```python\n(.*?)^```$", (REPO / "README.md").read_text(), flags=re.S | re.M)


def test_the_readme_python_blocks_run_as_written(tmp_path, monkeypatch):
    import torch

    blocks = readme_python_blocks()
    assert len(blocks) >= 2 and not any("..." in block for block in blocks)  # no placeholders left
    monkeypatch.chdir(tmp_path)  # where the examples write their files
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        namespaces = []
        for block in blocks:
            namespace: dict = {}
            exec(compile(block, "README.md", "exec"), namespace)
            namespaces.append(namespace)
    finally:
        torch.set_num_threads(threads)
    training = next(n for n in namespaces if "trainer" in n)
    assert all(np.isfinite(value) for value in training["losses"].values())
    assert training["prediction"].refined.shape[0] == training["images"].shape[0]
    inference = next(n for n in namespaces if "segmenter" in n)
    result, array = inference["result"], inference["array"]
    assert result.refined.shape == array.shape and result.probabilities.shape == (4,) + array.shape
    assert result.quality.flag in ("ok", "review") and (tmp_path / "phantom_ed.nii.gz").is_file()
    assert inference["preview"].corrupted_image.shape == array.shape[:2]
