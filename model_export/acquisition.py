"""A labelled real scan as another scanner and protocol would have acquired it.

A few real scans are one slice thickness, one pixel size, one kernel and one field of view
each; the clinic's scans vary in all of these. Each function below takes a labelled volume
at its own spacing and a random generator and returns a new one, the labels moved with the
image. :func:`reacquire` chains them; the stream then puts the result on the model grid as
the engine does (anti-aliased HU, labels by nearest voxel), so what the network sees of a
thick-slice or soft-kernel version is what inference would see of such a scan.

Flips, in-plane zoom, gain, added noise and thin slabs are applied later, to every patch
(:class:`model_export.dataset.Augmentation`), and are not repeated here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from habitus.labels import Tissue
from model_export.dataset import AIR_HU
from model_export.training_pairs import LabelledVolume, to_model_grid


@dataclass(frozen=True)
class Reacquisition:
    """Probabilities and ranges of the acquisition changes (one draw per fresh version)."""

    resample_p: float = 0.8
    inplane_mm: tuple[float, float] = (0.7, 3.0)
    slice_mm: tuple[float, float] = (1.0, 5.0)
    kernel_p: float = 0.7
    blur_mm: tuple[float, float] = (0.3, 1.5)  # Gaussian sigma of a soft kernel
    sharpen: tuple[float, float] = (0.3, 1.5)  # unsharp-mask gain of a sharp kernel
    noise_hu: tuple[float, float] = (0.0, 25.0)
    fov_p: float = 0.3
    crop_z_p: float = 0.5
    rotate_p: float = 0.5
    rotate_deg: float = 10.0


def _replace(volume: LabelledVolume, hu: np.ndarray, labels: np.ndarray) -> LabelledVolume:
    return LabelledVolume(
        hu=np.ascontiguousarray(np.clip(np.rint(hu), -32768, 32767).astype(np.int16)),
        labels=np.ascontiguousarray(labels.astype(np.uint8)),
        spacing=volume.spacing,
        name=volume.name,
    )


def resample(
    volume: LabelledVolume,
    rng: np.random.Generator,
    inplane_mm: tuple[float, float] = (0.7, 3.0),
    slice_mm: tuple[float, float] = (1.0, 5.0),
) -> LabelledVolume:
    """The scan at a random pixel size and slice spacing (HU anti-aliased, labels nearest).

    A spacing finer than the scan's own cannot add detail; that axis keeps the scan's spacing,
    which on the model grid gives the same image at a fraction of the cost.
    """
    pixel = max(float(rng.uniform(*inplane_mm)), volume.spacing[1], volume.spacing[2])
    thickness = max(float(rng.uniform(*slice_mm)), volume.spacing[0])
    return to_model_grid(volume, (thickness, pixel, pixel))


def kernel(
    volume: LabelledVolume,
    rng: np.random.Generator,
    blur_mm: tuple[float, float] = (0.3, 1.5),
    sharpen: tuple[float, float] = (0.3, 1.5),
) -> LabelledVolume:
    """A softer (Gaussian blur) or sharper (unsharp mask) reconstruction kernel, in-plane."""
    sigma_mm = float(rng.uniform(*blur_mm))
    sigma = (0.0, sigma_mm / volume.spacing[1], sigma_mm / volume.spacing[2])
    hu = volume.hu.astype(np.float32)
    smooth = ndimage.gaussian_filter(hu, sigma)
    soft = rng.random() < 0.5
    out = smooth if soft else hu + np.float32(rng.uniform(*sharpen)) * (hu - smooth)
    return _replace(volume, out, volume.labels)


def noise(
    volume: LabelledVolume, rng: np.random.Generator, sigma_hu: tuple[float, float] = (0.0, 25.0)
) -> LabelledVolume:
    """Gaussian quantum noise of a random level (dose), on the scan's own grid."""
    sigma = float(rng.uniform(*sigma_hu))
    hu = volume.hu.astype(np.float32) + rng.normal(0.0, sigma, volume.hu.shape).astype(np.float32)
    return _replace(volume, hu, volume.labels)


def truncate_fov(volume: LabelledVolume, rng: np.random.Generator) -> LabelledVolume:
    """A field of view that cuts the body: air outside a random ellipse, or a lateral cut.

    What lies outside the reconstructed field is not in the image, so it is background.
    """
    _, rows, cols = volume.hu.shape
    j, i = np.ogrid[:rows, :cols]
    if rng.random() < 0.5:
        cj = rows / 2 + rng.uniform(-0.1, 0.1) * rows
        ci = cols / 2 + rng.uniform(-0.1, 0.1) * cols
        aj = rng.uniform(0.35, 0.5) * rows
        ai = rng.uniform(0.35, 0.5) * cols
        outside = ((j - cj) / aj) ** 2 + ((i - ci) / ai) ** 2 > 1.0
    else:
        cut = int(rng.uniform(0.05, 0.25) * cols)
        outside = (i < cut) if rng.random() < 0.5 else (i >= cols - cut)
        outside = np.broadcast_to(outside, (rows, cols))
    hu = volume.hu.copy()
    labels = volume.labels.copy()
    hu[:, outside] = AIR_HU
    labels[:, outside] = Tissue.BACKGROUND
    return _replace(volume, hu, labels)


def crop_z(volume: LabelledVolume, rng: np.random.Generator, min_slices: int = 4) -> LabelledVolume:
    """A scan range that starts and stops anywhere within the original one."""
    depth = volume.hu.shape[0]
    keep = int(rng.integers(min(min_slices, depth), depth + 1))
    first = int(rng.integers(0, depth - keep + 1))
    window = slice(first, first + keep)
    return _replace(volume, volume.hu[window], volume.labels[window])


def rotate(
    volume: LabelledVolume, rng: np.random.Generator, max_deg: float = 10.0
) -> LabelledVolume:
    """A patient lying a few degrees off the scanner's axis (in-plane rotation)."""
    angle = float(rng.uniform(-max_deg, max_deg))
    hu = ndimage.rotate(
        volume.hu.astype(np.float32), angle, axes=(1, 2), reshape=False, order=1, cval=AIR_HU
    )
    labels = ndimage.rotate(
        volume.labels, angle, axes=(1, 2), reshape=False, order=0, cval=int(Tissue.BACKGROUND)
    )
    return _replace(volume, hu, labels)


def reacquire(
    volume: LabelledVolume, rng: np.random.Generator, settings: Reacquisition | None = None
) -> LabelledVolume:
    """One random acquisition of ``volume``, each change applied with its probability.

    The range is cut first and the grid coarsened next, so that the costlier steps run on the
    smaller volume; noise comes last, as the scanner adds it to the reconstructed image.
    """
    s = settings or Reacquisition()
    if rng.random() < s.crop_z_p:
        volume = crop_z(volume, rng)
    if rng.random() < s.resample_p:
        volume = resample(volume, rng, s.inplane_mm, s.slice_mm)
    if rng.random() < s.rotate_p:
        volume = rotate(volume, rng, s.rotate_deg)
    if rng.random() < s.fov_p:
        volume = truncate_fov(volume, rng)
    if rng.random() < s.kernel_p:
        volume = kernel(volume, rng, s.blur_mm, s.sharpen)
    return noise(volume, rng, s.noise_hu)
