"""Pictures of segmentations: one slice of a volume beside its label maps, drawn offscreen with matplotlib.

matplotlib is imported only when a picture is drawn (it comes with the ``train`` extra); without it,
``pyplot()`` raises a CoopSegError that says how to install it. Used by the embedded default's demo
(``Training/train.py``) and by the documentation's pictures (``docs/make_slicer_pictures.py``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Mapping, Optional, Sequence, Tuple, Union

import numpy as np

from CoopSegLib.vocabulary import LABEL_NAMES
from CoopSegLib.errors import CoopSegError

# Red LV cavity, yellow LV myocardium, blue RV cavity: the Slicer module's segment colours.
LABEL_COLOURS: Mapping[int, Tuple[float, float, float]] = {1: (0.89, 0.26, 0.20), 2: (0.95, 0.77, 0.21),
                                                           3: (0.24, 0.50, 0.85)}
OVERLAY_OPACITY = 0.55


def pyplot() -> Any:
    """matplotlib.pyplot on the offscreen Agg backend, or a CoopSegError naming the extra that brings it."""
    try:
        import matplotlib
    except ImportError as error:
        raise CoopSegError("drawing pictures needs matplotlib: pip install 'CoopSegLib[train]' "
                           "(or pip install matplotlib)") from error
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def show_slice(axis: Any, image: np.ndarray, labels: Optional[np.ndarray] = None, title: str = "",
               colours: Mapping[int, Tuple[float, float, float]] = LABEL_COLOURS) -> None:
    """One 2D slice in ACDC's radiological layout (first index to the right, second down), labels overlaid."""
    from matplotlib.colors import ListedColormap

    axis.imshow(np.asarray(image).T, cmap="gray", interpolation="nearest")
    if labels is not None:
        palette = ListedColormap([(0, 0, 0, 0)] + [(*colours[code], OVERLAY_OPACITY) for code in sorted(colours)])
        axis.imshow(np.asarray(labels).T, cmap=palette, vmin=0, vmax=len(colours), interpolation="nearest")
    axis.set_title(title, fontsize=9)
    axis.axis("off")


def heart_window(labels: np.ndarray, margin: int = 22) -> Tuple[slice, slice]:
    """The in-plane window around every labelled voxel of a 2D map, widened by ``margin`` (all of it if none)."""
    found = np.argwhere(np.asarray(labels) > 0)
    if not len(found):
        return slice(None), slice(None)
    low, high = found.min(0) - margin, found.max(0) + margin
    return slice(max(low[0], 0), high[0]), slice(max(low[1], 0), high[1])


def busiest_slice(labels: np.ndarray) -> int:
    """The index along the last axis of the slice with the most labelled voxels."""
    return int(np.argmax((np.asarray(labels) > 0).sum(axis=(0, 1))))


def legend(figure: Any, colours: Mapping[int, Tuple[float, float, float]] = LABEL_COLOURS,
           names: Mapping[int, str] = LABEL_NAMES) -> None:
    plt = pyplot()
    handles = [plt.Rectangle((0, 0), 1, 1, color=colours[code]) for code in sorted(colours)]
    figure.legend(handles, [names[code] for code in sorted(colours)], loc="lower center", ncol=len(colours),
                  frameon=False, fontsize=9)


def save_segmentation_picture(path: Union[str, Path], volume: np.ndarray,
                              panels: Sequence[Tuple[str, Optional[np.ndarray]]],
                              slice_index: Optional[int] = None) -> Path:
    """Write a PNG of one slice of ``volume`` (X, Y, Z) under each of ``panels``: (title, label map or None).

    The slice is ``slice_index`` or the one the label maps mark most; every panel shows the same window around
    the labels. Written through a temporary file and a rename.
    """
    plt = pyplot()
    maps = [labels for _, labels in panels if labels is not None]
    marked = np.sum([labels > 0 for labels in maps], axis=0) if maps else np.zeros(volume.shape)
    k = busiest_slice(marked) if slice_index is None else int(slice_index)
    window = heart_window(marked[..., k])
    figure, axes = plt.subplots(1, len(panels), figsize=(3.2 * len(panels), 3.6), squeeze=False)
    for axis, (title, labels) in zip(axes[0], panels):
        show_slice(axis, volume[window + (k,)], None if labels is None else labels[window + (k,)], title)
    legend(figure)
    figure.tight_layout(rect=(0, 0.07, 1, 1))
    return save_png(figure, path)


def save_volume_curve_picture(path: Union[str, Path], cine: Any, title: str = "") -> Path:
    """Write a PNG of a cine's LV and RV cavity volume against frame (``CoopSegLib.evaluation.cine.CineAnalysis``),
    ED and ES marked and named, frames flagged for review crossed, the ejection fractions (after ``title``) on top;
    written through a temporary file and a rename."""
    plt = pyplot()
    frames = [frame.frame for frame in cine.frames]
    figure, axis = plt.subplots(figsize=(6.0, 3.6))
    for code, key, name in ((1, "lv_ml", "LV cavity"), (3, "rv_ml", "RV cavity")):
        axis.plot(frames, [getattr(frame, key) for frame in cine.frames], marker="o", markersize=3,
                  color=LABEL_COLOURS[code], label=name)
    if cine.flagged:  # frames whose estimated quality is below the threshold: review them
        axis.plot(cine.flagged, [cine.frames[t].lv_ml for t in cine.flagged], linestyle="none", marker="x",
                  markersize=9, color="black", label="review (low quality)")
    for frame, name, style in ((cine.ed, "ED", "--"), (cine.es, "ES", ":")):
        axis.axvline(frame, color="0.35", linestyle=style, linewidth=1)
        axis.annotate(f"{name} ({frame})", (frame, 1.0), xycoords=("data", "axes fraction"), xytext=(3, -12),
                      textcoords="offset points", fontsize=8)
    axis.set_xlabel("frame")
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.set_ylabel("volume (mL)")
    ejection = f"LV EF {cine.indices.lv_ef:.1f} %, RV EF {cine.indices.rv_ef:.1f} %"
    axis.set_title(f"{title}: {ejection}" if title else ejection, fontsize=9)
    axis.legend(fontsize=8, frameon=False)
    figure.tight_layout()
    return save_png(figure, path)


def save_png(figure: Any, path: Union[str, Path]) -> Path:
    """Write ``figure`` as a PNG through a temporary file and a rename, then close it (whatever happens)."""
    from CoopSegLib.atomic import write_atomically

    path = Path(path)
    try:
        write_atomically(path, lambda temporary: figure.savefig(temporary, dpi=110, format="png"))
    finally:
        pyplot().close(figure)
    return path
