"""Training patches: phantoms drawn on the model grid, labelled folders, augmentation."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import NUM_LABELS, Tissue
from habitus.phantoms import random_acquisition, random_spec, render
from model_export.training_pairs import IGNORE, LabelledVolume

AIR_HU = -1024
A = TypeVar("A", bound=NDArray[Any])


def training_phantom(seed: int, spacing: tuple[float, float, float]) -> LabelledVolume:
    """A phantom drawn directly on the model grid, its image as the engine would see it.

    The engine smooths the scan before resampling it to the model grid, so the phantom gets
    a wider blur and less noise than a native-resolution scan.
    """
    rng = np.random.default_rng(seed + 104_729)
    acq = dataclasses.replace(
        random_acquisition(seed, spacing_mm=spacing),
        blur_mm=float(rng.uniform(0.8, 2.2)),
        noise_hu=float(rng.uniform(2.0, 22.0)),
    )
    phantom = render(random_spec(seed), acq)
    return LabelledVolume(
        hu=phantom.volume.hu, labels=phantom.labels, spacing=spacing, name=f"phantom-{seed}"
    )


def _crop_or_pad(array: A, start: Sequence[int], size: Sequence[int], fill: int) -> A:
    """``array[start : start + size]`` with ``fill`` wherever the window leaves the array."""
    out: A = np.full(tuple(size), fill, dtype=array.dtype)  # type: ignore[assignment]
    src, dst = [], []
    for s, n, total in zip(start, size, array.shape, strict=True):
        lo, hi = max(s, 0), min(s + n, total)
        if hi <= lo:
            return out
        src.append(slice(lo, hi))
        dst.append(slice(lo - s, hi - s))
    out[tuple(dst)] = array[tuple(src)]
    return out


@dataclasses.dataclass(frozen=True)
class Augmentation:
    """Random changes applied to each training patch (probabilities and ranges)."""

    flip_lr: float = 0.5
    flip_ap: float = 0.1
    flip_cc: float = 0.1
    scale: tuple[float, float] = (0.9, 1.1)  # in-plane zoom
    scale_p: float = 0.3
    intensity_gain: tuple[float, float] = (0.95, 1.05)
    intensity_shift_hu: float = 15.0
    noise_hu: tuple[float, float] = (0.0, 10.0)
    blur_p: float = 0.2
    thin_slab_p: float = 0.15  # keep only a few slices, as in a short scan padded with air


def centre_class_weights(labels: NDArray[np.uint8]) -> NDArray[np.float64]:
    """Probability of centring a patch on each class (background never), by rarity.

    Weights are 1 / sqrt(voxel count) of each class present: in a real trunk scan the spinal
    canal is 0.35 % of the body's voxels and muscle about 20 %, so the canal is centred about
    eight times as often as muscle. Drawn uniformly among the classes present instead, CNS fell
    from 1.2 % of a batch's labelled voxels (phantoms alone, mostly their brain) to 0.5 % once
    real trunk scans took half the patches (model card). All zero when no class but background
    is present.
    """
    counts = np.bincount(labels[labels < NUM_LABELS].ravel(), minlength=NUM_LABELS)
    counts[Tissue.BACKGROUND] = 0
    weights = np.zeros(NUM_LABELS)
    present = counts > 0
    weights[present] = 1.0 / np.sqrt(counts[present])
    total = weights.sum()
    return weights / total if total > 0 else weights


class PatchSampler:
    """Draws (HU, labels) patches from volumes, centred mostly on tissue, then augments them.

    Half of the patches are centred on a voxel of a class drawn among the classes present with
    a weight of 1 / sqrt(the class's voxel count) (:func:`centre_class_weights`): the thin
    classes (the spinal canal, skin) are centred far more often than the bulky ones, whatever
    share of the patches comes from phantoms or from real cases.
    """

    def __init__(
        self,
        volumes: Sequence[LabelledVolume],
        patch_size: tuple[int, int, int],
        augmentation: Augmentation | None,
        rng: np.random.Generator,
    ) -> None:
        self.volumes = list(volumes)
        self.patch = patch_size
        self.aug = augmentation
        self.rng = rng

    def replace(self, index: int, volume: LabelledVolume) -> None:
        self.volumes[index] = volume

    def _centre(self, labels: NDArray[np.uint8]) -> tuple[int, int, int]:
        rng = self.rng
        sub = labels[::2, ::2, ::2]
        if rng.random() < 0.5:
            weights = centre_class_weights(sub)
            if weights.any():
                cls = int(rng.choice(NUM_LABELS, p=weights))
                idx = np.argwhere(sub == cls)
                k, j, i = idx[int(rng.integers(len(idx)))] * 2
                return int(k), int(j), int(i)
        body = np.argwhere((sub != Tissue.BACKGROUND) & (sub != IGNORE))
        if len(body) and rng.random() < 0.9:
            k, j, i = body[int(rng.integers(len(body)))] * 2
            return int(k), int(j), int(i)
        return tuple(int(rng.integers(n)) for n in labels.shape)  # type: ignore[return-value]

    def sample(self) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        """One patch: HU (float32) and labels (uint8, IGNORE where padded)."""
        rng = self.rng
        vol = self.volumes[int(rng.integers(len(self.volumes)))]
        size = list(self.patch)
        zoom = 1.0
        if self.aug and rng.random() < self.aug.scale_p:
            zoom = float(rng.uniform(*self.aug.scale))
            size[1] = int(round(size[1] / zoom))
            size[2] = int(round(size[2] / zoom))
        centre = self._centre(vol.labels)
        jitter = [int(rng.integers(-s // 4, s // 4 + 1)) for s in size]
        start = [c - s // 2 + d for c, s, d in zip(centre, size, jitter, strict=True)]
        hu = _crop_or_pad(vol.hu, start, size, AIR_HU).astype(np.float32)
        labels = _crop_or_pad(vol.labels, start, size, IGNORE).astype(np.uint8)
        if zoom != 1.0:
            factors = [p / s for p, s in zip(self.patch, size, strict=True)]
            hu = ndimage.zoom(hu, factors, order=1, mode="nearest", grid_mode=True)
            labels = ndimage.zoom(labels, factors, order=0, mode="nearest", grid_mode=True)
            hu = _crop_or_pad(hu, (0, 0, 0), self.patch, AIR_HU)
            labels = _crop_or_pad(labels, (0, 0, 0), self.patch, IGNORE)
        if self.aug:
            hu, labels = self._augment(hu, labels)
        return hu, labels

    def _augment(
        self, hu: NDArray[np.float32], labels: NDArray[np.uint8]
    ) -> tuple[NDArray[np.float32], NDArray[np.uint8]]:
        a, rng = self.aug, self.rng
        assert a is not None
        for axis, p in ((2, a.flip_lr), (1, a.flip_ap), (0, a.flip_cc)):
            if rng.random() < p:
                hu = np.flip(hu, axis)
                labels = np.flip(labels, axis)
        hu = np.ascontiguousarray(hu)
        labels = np.ascontiguousarray(labels)
        if rng.random() < a.blur_p:
            hu = ndimage.gaussian_filter(
                hu, sigma=(rng.uniform(0, 0.6), *[rng.uniform(0.3, 0.8)] * 2)
            )
        body = hu > -500
        hu = np.where(
            body,
            hu * np.float32(rng.uniform(*a.intensity_gain))
            + np.float32(rng.uniform(-a.intensity_shift_hu, a.intensity_shift_hu)),
            hu,
        ).astype(np.float32)
        sigma = rng.uniform(*a.noise_hu)
        if sigma > 0:
            hu += rng.normal(0.0, sigma, size=hu.shape).astype(np.float32)
        if rng.random() < a.thin_slab_p:
            depth = hu.shape[0]
            keep = int(rng.integers(3, max(4, depth // 2)))
            first = int(rng.integers(0, depth - keep + 1))
            outside = np.ones(depth, dtype=bool)
            outside[first : first + keep] = False
            hu[outside] = AIR_HU
            labels[outside] = IGNORE
        return hu, labels

    def batches(self, batch_size: int) -> Iterator[tuple[NDArray[np.float32], NDArray[np.uint8]]]:
        while True:
            pairs = [self.sample() for _ in range(batch_size)]
            yield np.stack([p[0] for p in pairs]), np.stack([p[1] for p in pairs])
