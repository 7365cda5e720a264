"""Draw the Slicer module's pictures from the MRML nodes it makes (offscreen, on slicer-core, no Slicer window):

    docs/slicer_segmentation.png   an ACDC slice with the "initial (FTN)" and "refined (FTN+STN)" segmentation nodes
    docs/slicer_hard_example.png   the hard-example preview nodes for that slice, one per masking scheme

Usage: python docs/make_slicer_pictures.py [--model BUNDLE] [--subject patientNNN] [--acdc ../shared/data/ACDC/training]

The module logic (CoopSeg/CoopSegMRML) runs exactly as in Slicer: Slicer's volumes logic reads the NIfTI file, the
logic makes the nodes, and the pictures are drawn with matplotlib from those nodes' arrays (Slicer's slice views
need an OpenGL context this script does not assume). The model is the shipped one unless --model names another; the
subject is the model's first validation subject (one it never trained on) unless --subject names another.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "CoopSeg"))  # the module's folder, as Slicer puts it on sys.path
sys.path.insert(1, str(REPO))  # CoopSegLib, from a checkout without installing

from CoopSegLib.bundle import read_metadata, recorded_subjects  # noqa: E402
from CoopSegLib.pictures import busiest_slice, heart_window, legend, pyplot, show_slice  # noqa: E402
from CoopSegLib.weights import default_bundle  # noqa: E402
from CoopSegMRML import SLICER_STRUCTURES, CoopSegSceneLogic  # noqa: E402
from CoopSegMRML.headless import headless_scene, load_volume  # noqa: E402
from CoopSegMRML.segmentations import labels_from_segmentation  # noqa: E402
from CoopSegMRML.volumes import volume_image  # noqa: E402

COLOURS = {s.code: s.color for s in SLICER_STRUCTURES}  # the segment colours the module gives its nodes
NAMES = {s.code: s.name for s in SLICER_STRUCTURES}


def show(axis, image, labels=None, title=""):
    show_slice(axis, image, labels, title, colours=COLOURS)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", type=Path, help="a model bundle folder (default: the shipped model)")
    parser.add_argument("--subject", help="ACDC subject folder to show (default: the model's first validation one)")
    parser.add_argument("--acdc", type=Path, default=REPO.parent / "shared" / "data" / "ACDC" / "training")
    parser.add_argument("--out", type=Path, default=REPO / "docs")
    args = parser.parse_args()
    model = args.model or default_bundle()
    subject = args.subject or (recorded_subjects(read_metadata(model), "validation") or ["patient001"])[0]

    scene = headless_scene()
    volume = load_volume(scene, args.acdc / subject / f"{subject}_frame01.nii.gz")
    logic = CoopSegSceneLogic(scene)
    result = logic.segment(volume, model=str(model), device="cpu")
    image, _ = volume_image(volume)
    initial = labels_from_segmentation(result.initial, volume)
    refined = labels_from_segmentation(result.refined, volume)
    k = busiest_slice(refined)  # the slice with the most heart
    window = heart_window(refined[..., k] + initial[..., k])

    plt = pyplot()
    figure, axes = plt.subplots(1, 3, figsize=(9.6, 3.6))
    show(axes[0], image[window + (k,)], title=f"{volume.GetName()}, slice {k}")
    show(axes[1], image[window + (k,)], initial[window + (k,)], title=result.initial.GetName())
    show(axes[2], image[window + (k,)], refined[window + (k,)], title=result.refined.GetName())
    legend(figure, COLOURS, NAMES)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(args.out / "slicer_segmentation.png", dpi=110)
    plt.close(figure)

    figure, axes = plt.subplots(1, 4, figsize=(12, 3.6))
    show(axes[0], image[window + (k,)], refined[window + (k,)], title="input and refined segmentation")
    for axis, scheme in zip(axes[1:], ("dropout", "channel", "spatial")):
        nodes = logic.preview(volume, k, scheme=scheme, fraction=0.3, soft_factor=0.0, seed=0, model=str(model),
                              device="cpu")
        corrupted, _ = volume_image(nodes.image)
        corrupted_labels = labels_from_segmentation(nodes.segmentation, nodes.image)
        show(axis, corrupted[window + (0,)], corrupted_labels[window + (0,)],
             title=nodes.image.GetName().split("(")[1].split(")")[0])  # "<scheme>, p=.., a=.., slice k"
    legend(figure, COLOURS, NAMES)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    figure.savefig(args.out / "slicer_hard_example.png", dpi=110)
    plt.close(figure)
    print("wrote", args.out / "slicer_segmentation.png", args.out / "slicer_hard_example.png")


if __name__ == "__main__":
    main()
