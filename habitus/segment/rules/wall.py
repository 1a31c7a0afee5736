"""The body wall: the ring of muscle and bone (abdominal wall, chest wall, back muscles).

Subcutaneous fat lies outside the ring, visceral fat and the organs inside it. Each axial
slice of the trunk is unrolled into rays from its centre, sampled every millimetre. Walking
a ray inwards from the skin, the wall starts at the first run of soft tissue or bone at least
``MIN_WALL_RUN_MM`` long, and ends at the next run of fat or air at least ``MIN_GAP_MM``
long (the extraperitoneal fat, the lung). Where no such gap comes within ``MAX_WALL_MM`` (an
organ lies against the wall) the thickness is taken from the rays around it.

Ribs and vertebral arches near the outer surface belong to the wall with the muscle around
them: the wall reaches at least to the deepest bone found within ``MAX_BONE_DEPTH_MM`` of its
outer surface, or ``MAX_BONE_DEPTH_BACK_MM`` on rays pointing backwards through the thick
back muscles. An intercostal space takes the depth interpolated between the ribs on either
side, so that the liver and the spleen pressed against the ribs stay inside the wall (the
deepest rib around, an oblique lower rib, once carried the wall into them: up to 9 % of the
spleen of ts-petct-dicom was muscle). Behind the spine (``BACK_SECTOR_DEG``) no organ lies
between the laminae and the transverse processes, and along a plate of bone (``PLATE_DEG``:
the iliac wing, lined by the iliacus) the deepest bone around holds too, as before (shaped
on the phantoms of habitus/phantoms, whose iliacus it keeps in the wall).

Both radii are smoothed with a running median over the angle, which bridges the gaps a single
ray can slip through (a vessel crossing the fat); where a ray finds the wall thinner than its
neighbours do (the linea alba) it is believed. The ring is traced on the coarse grid.

The back wall is a sheet held to the spine and the ribs; a kidney is wrapped in its own fat.
Where that fat runs into the subcutaneous fat, the first soft tissue walking in is the
kidney itself: in the back half of the trunk, a piece of soft tissue that touches no bone
and lies mostly inside the ring is handed back to the cavity whole (shaped on the phantoms,
whose kidneys were up to 0.24 muscle per level; checked not to change the shared scans,
whose anterior wall, touching no bone below the ribs, is why the front is left out).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import ndimage

from habitus.labels import FAT_HU, MUSCLE_HU
from habitus.segment.rules.coarse import CoarseGrid
from habitus.segment.rules.morphology import IN_PLANE, Mask

N_ANGLES = 180
RADIAL_STEP_MM = 1.0
MIN_WALL_RUN_MM = 4.0
MIN_GAP_MM = 3.0
MAX_WALL_MM = 20.0
MAX_BONE_DEPTH_MM = 45.0  # ribs under the chest and flank muscles
MAX_BONE_DEPTH_BACK_MM = 80.0  # laminae and transverse processes under the back muscles
BONE_SPREAD_DEG = 9  # a rib's depth also holds for the intercostal space beside it
BACK_SECTOR_DEG = 45.0  # rays this close to straight back cross the back muscles only
PLATE_DEG = 40.0  # bone this long around the circle is a plate (iliac wing), not a rib
DEFAULT_WALL_MM = 12.0  # when no ray of the slice shows where the wall ends
ANGULAR_MEDIAN_DEG = 15

_OUTSIDE, _RING, _CAVITY = 1, 2, 3


@dataclass(frozen=True)
class WallRegions:
    outside: Mask  # between the skin and the wall: subcutaneous
    ring: Mask  # the wall itself: muscle, bone and the fat between its layers
    cavity: Mask  # inside the wall: organs, vessels, visceral fat, lungs, spine

    def confined_to(self, allowed: Mask) -> WallRegions:
        """The same regions with the cavity kept within ``allowed``; the rest joins the wall."""
        cut = self.cavity & ~allowed
        if not cut.any():
            return self
        return WallRegions(outside=self.outside, ring=self.ring | cut, cavity=self.cavity & ~cut)


@dataclass(frozen=True)
class _Rays:
    """One slice unrolled: radius r (mm) along each angle from a centre (pixel units)."""

    center: tuple[float, float]
    wall: NDArray[np.bool_]  # (angles, radii): soft tissue or bone
    bone: NDArray[np.bool_]  # (angles, radii)
    inside: NDArray[np.bool_]  # (angles, radii): within the trunk, skin excluded


def wall_regions(
    hu: NDArray[np.int16],
    torso: Mask,
    skin: Mask,
    bone: Mask,
    spacing: tuple[float, float, float],
) -> WallRegions:
    """Outside, ring and cavity of the trunk in every slice of a canonical volume.

    The wall is a smooth band a centimetre or more thick: it is traced on the coarse grid
    and the three regions are mapped back onto the full-resolution trunk.
    """
    grid = CoarseGrid.for_spacing(spacing, torso.shape)
    coarse = grid.spacing(spacing)
    pixel = (coarse[1], coarse[2])
    wall_tissue = grid.majority(((hu >= MUSCLE_HU[0]) | bone) & ~skin)
    coarse_bone = grid.any(bone)
    interior = grid.majority(torso & ~skin)
    extent = grid.any(torso)
    regions = np.zeros(extent.shape, dtype=np.uint8)
    for k in range(extent.shape[0]):
        if not interior[k].any():
            continue
        rows = np.nonzero(extent[k].any(axis=1))[0]
        cols = np.nonzero(extent[k].any(axis=0))[0]
        box = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
        rays = _unroll(wall_tissue[k][box], coarse_bone[k][box], interior[k][box], pixel)
        outer, inner = _wall_radii(rays)
        o, r, c = _regions_from_radii(extent[k][box].shape, rays.center, outer, inner, pixel)
        regions[k][box] = np.where(o, _OUTSIDE, np.where(c, _CAVITY, _RING))
    full = grid.expand(regions)
    ring = torso & (full == _RING)
    cavity = torso & (full == _CAVITY)
    organs = _organs_reaching_in(hu > FAT_HU[1], torso & ~skin & ~bone, bone, ring, cavity)
    return WallRegions(
        outside=torso & (full == _OUTSIDE),
        ring=ring & ~organs,
        cavity=cavity | organs,
    )


def _organs_reaching_in(soft: Mask, within: Mask, bone: Mask, ring: Mask, cavity: Mask) -> Mask:
    """The back wall's voxels that belong to an organ lying mostly inside the wall.

    The posterior abdominal wall (quadratus lumborum, psoas, crura) is a sheet continuous
    with the back muscles, held to the spine and the ribs. A piece of soft tissue
    (face-connected within its slice) in the back half of the trunk that touches no bone
    and lies mostly inside the ring is an organ wrapped in its own fat (a kidney in its
    perirenal fat), whatever part of it the ring took in where no fat plane showed where the
    wall ended: that part is cavity too. (In front, the abdominal wall's muscles touch no
    bone below the ribs and lie against the liver and the bowel: not judged there.)
    """
    pieces, count = ndimage.label(soft & within & (ring | cavity), structure=IN_PLANE)
    if count == 0:
        return np.zeros_like(ring)
    n = count + 1
    in_ring = np.bincount(pieces[ring], minlength=n)
    in_cavity = np.bincount(pieces[cavity], minlength=n)
    near_bone = ndimage.binary_dilation(bone, structure=IN_PLANE)
    on_bone = np.bincount(pieces[near_bone], minlength=n) > 0
    # Rows grow towards the back: the ring part's rows against the middle of the trunk.
    rows = np.broadcast_to(np.arange(ring.shape[1])[np.newaxis, :, np.newaxis], ring.shape)
    trunk_rows = np.where(within, rows, 0).sum(axis=(1, 2)) / np.maximum(within.sum(axis=(1, 2)), 1)
    behind = rows > trunk_rows[:, np.newaxis, np.newaxis]
    ring_behind = np.bincount(pieces[ring & behind], minlength=n)
    organ = (in_cavity > in_ring) & (2 * ring_behind > in_ring) & (in_ring > 0) & ~on_bone
    organ[0] = False
    return ring & organ[pieces]


def _unroll(wall: Mask, bone: Mask, inside: Mask, pixel: tuple[float, float]) -> _Rays:
    cy, cx = ndimage.center_of_mass(inside)
    ys, xs = np.nonzero(inside)
    reach = float(np.max(np.hypot((ys - cy) * pixel[0], (xs - cx) * pixel[1]))) + 2.0
    radii = np.arange(0.0, reach, RADIAL_STEP_MM)
    angles = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    py = cy + np.outer(np.sin(angles), radii) / pixel[0]
    px = cx + np.outer(np.cos(angles), radii) / pixel[1]
    coords = np.stack([py, px])
    sampled_wall = ndimage.map_coordinates(wall.astype(np.uint8), coords, order=0, cval=0)
    sampled_inside = ndimage.map_coordinates(inside.astype(np.uint8), coords, order=0, cval=0)
    sampled_bone = ndimage.map_coordinates(bone.astype(np.uint8), coords, order=0, cval=0)
    return _Rays(
        center=(float(cy), float(cx)),
        wall=sampled_wall.astype(bool),
        bone=sampled_bone.astype(bool),
        inside=sampled_inside.astype(bool),
    )


def _runs_ahead(mask: NDArray[np.bool_], length: int) -> NDArray[np.bool_]:
    """True where ``mask`` holds for ``length`` samples starting there (along axis 1)."""
    n = mask.shape[1]
    csum = np.concatenate([np.zeros((mask.shape[0], 1), int), np.cumsum(mask, axis=1)], axis=1)
    end = np.minimum(np.arange(n) + length, n)
    return (csum[:, end] - csum[:, :n]) >= length


def _wall_radii(rays: _Rays) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Outer and inner wall radius (mm) along every angle."""
    # Walk inwards: reverse the radius axis so that index 0 is the far end of each ray.
    wall = rays.wall[:, ::-1]
    inside = rays.inside[:, ::-1]
    n = wall.shape[1]
    index = np.arange(n)[np.newaxis, :]

    entered = np.cumsum(inside, axis=1) > 0  # at or inside the skin
    wall_run = _runs_ahead(wall & inside, int(round(MIN_WALL_RUN_MM / RADIAL_STEP_MM)))
    starts = wall_run & entered
    has_wall = np.asarray(starts.any(axis=1))
    start = np.where(has_wall, np.argmax(starts, axis=1), n - 1)

    gap = _runs_ahead(~wall, int(round(MIN_GAP_MM / RADIAL_STEP_MM)))
    after = index > start[:, np.newaxis]
    within = index <= start[:, np.newaxis] + int(MAX_WALL_MM / RADIAL_STEP_MM)
    ends = gap & after & within
    has_end = ends.any(axis=1) & has_wall
    end = np.argmax(ends, axis=1)

    outer_mm = (n - 1 - start) * RADIAL_STEP_MM
    measured = np.where(has_end, (end - start) * RADIAL_STEP_MM, np.nan)
    thickness = _fill_circular(measured)
    thickness = np.maximum(thickness, _bone_depth(rays.bone[:, ::-1], start, has_wall))
    outer_mm = np.where(has_wall, outer_mm, np.nan)
    outer_mm = _fill_circular(outer_mm)
    outer_mm = _circular_median(outer_mm)
    # Where a ray found the wall thinner than its neighbours (the linea alba), believe it.
    thickness = np.fmin(_circular_median(thickness), np.where(has_end, thickness, np.nan))
    inner_mm = np.maximum(outer_mm - thickness, 0.0)
    return outer_mm, inner_mm


