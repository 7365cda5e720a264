"""The segmenter: an image (array + affine) in, label maps on the image's own grid out.

    segmenter = Segmenter("model.coopseg", device="auto")
    result = segmenter.segment(array, affine)            # 2D slice, 3D volume or 4D cine (X, Y, Z, T)
    result.initial, result.refined                       # uint8 label maps (FTN, FTN+STN), the array's shape

Each frame is prepared exactly as at training time (``prepare_image``: percentile clip and min-max on the whole
volume, resampling to the bundle's spacing and size); the ``SlicePredictor`` then min-maxes each slice, as
``SliceDataset`` does, and runs all slices of all frames through the networks in batches of at most ``max_slices``
(the same predictor validation uses); the STN refines the FTN logits of the same pass (one refinement, no second
FTN run), and the image decoder is skipped (segmentation does not need it).
Results are mapped back with the frame's ``SliceMapping``: labels by nearest neighbour, probabilities linearly.
With ``quality=True`` (the default) the same pass measures the signals of ``quality`` (the STN runs even for stage
"ftn", and the image decoder on the central part of each slice) and ``result.quality`` holds the estimated Dice.

``segment`` runs its stages in turn, and each can be used alone: ``prepare`` (check, model slices) ->
``predict_slices`` (the networks, in batches) -> ``estimate`` (quality) -> ``map_back`` (onto the input's grid, with
a post-processing ``clean_up`` such as ``keep_largest_components``); the second look is a post-processing loop over
those stages. A ``Bundle`` given to the Segmenter is left as it was (the Segmenter runs a copy of its model).
"""

from __future__ import annotations

import copy
import math
import os
from dataclasses import dataclass, replace
from typing import Any, Callable, List, Optional, Tuple, Union

import numpy as np
import torch

from CoopSegLib.bundle import Bundle, BundleError, load_bundle
from CoopSegLib.data.geometry import SliceMapping
from CoopSegLib.data.filters import gaussian_blur
from CoopSegLib.data.preprocess import prepare_image
from CoopSegLib.errors import CoopSegError
from CoopSegLib.inference.components import keep_largest_components
from CoopSegLib.inference.inputs import ImageInput, check_image
from CoopSegLib.inference.monitor import Monitor, ProgressCallback
from CoopSegLib.inference.quality import (METADATA_KEY, QualityEstimate, SliceSignals, check_calibration,
                                          estimate_quality, flip_slices, flipped_look_slices, frame_features,
                                          pass_signals, uses_flip)
from CoopSegLib.inference.slice_predictor import DEFAULT_MAX_SLICES, SlicePredictor
from CoopSegLib.networks import STAGES, Prediction, size_divisor
from CoopSegLib.runtime import Runtime
from CoopSegLib.vocabulary import REVIEW
from CoopSegLib.weights import default_bundle

# The second look's in-plane blurs, in model pixels (1.37 mm), tried in turn while the answer stays flagged: sigma
# 1.5 px lifted issue 14's spiked volumes from empty to readable while costing about 0.01 Dice on clean ones (so it
# is only tried on a flagged result); 3 px rescues most of the spiked volumes that 1.5 px leaves empty
# (docs/model_card.md).
SECOND_LOOK_SIGMAS = (1.5, 3.0)


@dataclass
class Segmentation:
    """Label maps (uint8, canonical codes, the input array's shape) and optional per-voxel maps.

    ``probabilities`` (float32, classes first: (C, *shape)) and ``entropy`` (float32, *shape, in [0, 1]: Shannon
    entropy over the classes divided by log C) belong to ``stage``'s output.
    """

    initial: np.ndarray  # FTN
    refined: Optional[np.ndarray]  # FTN+STN; None when stage == "ftn"
    stage: str
    probabilities: Optional[np.ndarray] = None
    entropy: Optional[np.ndarray] = None
    quality: Optional[QualityEstimate] = None  # estimated Dice of ``stage``'s output (``segment(quality=True)``)
    blurred: bool = False  # the labels come from the second look at a blurred input (``segment(second_look=True)``)

    @property
    def labels(self) -> np.ndarray:
        """The output of the requested stage."""
        return self.refined if self.stage == "stn" else self.initial


