"""Inference: an image (array + affine, in memory) -> FTN and FTN+STN label maps on the image's own grid,
probabilities, entropy, and previews of the latent-space hard examples the method trains on.

Importing this package needs torch and numpy only (the 3D Slicer module calls it with arrays in memory); file
reading and writing (``CoopSegLib.inference.files``) imports nibabel or SimpleITK when a file is read.
"""

from CoopSegLib.inference.components import connected_components, keep_largest_components, largest_component
from CoopSegLib.inference.engine import STAGES, Segmentation, Segmenter
from CoopSegLib.inference.monitor import Cancelled, Monitor
from CoopSegLib.inference.previews import HardExamplePreview, preview_hard_example

__all__ = [
    "STAGES",
    "Cancelled",
    "HardExamplePreview",
    "Monitor",
    "Segmentation",
    "Segmenter",
    "connected_components",
    "keep_largest_components",
    "largest_component",
    "preview_hard_example",
]