def _bone_depth(
    bone: NDArray[np.bool_], start: NDArray[np.int64], has_wall: NDArray[np.bool_]
) -> NDArray[np.float64]:
    """Depth (mm) from the wall's outer surface to just inside its deepest bone, per angle.

    ``bone`` is indexed inwards (index 0 at the far end of each ray), like ``start``.
    """
    index = np.arange(bone.shape[1])[np.newaxis, :]
    # Rays pointing backwards (rows grow towards the back) cross the thick back muscles.
    backwards = np.clip(np.sin(np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)), 0, 1)
    reach = MAX_BONE_DEPTH_MM + (MAX_BONE_DEPTH_BACK_MM - MAX_BONE_DEPTH_MM) * backwards
    band = (index >= start[:, np.newaxis]) & (
        index <= start[:, np.newaxis] + (reach / RADIAL_STEP_MM).astype(int)[:, np.newaxis]
    )
    in_band = bone & band & has_wall[:, np.newaxis]
    last = in_band.shape[1] - 1 - np.argmax(in_band[:, ::-1], axis=1)
    deepest = np.where(in_band.any(axis=1), last, -1)
    depth = np.where(deepest >= 0, (deepest - start) * RADIAL_STEP_MM, np.nan)
    reach_rays = max(1, int(round(BONE_SPREAD_DEG * N_ANGLES / 360.0)))
    bridged = _bridge_gaps(depth, reach_rays)
    # Behind the spine the back muscles fill the space between the laminae and the
    # transverse processes, and no organ lies there: the deepest bone around holds.
    deepest_around = ndimage.maximum_filter1d(
        np.nan_to_num(depth, nan=0.0), size=2 * reach_rays + 1, mode="wrap"
    )
    angles = np.linspace(0.0, 2 * np.pi, N_ANGLES, endpoint=False)
    behind = np.sin(angles) >= np.cos(np.deg2rad(BACK_SECTOR_DEG))
    # A plate of bone (the iliac wing) is lined by muscle (the iliacus) and carries the
    # wall over its whole arc: the deepest bone around holds there too.
    plate = _in_long_run(~np.isnan(depth), int(round(PLATE_DEG * N_ANGLES / 360.0)))
    return np.asarray(np.where(behind | plate, deepest_around, bridged))


