"""Inference: an image (array + affine, in memory) -> FTN and FTN+STN label maps on the image's own grid,
probabilities, entropy, and previews of the latent-space hard examples the method trains on.

Its names need torch and numpy only (the 3D Slicer module calls it with arrays in memory); file
reading and writing (``CoopSegLib.inference.files``) imports nibabel or SimpleITK when a file is read.
``read_image`` is the reader ``coopseg segment`` uses: (array, RAS affine) with the CLI's geometry rule, so Python
callers get the labels the command writes (nibabel's own ``.affine`` takes ACDC's unit-scale sform as it is).
"""

from CoopSegLib.lazy import lazy_names

# Names load on first use (``CoopSegLib.lazy``): the Slicer module reads the worker's events
# (``inference.worker``) without importing torch.
_HOMES = {
    "ImageFile": "CoopSegLib.data.images",
    "read_image": "CoopSegLib.data.images",
    "connected_components": "CoopSegLib.inference.components",
    "keep_largest_components": "CoopSegLib.inference.components",
    "largest_component": "CoopSegLib.inference.components",
    "STAGES": "CoopSegLib.inference.engine",
    "Segmentation": "CoopSegLib.inference.engine",
    "Segmenter": "CoopSegLib.inference.engine",
    "Cancelled": "CoopSegLib.inference.monitor",
    "Monitor": "CoopSegLib.inference.monitor",
    "HardExamplePreview": "CoopSegLib.inference.previews",
    "preview_hard_example": "CoopSegLib.inference.previews",
}
__all__ = sorted(_HOMES)
__getattr__, __dir__ = lazy_names(__name__, _HOMES)
