"""Draw docs/phantom_vs_acdc.png: synthetic phantom slices beside real ACDC slices, as the model sees them.

Usage: python docs/make_phantom_vs_acdc.py [--acdc ../shared/data/ACDC/training]
Both go through the same preprocessing (percentile normalisation, 1.36719 mm, 192 x 192).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from CoopSegLib.data.phantom import phantom_subject  # noqa: E402
from CoopSegLib.data.preprocess import prepare_case  # noqa: E402
from CoopSegLib.data.readers.acdc import read_acdc  # noqa: E402

COLOURS = {1: "red", 2: "lime", 3: "deepskyblue"}


def middle_slice(prepared) -> int:
    labelled = prepared.labelled_slices()
    return int(labelled[len(labelled) // 2])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    here = Path(__file__).resolve().parent
    parser.add_argument("--acdc", default=str(here.parent.parent / "shared" / "data" / "ACDC" / "training"))
    parser.add_argument("--output", default=str(here / "phantom_vs_acdc.png"))
    args = parser.parse_args()
    phantoms = [prepare_case(phantom_subject(seed)[frame]) for seed, frame in ((0, 0), (1, 1), (2, 0), (3, 1))]
    subjects = ["patient001", "patient022", "patient045", "patient085"]
    acdc = [prepare_case(case) for case in read_acdc(args.acdc, subjects)[::2]]
    rows = [("phantom", phantoms, False), ("phantom + labels", phantoms, True), ("ACDC", acdc, False),
            ("ACDC + labels", acdc, True)]
    fig, axes = plt.subplots(len(rows), 4, figsize=(10, 10.4))
    for r, (title, items, contours) in enumerate(rows):
        for c, prepared in enumerate(items):
            z = middle_slice(prepared)
            ax = axes[r, c]
            ax.imshow(prepared.image[z].T, cmap="gray", vmin=0, vmax=1)
            if contours:
                for code, colour in COLOURS.items():
                    ax.contour((prepared.label[z] == code).T.astype(float), levels=[0.5], colors=colour, linewidths=0.8)
            ax.set_xticks([]), ax.set_yticks([])
            ax.set_title(f"{title}: {prepared.key} z{z}", fontsize=7)
    fig.suptitle("Synthetic phantom (top) vs real ACDC (bottom), preprocessed to 192 x 192 at 1.37 mm. "
                 "Red LV cavity, green LV myocardium, blue RV cavity", fontsize=8)
    fig.tight_layout()
    fig.savefig(args.output, dpi=62)
    print(args.output)


if __name__ == "__main__":
    main()