def _in_long_run(hit: NDArray[np.bool_], length: int) -> NDArray[np.bool_]:
    """True on rays inside a run of at least ``length`` consecutive hits, around the circle."""
    if hit.all() or not hit.any():
        return hit.copy()
    start = int(np.argmin(hit))  # a miss: unroll the circle from there
    rolled = np.roll(hit, -start)
    runs, count = ndimage.label(rolled)
    sizes = np.bincount(runs.ravel(), minlength=count + 1)
    long_run = (sizes >= length) & (np.arange(count + 1) > 0)
    return np.roll(long_run[runs], start)


def _bridge_gaps(depth: NDArray[np.float64], reach: int) -> NDArray[np.float64]:
    """Bone depth across the gaps between bones (an intercostal space), 0 elsewhere.

    A gap no wider than ``2 * reach`` rays takes the depth interpolated between the bones
    on either side: the inner surface of the rib cage runs smoothly from rib to rib. (The
    deepest of the bones around, as once taken, let an oblique rib carry the wall into the
    spleen or the liver pressed against the ribs beside it.)
    """
    known = ~np.isnan(depth)
    if not known.any():
        return np.zeros_like(depth)
    n = depth.size
    idx = np.arange(n)
    xk = idx[known]
    xp = np.concatenate([xk - n, xk, xk + n])
    filled = np.interp(idx, xp, np.tile(depth[known], 3))
    # Width (in rays) of the gap between the bones on either side, around the circle.
    pos = np.searchsorted(xk, idx, side="right") - 1
    previous = np.where(pos >= 0, xk[np.maximum(pos, 0)], xk[-1] - n)
    pos = np.searchsorted(xk, idx, side="left")
    following = np.where(pos < xk.size, xk[np.minimum(pos, xk.size - 1)], xk[0] + n)
    gap = following - previous
    return np.where(known, depth, np.where(gap <= 2 * reach + 1, filled, 0.0))


