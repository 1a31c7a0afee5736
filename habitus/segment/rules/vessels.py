"""Calcified vessel walls lying against the spine: internal organs and vessels, not bone.

The aorta runs in front of and to the left of the vertebral bodies, and an atherosclerotic
wall is a thin bright shell around the lumen that often touches the vertebral cortex, so the
bone steps join it to the spine. Where the two meet, the spine is thick (a vertebral body is
centimetres across) and the wall is thin: what an in-plane opening of ``WALL_MM`` removes
from the bone, inside the body cavity and in front of the thick bone of the spine, is taken
for vessel wall where its mirror image about the spine's midline is not bone: a vertebra is
left-right symmetric, the aorta lies to one side. The ribs and vertebral arches lie in the
body wall or behind the front of the vertebral bodies and are never judged.

With contrast the lumen is an enhanced pool (``enhanced.enhanced_pools``), and plaque anywhere
in its wall is thin bone inside the body cavity against the pool: vessel too. A cortex
against a pool belongs to a bone thicker than that (a vertebral body with its marrow), and
the ribs lie in the wall, not in the cavity. Shaped on the calcified aorta of the shared
PET-CT.
"""

from __future__ import annotations

import numpy as np

from habitus.segment.rules.morphology import Mask, close_2d, dilate_2d, fill_holes_2d, open_2d
from habitus.segment.rules.spine import MAX_OFF_MIDLINE_MM, Spine

# A calcified wall with its partial-volume rim (bone seeds grow 4 mm) stays thinner than
# twice this; a vertebral body is far thicker.
WALL_MM = 4.0
VESSEL_REACH_MM = 40.0  # the aorta, up to 30 mm across, lies against the vertebral bodies
MIRROR_TOLERANCE_MM = 4.0  # vertebrae are not exactly symmetric, nor the scan exactly square


def plaque_on_pools(bone: Mask, pools: Mask, cavity: Mask, pixel: tuple[float, float]) -> Mask:
    """Thin bone in the body cavity against an enhanced pool: calcified vessel wall."""
    if not pools.any():
        return np.zeros_like(bone)
    thin = bone & ~open_2d(bone, WALL_MM, pixel)
    return np.asarray(thin & cavity & dilate_2d(pools, WALL_MM, pixel))


def vessel_wall(bone: Mask, spine: Spine, pixel: tuple[float, float]) -> Mask:
    """Thin bone in front of the thick bone of the spine, to one side of its midline."""
    out = np.zeros_like(bone)
    found = np.isfinite(spine.midline_col)
    if not found.any():
        return out
    # Only the spine and what lies against it are judged: the filters cost what the box holds.
    margin_cols = int(np.ceil((MAX_OFF_MIDLINE_MM + 2.0 * WALL_MM) / pixel[1]))
    margin_rows = int(np.ceil((MAX_OFF_MIDLINE_MM + 2.0 * WALL_MM) / pixel[0]))
    cols = slice(
        max(int(np.nanmin(spine.midline_col)) - margin_cols, 0),
        int(np.nanmax(spine.midline_col)) + margin_cols + 1,
    )
    rows = slice(
        max(int(np.nanmin(spine.front_row)) - margin_rows, 0),
        int(np.nanmax(spine.back_row)) + 1,
    )
    in_box = Spine(
        midline_col=spine.midline_col - cols.start,
        front_row=spine.front_row - rows.start,
        back_row=spine.back_row - rows.start,
    )
    out[:, rows, cols] = _vessel_wall_in_box(bone[:, rows, cols], in_box, pixel)
    return out


def _vessel_wall_in_box(bone: Mask, spine: Spine, pixel: tuple[float, float]) -> Mask:
    thin = bone & ~open_2d(bone, WALL_MM, pixel)
    thick = bone & ~thin
    n_rows, n_cols = bone.shape[1], bone.shape[2]
    cols = np.arange(n_cols)
    rows = np.arange(n_rows)[:, np.newaxis]
    reach = MAX_OFF_MIDLINE_MM / pixel[1]
    midline = spine.midline_col
    candidates = np.zeros_like(bone)
    for k in np.nonzero(thin.any(axis=(1, 2)))[0]:
        if not np.isfinite(midline[k]):
            continue
        # Canonical rows run from the front of the body to the back: the first thick row of
        # a column is the front of the bone there.
        first_thick = np.where(thick[k].any(axis=0), np.argmax(thick[k], axis=0), n_rows)
        near_spine = np.abs(cols - midline[k]) <= reach
        # From the aorta's front to the canal: not the ribs at the front or at the back.
        band = (rows >= spine.front_row[k] - VESSEL_REACH_MM / pixel[0]) & (
            rows < (spine.front_row[k] + spine.back_row[k]) / 2.0
        )
        in_front = rows < first_thick[np.newaxis, :]
        candidates[k] = thin[k] & in_front & band & near_spine[np.newaxis, :]
    out = np.zeros_like(bone)
    judged = np.nonzero(candidates.any(axis=(1, 2)))[0]
    if not judged.size:
        return out
    # The spine is left-right symmetric; the aorta lies to one side. Bone whose mirror image
    # about the spine's midline falls on bone is the spine's own. Bone here is taken with
    # the gaps in its outline closed and what it encloses filled: a vertebral body whose
    # marrow reads as soft tissue is a thin, broken ring, but its mirror image is the body.
    # The midline is known to a column and mirroring doubles that error: allow two pixels.
    tolerance = max(MIRROR_TOLERANCE_MM, 2.0 * pixel[1])
    support = dilate_2d(fill_holes_2d(close_2d(bone[judged], WALL_MM, pixel)), tolerance, pixel)
    for k, around in zip(judged, support, strict=True):
        mirror_cols = np.rint(2.0 * midline[k] - cols).astype(int)
        inside = (mirror_cols >= 0) & (mirror_cols < n_cols)
        mirrored = np.zeros((n_rows, n_cols), dtype=bool)
        mirrored[:, inside] = around[:, mirror_cols[inside]]
        out[k] = candidates[k] & ~mirrored
    return out
