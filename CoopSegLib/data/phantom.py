"""Synthetic short-axis cine MR phantom with exact labels: the embedded default training data and test data.

Each subject is a torso cross-section stack from above the cardiac base to below the apex: subcutaneous fat,
chest-wall muscle, lungs with vessels, spine, descending aorta, liver near the apex, pericardial fat, and a heart
with an LV blood pool (papillary muscles inside, labelled as cavity as in ACDC), a myocardial ring closing into an
apical cap, and an RV crescent that ends before the apex. Size, shape, position, orientation, spacing, slice count,
contrast, coil bias and noise vary per subject; ES is the same subject with a contracted heart.

Intensities follow balanced SSFP cine contrast (bright blood and fat, grey myocardium, dark lungs). Partial volume
comes from rendering every voxel at 2 x 2 x 2 sub-positions and averaging; labels are the anatomy at voxel centres.
Noise is Rician (magnitude of complex Gaussian noise), so the background looks like real magnitude images.

>>> cases = phantom_subject(0)
>>> [case.frame for case in cases], sorted(set(cases[0].label.array.ravel().tolist()))
(['ED', 'ES'], [0, 1, 2, 3])
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np

from CoopSegLib.data.case import Case
from CoopSegLib.data.geometry import Volume
from CoopSegLib.data.labels import LV_CAVITY, LV_MYOCARDIUM, RV_CAVITY

# Relative bSSFP intensities (blood = 1).
_BLOOD, _MYO, _FAT, _MUSCLE, _TISSUE, _LUNG, _LIVER, _MARROW, _CSF = 1.0, 0.28, 0.9, 0.3, 0.42, 0.05, 0.45, 0.5, 0.85


@dataclass
class _Field:
    """A smooth random field given analytically (sum of plane waves), so it can be evaluated on any grid."""

    frequencies: np.ndarray  # (K, 2) cycles per mm
    phases: np.ndarray  # (K,)
    amplitudes: np.ndarray  # (K,)

    @classmethod
    def random(cls, rng: np.random.Generator, count: int, wavelength: Tuple[float, float],
               amplitude: float) -> "_Field":
        angle = rng.uniform(0, 2 * np.pi, count)
        frequency = 1.0 / rng.uniform(*wavelength, count)
        vectors = np.stack([np.cos(angle), np.sin(angle)], axis=1) * frequency[:, None]
        return cls(vectors, rng.uniform(0, 2 * np.pi, count), rng.uniform(0.5, 1.0, count) * amplitude / np.sqrt(count))

    def __call__(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        out = np.zeros(np.broadcast(x, y).shape, dtype=np.float32)
        for (fx, fy), phase, amplitude in zip(self.frequencies, self.phases, self.amplitudes):
            out += amplitude * np.sin(2 * np.pi * (fx * x + fy * y) + phase).astype(np.float32)
        return out


@dataclass
class _Anatomy:
    """Subject-level shape parameters (mm, radians); ``frame`` scales turn ED into ES."""

    body: Tuple[float, float]
    fat: float
    muscle: float
    heart: Tuple[float, float]
    lv_radius: float
    wall: float
    length: float
    ellipticity: Tuple[float, float]
    harmonics: np.ndarray  # (3, 2): amplitude, phase for harmonics 3..5
    rv_angle: float
    rv_span: float
    rv_depth: float
    rv_end: float
    papillary: Tuple[float, float]
    lungs: Tuple[Tuple[float, float, float, float], ...]
    vessels: np.ndarray  # (N, 3): x, y, radius
    spine: Tuple[float, float]
    aorta: Tuple[float, float, float]
    liver: Tuple[float, float, float]
    fat_field: _Field
    texture: _Field
    contrast: Dict[str, float]


def _anatomy(rng: np.random.Generator) -> _Anatomy:
    ax, ay = rng.uniform(150, 190), rng.uniform(100, 130)
    lv = rng.uniform(25, 36)  # ED LV cavity radius at the base, mm (dilated hearts at the top of the range)
    rv_angle = np.deg2rad(rng.uniform(195, 255))  # towards the patient's right and front
    lungs = (
        (rng.uniform(65, 85), rng.uniform(15, 35), rng.uniform(30, 45), rng.uniform(50, 70)),
        (-rng.uniform(70, 90), rng.uniform(15, 35), rng.uniform(35, 50), rng.uniform(55, 75)),
    )
    vessels = []
    for cx, cy, sx, sy in lungs:
        for _ in range(9):
            r, a = np.sqrt(rng.uniform(0.05, 0.7)), rng.uniform(0, 2 * np.pi)
            vessels.append((cx + r * sx * np.cos(a), cy + r * sy * np.sin(a), rng.uniform(1.5, 3.5)))
    contrast = {
        "blood": rng.uniform(0.85, 1.0),
        "myo": rng.uniform(0.2, 0.34),
        "fat": rng.uniform(0.75, 1.0),
        "tissue": rng.uniform(0.3, 0.5),
        "muscle": rng.uniform(0.2, 0.35),
        "liver": rng.uniform(0.35, 0.55),
    }
    return _Anatomy(
        body=(ax, ay),
        fat=rng.uniform(6, 16),
        muscle=rng.uniform(8, 16),
        heart=(rng.uniform(20, 40), rng.uniform(-35, -15)),
        lv_radius=lv,
        wall=rng.uniform(6, 12),
        length=rng.uniform(70, 95),
        ellipticity=(rng.uniform(0.0, 0.08), rng.uniform(0, np.pi)),
        harmonics=np.stack([rng.uniform(0, 0.03, 3), rng.uniform(0, 2 * np.pi, 3)], axis=1),
        rv_angle=rv_angle,
        rv_span=np.deg2rad(rng.uniform(70, 100)),
        rv_depth=rng.uniform(20, 35),
        rv_end=rng.uniform(0.7, 0.9),
        papillary=(rng.uniform(0, 2 * np.pi), rng.uniform(1.6, 2.4)),
        lungs=lungs,
        vessels=np.array(vessels),
        spine=(rng.uniform(-8, 8), ay - rng.uniform(30, 40)),
        aorta=(rng.uniform(10, 25), ay - rng.uniform(55, 70), rng.uniform(9, 13)),
        liver=(-rng.uniform(20, 50), rng.uniform(10, 40), rng.uniform(55, 80)),
        fat_field=_Field.random(rng, 6, (15, 40), 1.0),
        texture=_Field.random(rng, 10, (6, 40), 0.15),
        contrast=contrast,
    )


def _ellipse(x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float) -> np.ndarray:
    return ((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2 <= 1.0


def _perturbed_ellipse(
    x: np.ndarray, y: np.ndarray, cx: float, cy: float, sx: float, sy: float, wobble: "_Field", amount: float
) -> np.ndarray:
    """An ellipse whose boundary is pushed in and out by a smooth field (organs are not perfect ellipses)."""
    return ((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2 <= 1.0 + amount * wobble(x, y)


def _background(x: np.ndarray, y: np.ndarray, a: _Anatomy) -> np.ndarray:
    """Everything that does not change along the stack: torso, fat, muscle, lungs, vessels, spine, aorta."""
    c = a.contrast
    image = np.zeros(x.shape, dtype=np.float32)
    ax, ay = a.body
    wobble = a.fat_field(x * 0.4, y * 0.4)  # very smooth: the torso outline
    body_radius = np.sqrt((x / ax) ** 2 + (y / ay) ** 2) - 0.04 * wobble
    body = body_radius <= 1.0
    image[body] = c["tissue"]
    fat_depth = a.fat * (1.0 + 0.5 * wobble) / ay
    inner = body_radius <= 1.0 - fat_depth - a.muscle / ay
    image[body & ~inner] = c["muscle"]
    image[body & (body_radius > 1.0 - fat_depth)] = c["fat"]
    # Fat between muscle bundles: thin bright streaks in the chest wall.
    streaks = body & ~inner & (np.abs(a.texture(x * 2.5, y * 2.5)) < 0.01)
    image[streaks] = c["fat"] * 0.8
    for cx, cy, sx, sy in a.lungs:
        lung = _perturbed_ellipse(x, y, cx, cy, sx, sy, a.fat_field, 0.25) & inner
        image[lung] = _LUNG * (1.0 + 6.0 * np.abs(a.texture(x[lung] * 3, y[lung] * 3)))
    for vx, vy, vr in a.vessels:
        image[_ellipse(x, y, vx, vy, vr, vr) & inner] = 0.5
    sx_, sy_ = a.spine
    image[_ellipse(x, y, sx_, sy_, 22, 19)] = _MUSCLE * 0.6
    image[_ellipse(x, y, sx_, sy_ - 3, 16, 13)] = _MARROW
    image[_ellipse(x, y, sx_, sy_ + 20, 6, 6)] = _CSF
    ox, oy, orad = a.aorta
    image[_ellipse(x, y, ox, oy, orad + 1.5, orad + 1.5)] = c["myo"]
    image[_ellipse(x, y, ox, oy, orad, orad)] = c["blood"] * 0.95
    return image * (1.0 + a.texture(x, y))


def _liver_distance(x: np.ndarray, y: np.ndarray, a: _Anatomy) -> np.ndarray:
    """Normalised squared distance from the liver centre; the liver at growth g is where this is <= g**2."""
    lx, ly, lr = a.liver
    return ((x - lx) / lr) ** 2 + ((y - ly) / (0.8 * lr)) ** 2 - 0.2 * a.fat_field(x, y)


def _heart(
    x: np.ndarray,
    y: np.ndarray,
    fields: Dict[str, np.ndarray],
    t: float,
    a: _Anatomy,
    scales: Dict[str, float],
    image: np.ndarray,
    label: np.ndarray,
) -> None:
    """Draw the heart at long-axis position ``t`` into ``image`` and ``label`` (in place).

    ``t`` runs from 0 at the ventricular base to 1 at the LV endocardial apex; x points to the patient's left and
    y to the back. ``fields`` holds the precomputed polar coordinates and smooth fields on the same grid.
    """
    c = a.contrast
    hx, hy = a.heart
    rho, patch, texture = fields["rho"], fields["patch"], fields["texture"]
    length = a.length * scales["length"]
    s = t * a.length / length  # the same slice sits nearer the apex of a shortened (ES) heart
    if s < 0:  # above the base: atria and outflow tract, bright blood without ventricular labels
        depth = min(1.0, -s * 4)
        image[_ellipse(x, y, hx + 5, hy + 15, 18 + 8 * depth, 14 + 6 * depth)] = c["blood"]
        image[_ellipse(x, y, hx - 25, hy - 8, 14, 11)] = c["blood"] * 0.9
        return
    shape = fields["shape"]
    endo0 = a.lv_radius * scales["lv"]
    epi0 = np.sqrt(endo0**2 + (a.lv_radius + a.wall) ** 2 - a.lv_radius**2)  # myocardial volume is conserved
    cap = (epi0 - endo0) / length  # the wall closes the apex: the epicardial apex lies beyond the cavity's
    # A bullet-shaped ventricle: nearly cylindrical at the base, closing quickly near the apex.
    endo = endo0 * np.sqrt(max(0.0, 1.0 - min(s, 1.0) ** 2.5))
    epi = epi0 * np.sqrt(max(0.0, 1.0 - min(s / (1.0 + cap), 1.0) ** 2.5))
    if epi <= 0:
        return
    # RV crescent hugging the septum, shrinking towards the apex and ending before it.
    rv_scale = max(0.0, 1.0 - (s / a.rv_end) ** 2)
    rv_depth = a.rv_depth * scales["rv"] * np.sqrt(rv_scale)
    offset = fields["rv_offset"]
    span = a.rv_span * (0.7 + 0.3 * rv_scale)
    crescent = np.clip(np.cos(0.5 * np.pi * np.clip(offset / span, -1, 1)), 0, 1) ** 0.6 * rv_depth
    epi_r = epi * shape
    endo_r = endo * shape
    # Pericardial fat: a patchy layer around the heart, thicker where the smooth field is high (the grooves).
    outline = epi_r + crescent + 3.0 * (crescent > 0.5)
    fat_layer = (rho > outline) & (rho < outline + 1.0 + 6.0 * np.clip(patch, 0, None)) & (patch > 0.1)
    image[fat_layer & (image > _LUNG * 4)] = c["fat"]
    rv_wall = (rho >= epi_r) & (rho < epi_r + crescent + 2.5) & (crescent > 0.5)
    image[rv_wall] = c["myo"]
    rv = (rho >= epi_r + 0.5) & (rho < epi_r + crescent) & (crescent > 1.0)
    # Blood is not uniform: slow flow near the walls and in the RV apex darkens it a little.
    image[rv] = c["blood"] * (0.9 + 0.3 * texture[rv])
    label[rv] = RV_CAVITY
    myo = rho < epi_r
    image[myo] = c["myo"]
    label[myo] = LV_MYOCARDIUM
    cavity = rho < endo_r
    image[cavity] = c["blood"] * (1.0 + 0.3 * texture[cavity])
    label[cavity] = LV_CAVITY
    if 0.15 < s < 0.85 and endo > 8:  # two papillary muscles against the wall, labelled as cavity (ACDC)
        pap_r = (2.2 + 1.5 * (scales["lv"] < 1)) * min(1.0, endo / 12)
        for angle in (a.papillary[0], a.papillary[0] + a.papillary[1]):
            px = hx + (endo - pap_r) * np.cos(angle)
            py = hy + (endo - pap_r) * np.sin(angle)
            image[cavity & _ellipse(x, y, px, py, pap_r, pap_r)] = c["myo"] * 1.2


def _heart_fields(x: np.ndarray, y: np.ndarray, a: _Anatomy) -> Dict[str, np.ndarray]:
    """Everything about the heart's neighbourhood that does not change along the stack."""
    hx, hy = a.heart
    theta = np.arctan2(y - hy, x - hx)
    shape = 1.0 + a.ellipticity[0] * np.cos(2 * (theta - a.ellipticity[1]))
    for k, (amp, phase) in enumerate(a.harmonics, start=3):
        shape = shape + amp * np.cos(k * theta + phase)
    return {
        "rho": np.hypot(x - hx, y - hy),
        "theta": theta,
        "shape": shape,
        "rv_offset": np.angle(np.exp(1j * (theta - a.rv_angle))),
        "patch": a.fat_field(x, y),
        "texture": a.texture(x * 1.5, y * 1.5),
    }