def _fill_circular(values: NDArray[np.float64]) -> NDArray[np.float64]:
    """Fill NaNs by linear interpolation around the circle (a default if all are NaN)."""
    known = ~np.isnan(values)
    if not known.any():
        return np.full_like(values, DEFAULT_WALL_MM)
    n = values.size
    idx = np.arange(n)
    xk = idx[known]
    xp = np.concatenate([xk - n, xk, xk + n])
    fp = np.tile(values[known], 3)
    return np.interp(idx, xp, fp)


def _circular_median(values: NDArray[np.float64]) -> NDArray[np.float64]:
    size = max(1, int(round(ANGULAR_MEDIAN_DEG * N_ANGLES / 360.0))) | 1
    return np.asarray(ndimage.median_filter(values, size=size, mode="wrap"))


def _regions_from_radii(
    shape: tuple[int, int],
    center: tuple[float, float],
    outer_mm: NDArray[np.float64],
    inner_mm: NDArray[np.float64],
    pixel: tuple[float, float],
) -> tuple[Mask, Mask, Mask]:
    yy, xx = np.indices(shape, dtype=np.float64)
    dy = (yy - center[0]) * pixel[0]
    dx = (xx - center[1]) * pixel[1]
    r = np.hypot(dy, dx)
    theta = np.mod(np.arctan2(dy, dx), 2 * np.pi) * (N_ANGLES / (2 * np.pi))
    # Interpolate the radii between the two nearest sampled angles.
    lo = np.floor(theta).astype(int) % N_ANGLES
    hi = (lo + 1) % N_ANGLES
    w = theta - np.floor(theta)
    outer = outer_mm[lo] * (1 - w) + outer_mm[hi] * w
    inner = inner_mm[lo] * (1 - w) + inner_mm[hi] * w
    # Half a step of slack: sampling is nearest-neighbour along the ray.
    outside = r > outer + 0.5 * RADIAL_STEP_MM
    cavity = r < inner - 0.5 * RADIAL_STEP_MM
    return outside, ~outside & ~cavity, cavity