@dataclass
class PreparedImage:
    """Model-grid slices of every frame (concatenated) and how each frame maps back."""

    image: ImageInput
    slices: np.ndarray  # (sum of S_t, size, size) float32, before the per-slice min-max (``SlicePredictor``'s)
    mappings: List[SliceMapping]
    starts: List[int]  # first slice of each frame in ``slices``

    def frame_slices(self, frame: int) -> slice:
        return slice(self.starts[frame], self.starts[frame] + self.mappings[frame].num_slices)

    def blurred(self, sigma: float) -> "PreparedImage":
        """The same image with every model slice blurred in-plane by ``sigma`` pixels before the per-slice
        min-max (the second look of ``Segmenter.segment``); checking and resampling are not repeated."""
        return replace(self, slices=gaussian_blur(torch.from_numpy(np.ascontiguousarray(self.slices)), sigma).numpy())


@dataclass
class SlicePass:
    """What one pass of the networks gave on the model grid (``Segmenter.predict_slices``)."""

    stage: str  # the stage asked for: "ftn" or "stn"
    initial: np.ndarray  # (S, size, size) uint8 FTN labels
    refined: Optional[np.ndarray]  # FTN+STN labels; None for stage "ftn" without signals
    signals: Optional[np.ndarray]  # (3, S) the quality signals of ``pass_signals``; None when not measured
    probabilities: Optional[np.ndarray]  # (S, C, size, size) of ``stage``'s output; None when not asked for
    flipped: Optional[np.ndarray] = None  # FTN labels of ``flipped_slices`` read mirrored (the flipped look)
    flipped_slices: Optional[np.ndarray] = None  # indices into the S slices; None when the look was not taken


def normalised_entropy(probabilities: np.ndarray) -> np.ndarray:
    """Shannon entropy over axis 0 divided by log(C): 0 for a certain voxel, 1 for a uniform one."""
    p = np.clip(probabilities, 1e-12, 1.0)
    return (-(p * np.log(p)).sum(axis=0) / math.log(probabilities.shape[0])).astype(np.float32)


def _bundle_grid(bundle: Bundle) -> Tuple[float, int]:
    """(spacing mm, size px) the bundle was trained at, checked against its networks."""
    preprocessing = bundle.metadata.get("preprocessing", {})
    try:
        spacing, size = float(preprocessing["spacing_mm"]), int(preprocessing["size"])
    except (KeyError, TypeError, ValueError):
        raise BundleError(f"{bundle.path}: metadata 'preprocessing' needs numeric 'spacing_mm' and 'size', "
                          f"got {preprocessing!r}") from None
    divisor = size_divisor(bundle.model.config.widths)
    if not (spacing > 0 and math.isfinite(spacing)) or size <= 0 or size % divisor:
        raise BundleError(f"{bundle.path}: preprocessing spacing {spacing} mm / size {size} px is unusable "
                          f"(size must be a positive multiple of {divisor} for these networks)")
    if bundle.model.config.in_channels != 1:
        raise BundleError(f"{bundle.path}: the networks expect {bundle.model.config.in_channels} input channels; "
                          "CoopSeg segments single-channel MR")
    return spacing, size


