"""The files the Slicer module exchanges with its worker: NRRD written and read by Slicer's own storage nodes, so
that Slicer's Python needs no nibabel (issue 26, defect 10). A volume and a cine go out and come back on the
input's grid, exactly; a whole run, module and worker, succeeds with nibabel made unimportable in both processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

from CoopSegLib.data.nrrd import read_nrrd, write_nrrd
from CoopSegLib.inference.engine import Segmenter
from inference_helpers import ring_volume
from slicer_helpers import MODULE_DIR, new_scene  # noqa: F401  (puts CoopSegMRML on the path)

from CoopSegMRML.exchange import read_exchange_labels, write_exchange_image  # noqa: E402

OBLIQUE = np.array([[-1.2, 0.3, 0.0, 12.0], [-0.3, -1.2, 0.5, -30.0], [0.0, 0.1, 8.0, 4.0], [0, 0, 0, 1.0]])
LEFT_HANDED = np.array([[-1.5, 0, 0, 5.0], [0, 1.5, 0, -7.0], [0, 0, 8.0, 9.0], [0, 0, 0, 1.0]])  # det < 0


@pytest.mark.parametrize("affine", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_a_volume_and_a_cine_go_out_through_slicer_and_read_back_exactly(tmp_path, affine):
    rng = np.random.default_rng(3)
    volume = rng.normal(500, 100, (6, 5, 4)).astype(np.float32)
    cine = rng.integers(0, 2000, (6, 5, 4, 3)).astype(np.int16)
    for name, array in (("volume", volume), ("cine", cine)):
        path = write_exchange_image(array, affine, tmp_path / f"{name}.nrrd")
        back, back_affine = read_nrrd(path)  # what the worker reads (SimpleITK)
        assert back.shape == array.shape and back.dtype == array.dtype
        assert np.array_equal(back, array)
        assert np.allclose(back_affine, affine, atol=1e-6)


@pytest.mark.parametrize("affine", [OBLIQUE, LEFT_HANDED], ids=["oblique", "left-handed"])
def test_the_workers_nrrd_labels_read_back_through_slicer_on_the_inputs_grid(tmp_path, affine):
    # Slicer's readers flip the K axis of a left-handed grid to make it right-handed; the labels must still come
    # back indexed like the input.
    rng = np.random.default_rng(4)
    labels = rng.integers(0, 4, (6, 5, 4)).astype(np.uint8)
    cine = rng.integers(0, 4, (6, 5, 4, 3)).astype(np.uint8)
    volume_file = str(write_nrrd(labels, affine, tmp_path / "v.nrrd"))
    assert np.array_equal(read_exchange_labels(volume_file, (6, 5, 4), affine), labels)
    cine_file = str(write_nrrd(cine, affine, tmp_path / "c.nrrd"))
    assert np.array_equal(read_exchange_labels(cine_file, (6, 5, 4, 3), affine), cine)
    with pytest.raises(Exception, match=r"shape \(6, 5, 4\), the input \(6, 5, 5\); nothing was added"):
        read_exchange_labels(volume_file, (6, 5, 5), affine)
    shifted = affine.copy()
    shifted[:3, 3] += 10.0
    with pytest.raises(Exception, match="lie on another grid than the input; nothing was added"):
        read_exchange_labels(volume_file, (6, 5, 4), shifted)
    (tmp_path / "broken.nrrd").write_bytes(b"NRRD0004\nnot a header\n")
    with pytest.raises(Exception, match="could not read the worker's labels"):
        read_exchange_labels(str(tmp_path / "broken.nrrd"), (6, 5, 4), affine)


RUN_WITHOUT_NIBABEL = r"""
import json, sys, time
import numpy as np
try:
    import nibabel
    raise SystemExit("nibabel is importable: the test's blocker did not take")
except ImportError:
    pass
from CoopSegMRML import FINISHED, RUNNING, CoopSegSceneLogic
from CoopSegMRML.headless import headless_scene
from CoopSegMRML.segmentations import labels_from_segmentation
from CoopSegMRML.volumes import add_volume

data = np.load(sys.argv[1])
scene = headless_scene()
volume = add_volume(scene, "rings", data["array"], data["affine"])
logic = CoopSegSceneLogic(scene)
job = logic.start(volume, model=sys.argv[2], device="cpu")
deadline = time.monotonic() + 300
while job.status().state == RUNNING and time.monotonic() < deadline:
    time.sleep(0.05)
status = job.status()
assert status.state == FINISHED, status.message
result = logic.import_result(job)
np.save(sys.argv[3], labels_from_segmentation(result.refined, volume))
print(json.dumps({"nibabel_loaded": "nibabel" in sys.modules}))
"""


def test_a_run_needs_no_nibabel_in_slicers_python_nor_in_the_worker(bundle, tmp_path):
    image, _ = ring_volume(4, seed=52)
    affine = image.affine.copy()
    affine[:3, 2] *= -1  # a left-handed grid, which Slicer's readers flip on the way back: the hardest case
    np.savez(tmp_path / "input.npz", array=image.array, affine=affine)
    blocker = tmp_path / "blocked" / "nibabel"
    blocker.mkdir(parents=True)
    (blocker / "__init__.py").write_text("raise ImportError('nibabel is blocked for this test')\n")
    # The blocker comes first on PYTHONPATH, which the logic hands on to the worker it starts.
    path = os.pathsep.join([str(blocker.parent), str(MODULE_DIR), os.environ.get("PYTHONPATH", "")])
    done = subprocess.run([sys.executable, "-c", RUN_WITHOUT_NIBABEL, str(tmp_path / "input.npz"), str(bundle),
                           str(tmp_path / "refined.npy")], capture_output=True, text=True, timeout=600,
                          env={**os.environ, "PYTHONPATH": path})
    assert done.returncode == 0, done.stderr[-2000:]
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {"nibabel_loaded": False}
    # The labels are the Segmenter's on the same image, voxel for voxel.
    expected = Segmenter(str(bundle), device="cpu").segment(image.array, affine).labels
    assert np.array_equal(np.load(tmp_path / "refined.npy"), expected)
