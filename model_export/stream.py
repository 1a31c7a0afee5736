"""The training batches as a pure function of (seed, step), produced in background workers.

Step ``s`` draws its batch from *lane* ``s % lanes``. Each lane holds its own small pool of
phantoms and replaces one of them every ``refresh_every`` of its own steps, so across all
lanes one fresh phantom comes in every ``refresh_every`` steps, as with a single pool, and
every ``lanes`` consecutive steps see all pooled phantoms. Which phantoms a lane holds at a
step, and every random choice of a step's patches, follow from the seeds alone: the batches
are the same whatever the number of workers, and a resumed run continues the same stream.

Worker ``w`` of ``n`` produces steps ``s`` with ``s % n == w``; the DataLoader hands them
back in step order. When ``n`` divides ``lanes`` a worker meets only its own lanes, so each
phantom is generated once (phantom generation is the costly part: about 0.6 s on the 4 mm
grid and 5 s on the 2 mm grid, one CPU core).

Labelled real cases are kept at their own resolution and, with a :class:`Reacquisition`,
drawn anew in the same way: case ``c`` is re-acquired (another slice thickness, pixel size,
kernel, noise, field of view, range and tilt; :mod:`model_export.acquisition`) every
``refresh_every * cases`` steps, the cases staggered so that one fresh version comes in every
``refresh_every`` steps. Version ``v`` of case ``c`` follows from ``(seed, c, v)`` alone.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import DataLoader, IterableDataset, get_worker_info

from model_export.acquisition import Reacquisition, reacquire
from model_export.dataset import Augmentation, PatchSampler, training_phantom
from model_export.training_pairs import LabelledVolume, to_model_grid

TRAINING_SEED_BASE = 100_000
"""Phantom seeds used for training start here; evaluation uses seeds below it."""


@dataclass(frozen=True)
class StreamSpec:
    """What the batches depend on (a part of the training recipe)."""

    seed: int
    spacing_mm: tuple[float, float, float]
    patch_size: tuple[int, int, int]
    batch_size: int
    phantoms: int  # phantoms held across all lanes (0: labelled cases only)
    lanes: int
    refresh_every: int
    folder_share: float  # share of patches from the labelled cases, when there are some
    hu_clip: tuple[float, float]
    hu_mean: float
    hu_std: float

    @property
    def per_lane(self) -> int:
        return max(1, math.ceil(self.phantoms / self.lanes))


def lane_of(step: int, lanes: int) -> int:
    return step % lanes


def lane_pool(spec: StreamSpec, step: int) -> list[int]:
    """Phantom seeds held by the lane of ``step`` when that step is drawn.

    The lane's k-th phantom has seed ``BASE + lane + lanes * k``. Slots start with k = 0..q-1;
    the lane's r-th refresh puts phantom ``q + r`` into slot ``r % q``. Lane ``l`` refreshes
    when its own step count plus ``l * refresh_every // lanes`` reaches a multiple of
    ``refresh_every``.
    """
    lane = lane_of(step, spec.lanes)
    q = spec.per_lane
    every = max(spec.refresh_every, 1)
    # Lanes refresh at staggered steps, so that fresh phantoms arrive evenly, not in bursts.
    offset = lane * every // spec.lanes
    refreshes = (step // spec.lanes + offset) // every
    seeds = []
    for slot in range(q):
        times = (refreshes - slot + q - 1) // q if refreshes > slot else 0
        seeds.append(TRAINING_SEED_BASE + lane + spec.lanes * (slot + q * times))
    return seeds


def case_version(spec: StreamSpec, step: int, case: int, cases: int) -> int:
    """Which re-acquisition of labelled case ``case`` (of ``cases``) step ``step`` draws from."""
    every = max(spec.refresh_every, 1)
    return (step + case * every) // (every * cases)


def seeds_seen(spec: StreamSpec, start: int, stop: int) -> list[int]:
    """Every phantom seed that steps ``start`` to ``stop - 1`` draw from, sorted."""
    if spec.phantoms <= 0:
        return []
    seen: set[int] = set()
    for step in range(start, stop):
        seen.update(lane_pool(spec, step))
    return sorted(seen)


class HuScaling(Protocol):
    """The network's input scaling, as a training recipe (TrainConfig, StreamSpec) holds it."""

    @property
    def hu_clip(self) -> tuple[float, float]: ...
    @property
    def hu_mean(self) -> float: ...
    @property
    def hu_std(self) -> float: ...