def _blur_kspace(image: np.ndarray, keep: float) -> np.ndarray:
    """Truncate k-space in-plane with a tapered window: MR's point spread (mild blur and Gibbs ringing)."""
    spectrum = np.fft.fft2(image, axes=(0, 1))
    window = 1.0
    for axis, n in enumerate(image.shape[:2]):
        f = np.abs(np.fft.fftfreq(n)) / 0.5  # 0 at DC, 1 at Nyquist
        w = np.clip((1.0 - f / keep) / 0.15, 0.0, 1.0)  # flat, then a short linear taper to zero at ``keep``
        window = window * (w[:, None] if axis == 0 else w[None, :])
    return np.real(np.fft.ifft2(spectrum * window[:, :, None], axes=(0, 1))).astype(np.float32)


def phantom_subject(
    seed: int, frames: Sequence[Union[str, float]] = ("ED", "ES"), supersample: int = 2, noise: bool = True
) -> List[Case]:
    """One synthetic subject: a Case per frame (ED, ES), int16 image and canonical label map, ACDC-like storage.

    Deterministic per ``seed``; asking for one frame gives the same volume as asking for both. A frame may also be
    a number c in [0, 1], a cine frame between ED (0) and ES (1): the heart's scales are interpolated linearly, its
    noise drawn afresh, and the Case's frame is the number as text (e.g. "0.5").
    """
    rng = np.random.default_rng(seed)
    anatomy = _anatomy(rng)
    spacing = float(np.round(rng.uniform(1.2, 1.9), 4))
    thickness = float(np.round(rng.uniform(6.0, 10.0), 2))
    before, after = rng.uniform(0.2, 1.5) * thickness, rng.uniform(0.0, 1.5) * thickness
    slices = int(np.clip(np.ceil((before + anatomy.length + after) / thickness), 6, 18))
    fov = rng.uniform(220, 300)
    shape = (int(fov / spacing), int(fov * rng.uniform(0.8, 1.0) / spacing), slices)
    rotation = rng.uniform(-np.pi, np.pi)  # in-plane orientation of the anatomy in the image
    jitter = rng.uniform(-0.08, 0.08, 2) * fov  # the field of view is roughly centred on the heart
    bias = rng.uniform(-0.4, 0.4, 5)
    sigma = rng.uniform(0.015, 0.04)
    keep = rng.uniform(0.6, 0.85)
    scale = rng.uniform(250, 700)
    es_scales = {"lv": rng.uniform(0.55, 0.78), "rv": rng.uniform(0.5, 0.75), "length": rng.uniform(0.88, 0.95)}
    origin = rng.uniform(-20, 20, 3)

    # Anatomical coordinates of voxel centres (for labels) and of sub-voxel positions (for partial volume).
    cos, sin = np.cos(rotation), np.sin(rotation)
    offsets = (np.arange(supersample) + 0.5) / supersample - 0.5
    i = (np.arange(shape[0]) - (shape[0] - 1) / 2) * spacing
    j = (np.arange(shape[1]) - (shape[1] - 1) / 2) * spacing
    u, v = np.meshgrid(i + jitter[0], j + jitter[1], indexing="ij")
    fine_u = np.repeat((u[:, :, None, None] + offsets[None, None, :, None] * spacing), supersample, 3)
    fine_v = np.repeat((v[:, :, None, None] + offsets[None, None, None, :] * spacing), supersample, 2)
    hx, hy = anatomy.heart

    def anatomical(uu: np.ndarray, vv: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
        return cos * uu - sin * vv + hx, sin * uu + cos * vv + hy

    x, y = anatomical(u, v)
    fx, fy = anatomical(fine_u, fine_v)
    fine_background = _background(fx, fy, anatomy)
    liver = _liver_distance(fx, fy, anatomy)
    solid = fine_background > _LUNG * 4  # fat and liver do not grow into the lungs
    # The heart only touches a box around it: render it there alone (most of the cost).
    radius = anatomy.lv_radius + anatomy.wall + anatomy.rv_depth + 20.0
    near = (np.abs(u) < radius) & (np.abs(v) < radius)
    rows, cols = np.flatnonzero(near.any(axis=1)), np.flatnonzero(near.any(axis=0))
    box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
    centre_fields = _heart_fields(x[box], y[box], anatomy)
    fine_fields = _heart_fields(fx[box], fy[box], anatomy)
    nu, nv = np.meshgrid(np.linspace(-1, 1, shape[0]), np.linspace(-1, 1, shape[1]), indexing="ij")
    coil = np.exp(bias[0] * nu + bias[1] * nv + bias[2] * nu**2 + bias[3] * nv**2 + bias[4] * nu * nv)

    cases = []
    for frame in frames:
        contraction = {"ED": 0.0, "ES": 1.0}.get(frame, frame) if isinstance(frame, str) else float(frame)
        if isinstance(contraction, str) or not 0.0 <= contraction <= 1.0:
            raise ValueError(f"phantom frames are 'ED', 'ES' or a number in [0, 1], not {frame!r}")
        scales = es_scales if contraction == 1.0 else {  # ES exactly as before (1 + (v - 1) may round off v)
            name: 1.0 + contraction * (value - 1.0) for name, value in es_scales.items()}
        noise_stream = {"ED": 0, "ES": 1}.get(frame) if isinstance(frame, str) else 2 + round(contraction * 1e6)
        noise_rng = np.random.default_rng([seed, noise_stream])
        frame = frame if isinstance(frame, str) else f"{contraction:g}"
        image = np.zeros(shape, dtype=np.float32)
        label = np.zeros(shape, dtype=np.uint8)
        scratch = np.zeros(x[box].shape, np.float32)
        for k in range(slices):
            z = k * thickness - before
            _heart(x[box], y[box], centre_fields, z / anatomy.length, anatomy, scales, scratch, label[box + (k,)])
            total = np.zeros(shape[:2], dtype=np.float32)
            for dz in offsets * thickness:  # through-plane partial volume
                t = (z + dz) / anatomy.length
                fine = fine_background.copy()
                if t > 0.45:  # the liver dome rises under the inferior wall towards the apex
                    grow = min(1.0, (t - 0.45) / 0.4)
                    fine[(liver <= grow**2) & solid] = anatomy.contrast["liver"]
                heart = fine[box]
                _heart(fx[box], fy[box], fine_fields, t, anatomy, scales, heart, np.zeros(heart.shape, np.uint8))
                total += fine.mean(axis=(2, 3))
            image[:, :, k] = total / supersample
        image = _blur_kspace(image, keep) * coil[:, :, None].astype(np.float32)
        if noise:  # Rician: magnitude of the complex signal plus complex Gaussian noise
            real = image + noise_rng.normal(0, sigma, shape).astype(np.float32)
            imag = noise_rng.normal(0, sigma, shape).astype(np.float32)
            image = np.sqrt(real**2 + imag**2)
        array = np.round(np.clip(image, 0, None) * scale).astype(np.int16)
        affine = np.diag([-spacing, -spacing, thickness, 1.0])  # stored like ACDC (LPS, slice axis last)
        affine[:3, 3] = origin
        metadata = {"dataset": "phantom", "seed": seed, "spacing": spacing, "thickness": thickness}
        cases.append(
            Case(f"phantom{seed:04d}", frame, Volume(array, affine), Volume(label, affine), f"phantom:{seed}", metadata)
        )
    return cases


def phantom_cases(n_subjects: int, seed: int = 0, frames: Sequence[str] = ("ED", "ES")) -> List[Case]:
    """``n_subjects`` synthetic subjects (seeds ``seed``, ``seed + 1``, ...), ED and ES frames each."""
    cases: List[Case] = []
    for index in range(n_subjects):
        cases.extend(phantom_subject(seed + index, frames))
    return cases