class Segmenter:
    """A loaded model bundle, ready to segment images in memory.

    ``bundle``: a loaded ``Bundle``, a bundle folder, or None for the shipped default. ``device``: "auto" (CUDA when
    available), "cpu" or "cuda[:N]". ``precision``: "auto" uses bf16 autocast on GPUs with bf16 and on CPUs with
    native bf16 (as training does), "fp32" or "bf16" force it. ``max_slices`` bounds the slices per forward pass.
    ``channels_last`` (default on) sets the networks' memory format.

    >>> import numpy as np
    >>> segmenter = Segmenter(device="cpu", precision="fp32")         # the shipped model
    >>> volume = np.random.default_rng(0).random((64, 64, 3), dtype=np.float32)
    >>> result = segmenter.segment(volume, np.diag([1.5, 1.5, 8.0, 1.0]), quality=False)
    >>> result.initial.shape, result.refined.dtype, result.labels is result.refined
    ((64, 64, 3), dtype('uint8'), True)
    """

    def __init__(self, bundle: Union[Bundle, str, "os.PathLike[str]", None] = None, device: str = "auto",
                 precision: str = "auto", max_slices: int = DEFAULT_MAX_SLICES,
                 channels_last: Optional[bool] = None) -> None:
        if max_slices < 1:
            raise CoopSegError(f"max_slices must be at least 1, got {max_slices}")
        try:
            self.runtime = Runtime.create(device, precision, channels_last)
        except (RuntimeError, ValueError) as error:
            raise CoopSegError(str(error)) from None
        self.device = self.runtime.device
        if isinstance(bundle, Bundle):  # the caller's: its model stays where and as it is (device, format, mode)
            model = copy.deepcopy(bundle.model)
        else:
            bundle = load_bundle(bundle if bundle is not None else default_bundle(), self.device)
            model = bundle.model
        self.bundle = bundle
        self.spacing, self.size = _bundle_grid(bundle)
        self.predictor = SlicePredictor(model, self.runtime, max_slices)
        self.model = self.predictor.model
        self.calibration = bundle.metadata.get(METADATA_KEY)
        if self.calibration is not None:
            try:
                check_calibration(self.calibration, str(bundle.path))
            except ValueError as error:
                raise BundleError(str(error)) from None

    @property
    def num_classes(self) -> int:
        return self.model.config.num_classes

    # --- steps ------------------------------------------------------------------------------------------------
    def prepare(self, array: np.ndarray, affine: np.ndarray, monitor: Optional[Monitor] = None,
                allow_label_like_input: bool = False) -> PreparedImage:
        """Check the image (``check_image``: a label map is refused unless ``allow_label_like_input``) and turn
        every frame into model slices, exactly as at training time."""
        image = check_image(array, affine, allow_label_like_input)
        monitor = monitor or Monitor()
        slices, mappings, starts, count = [], [], [], 0
        for index, frame in enumerate(image.frames):
            monitor.report(0.1 * index / len(image.frames), f"preparing frame {index + 1} of {len(image.frames)}")
            frame_slices, mapping = prepare_image(frame, self.spacing, self.size)
            slices.append(frame_slices)
            mappings.append(mapping)
            starts.append(count)
            count += mapping.num_slices
        stacked = np.concatenate(slices) if len(slices) > 1 else slices[0]
        return PreparedImage(image, stacked, mappings, starts)

    def predict(self, slices: np.ndarray, stage: str = "stn") -> Prediction:
        """The model's prediction (``CoopSegModel.predict``: float32 logits) for one batch of model slices."""
        return self.predictor.predict(slices, stage)

    # --- the whole job ----------------------------------------------------------------------------------------
    def segment(self, array: np.ndarray, affine: np.ndarray, stage: str = "stn", probabilities: bool = False,
                entropy: bool = False, largest_component: bool = False, quality: bool = True,
                progress: Optional[ProgressCallback] = None, cancel: Any = None,
                second_look: bool = False, allow_label_like_input: bool = False,
                flipped_look: Optional[bool] = None) -> Segmentation:
        """Segment a 2D slice, 3D volume or 4D cine given as an array and its 4x4 voxel-to-world (RAS) affine.

        ``stage``: "stn" (default) returns FTN and FTN+STN labels, "ftn" the FTN's alone (faster). ``probabilities``
        / ``entropy`` add those maps for the stage's output. ``largest_component`` keeps each structure's largest
        face-connected 3D component per frame (the rest becomes background; probabilities are left as they are).
        ``quality`` adds ``result.quality``, the estimated Dice of the stage's output (measured before
        ``largest_component``'s clean-up).
        ``progress(fraction, message)`` and ``cancel`` (callable or threading.Event): see ``monitor``; a
        cancellation raises ``Cancelled`` and returns nothing.
        ``second_look`` (off here, on by default in ``coopseg segment`` and the Slicer module): while the quality
        estimate flags the result for review, segment again with each model
        slice blurred in-plane by the next of SECOND_LOOK_SIGMAS pixels, and keep the answer with the highest
        estimate (``result.blurred`` when it is a blurred one). A k-space spike's stripes can leave the network with
        an empty answer on an image a person reads easily; the blur removes the stripes' fine texture.
        ``allow_label_like_input``: segment an array that looks like a label map (a handful of small whole numbers,
        ``CoopSegLib.data.label_like``) instead of raising a CoopSegError; its quality flag is then always "review"
        (and the second look, which cannot turn a label map into an image, is skipped).
        ``flipped_look``: also run the FTN on every other slice mirrored left-right, for the quality estimate's
        ``FLIP_FEATURES``; None (default) takes it when the calibration uses them (``uses_flip``: the shipped one
        does), True always (``coopseg calibrate`` measures it); False with such a calibration raises a CoopSegError
        unless ``quality`` is off (its estimate would lack two of its features).
        """
        quality = quality or second_look
        flipped_look = self._stage_and_look(flipped_look, quality, stage)
        options = dict(stage=stage, probabilities=probabilities, entropy=entropy,
                       largest_component=largest_component, quality=quality, flipped_look=quality and flipped_look)
        monitor = Monitor(progress, cancel)
        prepared = self.prepare(array, affine, monitor, allow_label_like_input)
        best = self._segment_once(prepared, monitor, **options)
        for sigma in SECOND_LOOK_SIGMAS if second_look and prepared.image.label_values is None else ():
            if best.quality.flag != REVIEW:
                break
            # Each look takes half of the progress left: the bar never goes back, whether or not more looks follow.
            look = monitor.within(monitor.fraction, (1.0 + monitor.fraction) / 2, f"second look (blur {sigma:g} px): ")
            candidate = self._segment_once(prepared.blurred(sigma), look, **options)
            candidate.blurred = True
            best = candidate if candidate.quality.volume > best.quality.volume else best
        monitor.report(1.0, "done")
        return best

    def segment_blurred(self, array: np.ndarray, affine: np.ndarray, sigma: float, stage: str = "stn",
                        flipped_look: Optional[bool] = None) -> Segmentation:
        """One of the second look's candidates alone: a pass over the input with every model slice blurred in-plane
        by ``sigma`` pixels, with its quality estimate (``result.blurred`` is True). For scoring the second look
        offline (``CoopSegLib.evaluation.second_look_scoring``); ``segment(second_look=True)`` takes these looks
        itself."""
        flipped_look = self._stage_and_look(flipped_look, True, stage)
        prepared = self.prepare(array, affine).blurred(sigma)
        result = self._segment_once(prepared, Monitor(), stage, probabilities=False, entropy=False,
                                    largest_component=False, quality=True, flipped_look=flipped_look)
        result.blurred = True
        return result

    def _stage_and_look(self, asked: Optional[bool], quality: bool, stage: str) -> bool:
        """Whether to take the flipped look, after refusing an unknown ``stage``: ``asked``, or (None) when the
        calibration uses it. Refused off where the calibration needs it for the estimate: its models would miss two
        of their features."""
        if stage not in STAGES:
            raise CoopSegError(f"unknown stage {stage!r}; use one of {', '.join(STAGES)}")
        needed = quality and uses_flip(self.calibration, stage)
        if asked is None:
            return needed
        if needed and not asked:
            raise CoopSegError(f"{self.bundle.path}: this bundle's quality calibration uses the flipped look; leave "
                               "flipped_look at None (or True), or segment with quality=False")
        return asked

    def _segment_once(self, prepared: PreparedImage, monitor: Monitor, stage: str, probabilities: bool,
                      entropy: bool, largest_component: bool, quality: bool, flipped_look: bool) -> Segmentation:
        """One pass of the networks over prepared slices, mapped back onto the input's grid (see ``segment``)."""
        slice_pass = self.predict_slices(prepared, stage, signals=quality, probabilities=probabilities or entropy,
                                         monitor=monitor)
        if flipped_look:
            self.flipped_look(prepared, slice_pass, monitor)
        monitor.report(0.9, "mapping back onto the image grid")
        result = self.map_back(prepared, slice_pass, keep_largest_components if largest_component else None, monitor)
        if quality:
            result.quality = self.estimate(prepared, slice_pass)
        if slice_pass.probabilities is not None:
            result.entropy = normalised_entropy(result.probabilities) if entropy else None
            if not probabilities:
                result.probabilities = None
        return result

    # --- the stages of ``segment``, each usable alone ------------------------------------------------------------
    def predict_slices(self, prepared: PreparedImage, stage: str = "stn", signals: bool = True,
                       probabilities: bool = False, monitor: Optional[Monitor] = None) -> "SlicePass":
        """Run the networks over every prepared slice (``predictor.batches``): model-grid labels of both stages
        (the FTN's only for stage "ftn" without ``signals``), the quality signals of the same pass, and ``stage``'s
        probabilities when asked for."""
        monitor = monitor or Monitor()
        total = len(prepared.slices)
        initial_labels = np.empty((total, self.size, self.size), dtype=np.uint8)
        refined_labels = np.empty_like(initial_labels) if stage == "stn" or signals else None
        measured = np.zeros((3, total), dtype=np.float32) if signals else None
        stage_probabilities = (np.empty((total, self.num_classes, self.size, self.size), dtype=np.float32)
                               if probabilities else None)
        for start, stop in self.predictor.batches(total):
            monitor.report(0.1 + 0.8 * start / total, f"segmenting slices {start + 1}-{stop} of {total}")
            if measured is not None:
                prediction, values = self.predictor.predict_with(prepared.slices[start:stop], pass_signals)
                measured[:, start:stop] = values.cpu().numpy()
            else:
                prediction = self.predictor.predict(prepared.slices[start:stop], stage)
            initial, refined = prediction.initial, prediction.refined
            initial_labels[start:stop] = initial.argmax(1).to("cpu", torch.uint8).numpy()
            if refined is not None:
                refined_labels[start:stop] = refined.argmax(1).to("cpu", torch.uint8).numpy()
            if stage_probabilities is not None:
                output = refined if stage == "stn" else initial
                stage_probabilities[start:stop] = output.softmax(1).cpu().numpy()
        return SlicePass(stage, initial_labels, refined_labels, measured, stage_probabilities)

    def flipped_look(self, prepared: PreparedImage, slice_pass: "SlicePass",
                     monitor: Optional[Monitor] = None) -> None:
        """The FTN's labels of every other slice of each frame (``flipped_look_slices``) read mirrored left-right
        and mirrored back, stored in ``slice_pass`` for the estimate's ``FLIP_FEATURES``."""
        chosen = np.concatenate([prepared.starts[frame] + flipped_look_slices(mapping.num_slices)
                                 for frame, mapping in enumerate(prepared.mappings)])
        monitor = monitor or Monitor()
        mirrored = flip_slices(prepared.slices[chosen])
        labels = np.empty(mirrored.shape, dtype=np.uint8)
        for start, stop in self.predictor.batches(len(chosen)):
            monitor.check()
            prediction = self.predictor.predict(mirrored[start:stop], "ftn")
            labels[start:stop] = prediction.initial.argmax(1).to("cpu", torch.uint8).numpy()
        slice_pass.flipped, slice_pass.flipped_slices = flip_slices(labels), chosen

    def estimate(self, prepared: PreparedImage, slice_pass: "SlicePass") -> QualityEstimate:
        """The quality estimate of the pass's ``stage`` output: features of every frame from its model-grid labels
        and signals (``predict_slices(signals=True)``), mapped by the bundle's calibration."""
        if slice_pass.signals is None or slice_pass.refined is None:
            raise CoopSegError("the quality estimate needs a pass with signals: predict_slices(..., signals=True)")
        initial, refined, signals, stage = slice_pass.initial, slice_pass.refined, slice_pass.signals, slice_pass.stage
        frames, stacks = [], []
        chosen = slice_pass.flipped_slices
        for frame, mapping in enumerate(prepared.mappings):
            part = prepared.frame_slices(frame)
            looked = None if chosen is None else (chosen >= part.start) & (chosen < part.stop)
            affine = prepared.image.frames[frame].affine
            thickness = float(np.linalg.norm(np.asarray(affine)[:3, mapping.order[2]]))
            frames.append(frame_features(SliceSignals(
                initial=initial[part], refined=refined[part], entropy_ftn=signals[0, part],
                entropy_stn=signals[1, part], reconstruction=signals[2, part],
                pixel_ml=self.spacing ** 2 * thickness / 1000.0,
                flipped=None if looked is None else slice_pass.flipped[looked],
                flipped_slices=None if looked is None else chosen[looked] - part.start)))
            count = mapping.num_slices
            stacks.append(np.arange(count)[::-1] if mapping.flips[2] else np.arange(count))
        return estimate_quality(frames, stacks, self.calibration, stage,
                                label_like_input=prepared.image.label_values is not None)

    def map_back(self, prepared: PreparedImage, slice_pass: "SlicePass",
                 clean_up: Optional[Callable[[np.ndarray], np.ndarray]] = None,
                 monitor: Optional[Monitor] = None) -> Segmentation:
        """The pass's labels (and probabilities) on the input's own grid, frame by frame; ``clean_up``, a
        post-processing step applied to each frame's label map on that grid (``keep_largest_components``)."""
        monitor = monitor or Monitor()
        image = prepared.image
        initial, probabilities = slice_pass.initial, slice_pass.probabilities
        refined = slice_pass.refined if slice_pass.stage == "stn" else None
        maps: dict = {"initial": [], "refined": [], "probabilities": []}
        for frame, mapping in enumerate(prepared.mappings):
            monitor.check()
            part = prepared.frame_slices(frame)
            for name, slices in (("initial", initial), ("refined", refined)):
                if slices is not None:
                    labels = mapping.to_input_grid(slices[part])
                    maps[name].append(clean_up(labels) if clean_up is not None else labels)
            if probabilities is not None:
                maps["probabilities"].append(mapping.probabilities_to_input_grid(probabilities[part]))
        return Segmentation(
            initial=image.restore(maps["initial"]),
            refined=image.restore(maps["refined"]) if refined is not None else None,
            stage="stn" if refined is not None else "ftn",
            probabilities=np.ascontiguousarray(image.restore(maps["probabilities"], leading=1))
            if probabilities is not None else None,
        )

