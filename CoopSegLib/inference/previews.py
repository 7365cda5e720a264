"""Previews of the method's latent-space hard examples for one slice of an image (paper Fig. 3).

For the chosen slice the FTN's codes z_i = E(x) and z_s = H(z_i) are masked with one scheme (random channel dropout,
targeted channel-wise or targeted spatial-wise), fraction p and soft factor a, then decoded: the corrupted image
x_hat = D_i(masked z_i) and the corrupted segmentation p_hat = D_s(masked z_s), shown beside the clean
reconstruction and segmentation. Everything is mapped onto the input slice's own grid.

The slice goes through the segmenter's ``SlicePredictor`` (its normalisation and numerics), the codes come from
the model's ``predict``, and the hard example from training's own ``generate_hard_examples``
with the scheme and fraction fixed (``masking.mask_code``) instead of drawn. Targeted masks rank latent units by
the gradient of the task loss, as in training; with no ground truth at inference the segmentation loss uses the
FTN's own clean prediction as the target (argmax of D_s(z_s)), and the reconstruction loss the model's input slice.
a applies to targeted masks; dropout zeroes channels (paper eq. 2).
Randomness comes from a local generator seeded by ``seed``: the same seed gives the same preview, and torch's
global random state is left untouched.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch

from CoopSegLib.cooperative.hard_examples import generate_hard_examples
from CoopSegLib.data.geometry import SliceMapping
from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference.engine import Segmenter
from CoopSegLib.masking import MASKING_SCHEMES, mask_code


@dataclass
class HardExamplePreview:
    """2D maps on the input slice's grid (the input's shape without ``axis``); probabilities are (C, ...)."""

    axis: int  # the input axis the slice index runs along (the stack axis)
    slice_index: int
    image: np.ndarray  # the model's input slice, normalised to [0, 1], mapped back
    reconstruction: np.ndarray  # D_i(z_i), clean
    corrupted_image: np.ndarray  # x_hat = D_i(masked z_i)
    labels: np.ndarray  # argmax D_s(z_s), clean (uint8)
    probabilities: np.ndarray
    corrupted_labels: np.ndarray  # argmax p_hat (uint8)
    corrupted_probabilities: np.ndarray  # softmax p_hat
    scheme: str
    fraction: float
    soft_factor: float
    seed: int


def _single_slice(mapping: SliceMapping) -> SliceMapping:
    """The same mapping for one slice: in-plane resampling does not depend on the number of slices."""
    shape = list(mapping.input_shape)
    shape[mapping.order[2]] = 1
    return replace(mapping, input_shape=tuple(shape))


def preview_hard_example(segmenter: Segmenter, array: np.ndarray, affine: np.ndarray, slice_index: int,
                         scheme: str = "channel", fraction: float = 0.3, soft_factor: float = 0.0,
                         seed: int = 0) -> HardExamplePreview:
    """Hard example made from slice ``slice_index`` (along the stack axis) of a 2D slice or 3D volume.

    ``scheme``: "dropout", "channel" or "spatial"; ``fraction``: p in [0, 1]; ``soft_factor``: a in [0, 1]
    (0 = hard mask, as in the paper's Fig. 3). Fraction 0 gives the clean reconstruction and segmentation.
    """
    if scheme not in MASKING_SCHEMES:
        raise CoopSegError(f"unknown masking scheme {scheme!r}; use one of {', '.join(MASKING_SCHEMES)}")
    if not 0.0 <= fraction <= 1.0:
        raise CoopSegError(f"masking fraction must lie in [0, 1], got {fraction}")
    if not 0.0 <= soft_factor <= 1.0:
        raise CoopSegError(f"soft factor must lie in [0, 1], got {soft_factor}")
    if np.ndim(array) == 4:
        raise CoopSegError("previews take one frame: pass a 2D slice or a 3D volume, e.g. cine[..., t]")
    prepared = segmenter.prepare(array, affine)
    mapping = prepared.mappings[0]
    axis = mapping.order[2]
    count = mapping.num_slices
    if not 0 <= slice_index < count:
        raise CoopSegError(f"slice index {slice_index} is outside the image's {count} slice(s) along axis {axis}")
    canonical = count - 1 - slice_index if mapping.flips[2] else slice_index
    predictor, model = segmenter.predictor, segmenter.predictor.model
    x = predictor.model_input(prepared.slices[canonical : canonical + 1])
    generator = torch.Generator().manual_seed(int(seed))  # masks draw on the CPU from this generator only

    def fixed_mask(z, gradient):
        return mask_code(z, scheme, fraction, gradient, soft_factor=soft_factor, generator=generator)

    # The segmenter's numerics (so the clean labels are the ones it gives), but plain autograd rather than
    # inference_mode: targeted masks differentiate the task loss with respect to the codes.
    with predictor.numerics(gradients=True):
        clean = model.predict(x, "ftn")
        reconstruction = model.reconstruct(clean.z_i)
        logits = clean.initial
        # Training's own generator takes the FTN, whose decoders make the hard example.
        hard = generate_hard_examples(model.ftn, fixed_mask, clean.z_i, clean.z_s, x, logits.argmax(1))
    corrupted_image, corrupted_logits = hard.image, hard.logits

    single = _single_slice(mapping)

    def image_map(values: torch.Tensor) -> np.ndarray:
        out, _ = single.values_to_input_grid(values.float().cpu().numpy())
        return np.take(out[0], 0, axis=axis)

    def probability_map(values: torch.Tensor) -> np.ndarray:
        out = single.probabilities_to_input_grid(values.float().softmax(1).cpu().numpy())
        return np.take(out, 0, axis=axis + 1)

    def label_map(values: torch.Tensor) -> np.ndarray:
        out = single.to_input_grid(values.argmax(1).to("cpu", torch.uint8).numpy())
        return np.take(out, 0, axis=axis)

    return HardExamplePreview(
        axis=axis,
        slice_index=int(slice_index),
        image=image_map(x),
        reconstruction=image_map(reconstruction),
        corrupted_image=image_map(corrupted_image),
        labels=label_map(logits),
        probabilities=probability_map(logits),
        corrupted_labels=label_map(corrupted_logits),
        corrupted_probabilities=probability_map(corrupted_logits),
        scheme=scheme,
        fraction=float(fraction),
        soft_factor=float(soft_factor),
        seed=int(seed),
    )
