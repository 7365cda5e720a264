"""Inference: an image (array + affine, in memory) -> FTN and FTN+STN label maps on the image's own grid,
probabilities, entropy, and previews of the latent-space hard examples the method trains on.

Importing this package needs torch and numpy only (the 3D Slicer module calls it with arrays in memory); file
reading and writing (``CoopSegLib.inference.files``) imports nibabel or SimpleITK when a file is read.
``read_image`` is the reader ``coopseg segment`` uses: (array, RAS affine) with the CLI's geometry rule, so Python
callers get the labels the command writes (nibabel's own ``.affine`` takes ACDC's unit-scale sform as it is).
"""

from CoopSegLib.data.images import ImageFile, read_image
from CoopSegLib.inference.components import connected_components, keep_largest_components, largest_component
from CoopSegLib.inference.engine import STAGES, Segmentation, Segmenter
from CoopSegLib.inference.monitor import Cancelled, Monitor
from CoopSegLib.inference.previews import HardExamplePreview, preview_hard_example

__all__ = [
    "STAGES",
    "Cancelled",
    "HardExamplePreview",
    "ImageFile",
    "Monitor",
    "Segmentation",
    "Segmenter",
    "connected_components",
    "keep_largest_components",
    "largest_component",
    "preview_hard_example",
    "read_image",
]