def normalise(hu: np.ndarray | torch.Tensor, scaling: HuScaling) -> torch.Tensor:
    """HU -> network input, as the manifest's zscore normalisation does."""
    x = torch.as_tensor(hu, dtype=torch.float32)
    return (x.clamp(scaling.hu_clip[0], scaling.hu_clip[1]) - scaling.hu_mean) / scaling.hu_std


class PatchStream(IterableDataset[tuple[int, torch.Tensor, torch.Tensor]]):
    """Yields ``(step, x, y)``: x normalised float32 (B, 1, D, H, W), y uint8 (B, D, H, W)."""

    def __init__(
        self,
        spec: StreamSpec,
        start: int,
        stop: int,
        cases: Sequence[LabelledVolume] = (),
        augmentation: Augmentation | None = None,
        reacquisition: Reacquisition | None = None,
    ) -> None:
        super().__init__()
        if spec.phantoms <= 0 and not cases:
            raise ValueError("nothing to train on: give a labelled folder or allow phantoms")
        self.spec = spec
        self.start, self.stop = start, stop
        self.reacquisition = reacquisition
        # Without re-acquisition a case is put on the model grid once, here.
        self.cases = [v if reacquisition else to_model_grid(v, spec.spacing_mm) for v in cases]
        self.aug = augmentation or Augmentation()
        self._cache: dict[int, LabelledVolume] = {}  # phantoms of this process, by seed
        self._versions: dict[int, tuple[int, LabelledVolume]] = {}  # case -> (version, volume)

    def _phantoms(self, step: int) -> list[LabelledVolume]:
        spec = self.spec
        seeds = lane_pool(spec, step)
        lane = lane_of(step, spec.lanes)
        for seed in [s for s in self._cache if (s - TRAINING_SEED_BASE) % spec.lanes == lane]:
            if seed not in seeds:
                del self._cache[seed]  # left this lane's pool for good
        for seed in seeds:
            if seed not in self._cache:
                self._cache[seed] = training_phantom(seed, spec.spacing_mm)
        return [self._cache[s] for s in seeds]

    def _cases(self, step: int) -> list[LabelledVolume]:
        if self.reacquisition is None:
            return self.cases
        spec, n = self.spec, len(self.cases)
        drawn = []
        for c, native in enumerate(self.cases):
            version = case_version(spec, step, c, n)
            held = self._versions.get(c)
            if held is None or held[0] != version:
                rng = np.random.default_rng([spec.seed, 2, c, version])
                fresh = reacquire(native, rng, self.reacquisition)
                held = (version, to_model_grid(fresh, spec.spacing_mm))
                self._versions[c] = held
            drawn.append(held[1])
        return drawn

    def batch(self, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch of ``step``; depends on nothing but the spec and the step."""
        spec = self.spec
        rng = np.random.default_rng([spec.seed, step])
        share = spec.folder_share if spec.phantoms > 0 else 1.0
        phantoms = self._phantoms(step) if spec.phantoms > 0 else []
        hu, labels = [], []
        for _ in range(spec.batch_size):
            from_cases = bool(self.cases) and (not phantoms or rng.random() < share)
            volumes = self._cases(step) if from_cases else phantoms
            h, lab = PatchSampler(volumes, spec.patch_size, self.aug, rng).sample()
            hu.append(h)
            labels.append(lab)
        x = normalise(np.stack(hu)[:, None], spec)
        y = torch.from_numpy(np.stack(labels))
        return x, y

    def __iter__(self) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
        info = get_worker_info()
        worker, workers = (info.id, info.num_workers) if info is not None else (0, 1)
        for step in range(self.start + worker, self.stop, workers):
            x, y = self.batch(step)
            yield step, x, y


def batches(
    stream: PatchStream, workers: int, *, pin_memory: bool = False
) -> Iterator[tuple[int, torch.Tensor, torch.Tensor]]:
    """The stream's batches in step order, produced by ``workers`` processes (0: this one)."""
    if workers <= 0:
        return iter(stream)
    loader = DataLoader(
        stream,
        batch_size=None,
        num_workers=workers,
        pin_memory=pin_memory,
        prefetch_factor=4,
    )
    return iter(loader)
