"""Render a phantom: paint the anatomy, turn materials into HU, blur, add noise."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.phantoms.canvas import Canvas, smooth_noise
from habitus.phantoms.materials import Material, attenuation_table
from habitus.phantoms.spec import (
    Acquisition,
    PhantomSpec,
    random_acquisition,
    random_spec,
)
from habitus.phantoms.structures import VERTEBRA, VERTEBRA_INV, Body
from habitus.volume import CTVolume, Geometry

LUMBAR_NAMES = ("L1", "L2", "L3", "L4", "L5")


@dataclass(frozen=True)
class Phantom:
    """A CT volume with its exact label map and where its landmarks lie."""

    volume: CTVolume
    labels: NDArray[np.uint8]  # habitus.labels.Tissue values, same grid as volume.hu
    spec: PhantomSpec
    acquisition: Acquisition
    landmarks_z_mm: dict[str, float]  # LPS z of anatomical levels (head is +z)
    materials: NDArray[np.uint8]  # Material of every voxel, same grid (which tissue is blood)
    # Named parts, same grid: where each was painted and still carries its label (the
    # psoas, crura, iliacus and kidneys), and the thoracic cavity (see structures.py).
    parts: dict[str, NDArray[np.bool_]] = field(default_factory=dict)
    # Vertebral coordinate of each slice by the body plan: 0 at the top of C1, 7 at C7/T1,
    # 19 at T12/L1, 24 at L5/S1; every slice below S1 reads 24.
    vertebra: NDArray[np.float64] = field(default_factory=lambda: np.zeros(0))

    def level_at(self, z_mm: float) -> str:
        """The phantom's level at LPS z: "T" above T12/L1, "S1" below L5/S1, else the lumbar
        vertebra, the five lumbar levels being of equal height between the two."""
        top, bottom = self.landmarks_z_mm["t12_l1"], self.landmarks_z_mm["l5_s1"]
        if z_mm > top:
            return "T"
        if z_mm < bottom:
            return "S1"
        return LUMBAR_NAMES[min(int((top - z_mm) / ((top - bottom) / 5)), 4)]


def _grid(
    spec: PhantomSpec, acq: Acquisition
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """Voxel centres (u, y, x) in mm: u below the vertex, y posterior, x to the left."""
    H = spec.height_mm
    sz, sy, sx = acq.spacing_mm
    u0, u1 = acq.u_range[0] * H, acq.u_range[1] * H
    if spec.arms == "up" and acq.u_range[0] <= 0.0:
        u0 = min(u0, -0.3 * H)  # the raised hands lie above the vertex
    nz = max(int(np.floor((u1 - u0) / sz)), 1)
    u = u0 + (np.arange(nz) + 0.5) * sz
    ny = int(round(acq.fov_mm / sy))
    nx = int(round(acq.fov_mm / sx))
    y_centre = -0.6 * 110.0 * (1.0 + spec.fat_level) + acq.fov_shift_mm[0]
    y = y_centre - acq.fov_mm / 2.0 + (np.arange(ny) + 0.5) * sy
    x = acq.fov_shift_mm[1] - acq.fov_mm / 2.0 + (np.arange(nx) + 0.5) * sx
    as64 = np.float64
    return u.astype(as64), y.astype(as64), x.astype(as64)


def _table(canvas: Canvas, rng: np.random.Generator) -> NDArray[np.float32]:
    """Mattress and couch under the back: background, but not air.

    The couch's carbon-fibre skins are often thinner than a voxel, so they are returned as
    the share of each voxel they fill (box-filtered along the rows), to be blended into the
    image; the mattress and the couch's foam core are painted as materials.
    """
    mattress = float(rng.uniform(0.0, 45.0))
    X, Y = canvas.X, canvas.Y
    curve = float(rng.uniform(0.0002, 0.0012)) * X * X
    free = canvas.labels == 0
    half_width = float(rng.uniform(200.0, 260.0))
    pad = free & (curve * -0.3 < Y) & (mattress - curve * 0.3 > Y) & (np.abs(X) < half_width + 20)
    canvas.material[pad] = Material.MATTRESS
    shell_y = mattress + 2.0 - curve
    core = float(rng.uniform(25.0, 70.0))
    foam = free & (shell_y < Y) & (shell_y + core > Y) & (np.abs(X) < half_width)
    canvas.material[foam] = Material.MATTRESS
    share = np.zeros(canvas.shape, dtype=np.float32)
    row_mm = canvas.spacing[1]
    for depth in (0.0, core):
        thickness = float(rng.uniform(1.0, 5.0))
        # Overlap of a plate of that thickness with a voxel of row_mm, as a share of the voxel.
        distance = np.abs(Y - shell_y - depth)
        overlap = np.clip((thickness + row_mm) / 2.0 - distance, 0.0, min(thickness, row_mm))
        plate = overlap / row_mm * (np.abs(X) < half_width) * free
        share = np.maximum(share, plate.astype(np.float32))
    return share


def render(spec: PhantomSpec, acq: Acquisition) -> Phantom:
    """Draw the phantom ``spec`` as scanned by ``acq``; deterministic for a given pair."""
    rng = np.random.default_rng([spec.seed, int(acq.noise_hu * 1000), len(acq.u_range)])
    u, y, x = _grid(spec, acq)
    canvas = Canvas(
        u,
        y,
        x,
        spec.height_mm,
        rng,
        warp_mm=float(rng.uniform(3.0, 9.0)),
        spacing_mm=acq.spacing_mm,
    )
    Body(spec, canvas, rng).paint()
    table = _table(canvas, rng) if acq.table else None
    hu = attenuation_table(spec, rng)[canvas.material]
    if table is not None:
        couch_hu = np.float32(rng.uniform(150.0, 1200.0))
        hu += table * (couch_hu - hu)
    sz, sy, sx = acq.spacing_mm
    drift = smooth_noise(hu.shape, (40.0 / sz, 40.0 / sy, 40.0 / sx), rng)
    hu += np.float32(6.0) * drift * (canvas.material != Material.AIR)
    sigma_z = max(acq.slice_thickness_mm, sz * 0.5) / 2.355 / sz
    sigma = (sigma_z, acq.blur_mm / sy, acq.blur_mm / sx)
    hu = ndimage.gaussian_filter(hu, sigma=sigma, mode="nearest", truncate=3.0)
    hu += rng.normal(0.0, acq.noise_hu, size=hu.shape).astype(np.float32)
    labels = canvas.labels
    if acq.fov_circle:
        ny, nx = hu.shape[1:]
        jj, ii = np.ogrid[:ny, :nx]
        r = min(ny * sy, nx * sx) / 2.0
        outside = ((jj + 0.5) * sy - ny * sy / 2.0) ** 2 + (
            (ii + 0.5) * sx - nx * sx / 2.0
        ) ** 2 > r * r
        hu[:, outside] = acq.pad_hu
        labels[:, outside] = 0
    hu_i16 = np.clip(np.rint(hu), -32768, 32767).astype(np.int16)

    # Rows run head to foot; the volume's slice index runs foot to head (+z).
    hu_i16 = np.ascontiguousarray(hu_i16[::-1])
    labels = np.ascontiguousarray(labels[::-1])
    geometry = Geometry(
        spacing=(float(sz), float(sy), float(sx)),
        origin=(float(x[0]), float(y[0]), float(-u[-1])),
    )
    volume = CTVolume(
        hu=hu_i16,
        geometry=geometry,
        slice_thickness_mm=acq.slice_thickness_mm,
        notes=(f"synthetic phantom seed {spec.seed}",),
    )
    H = spec.height_mm
    landmarks = {
        "vertex": 0.0,
        "c7_t1": -float(VERTEBRA_INV(np.asarray(7.0))) * H,
        "t12_l1": -float(VERTEBRA_INV(np.asarray(19.0))) * H,
        "l3_middle": -float(VERTEBRA_INV(np.asarray(21.5))) * H,
        "l5_s1": -float(VERTEBRA_INV(np.asarray(24.0))) * H,
        "sole": -H,
    }
    return Phantom(
        volume=volume,
        labels=labels,
        spec=spec,
        acquisition=acq,
        landmarks_z_mm=landmarks,
        materials=np.ascontiguousarray(canvas.material[::-1]),
        parts={k: np.ascontiguousarray(m[::-1]) for k, m in canvas.named_parts().items()},
        vertebra=np.ascontiguousarray(VERTEBRA(u / H)[::-1]),
    )


def make_phantom(
    seed: int,
    spacing_mm: tuple[float, float, float] | None = None,
    scan_range: str | None = None,
) -> Phantom:
    """A random phantom and scan from ``seed`` (same seed, same phantom)."""
    return render(random_spec(seed), random_acquisition(seed, spacing_mm, scan_range))
