"""The vertebral column: where it runs in each slice, and its vertebral bodies along z.

On pooled canonical masks (rows anterior to posterior, columns right to left):

1. Spine centre x in each slice: the median column of the bone within 40 mm of the trunk's
   centre in its posterior part, smoothed along z.
2. Front of the vertebral body: in a narrow strip at that column, the spine is the group of
   bone runs that starts at the most posterior bone and continues forward across gaps of at
   most 30 mm (the spinal canal); its most anterior run is the vertebral body, or the
   posterior arch at the level of a disc. A low running percentile along z of that run's
   front edge keeps the vertebral bodies' front and ignores the discs.
3. Profile: the bone fraction of a box just behind that front edge (the vertebral body).
   Intervertebral discs are not bone, so the profile drops at each disc; vertebral bodies
   are the runs of slices where it stays above half its local maximum, then joined across
   a dip that leaves pieces too short to be bodies and split at a dip where a run is too
   tall to be one (``habitus.anatomy.discs``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from habitus.anatomy.discs import MAX_DISC_MM, vertebral_bodies
from habitus.anatomy.frame import AnatomicalFrame

SEARCH_HALF_WIDTH_MM = 40.0
STRIP_HALF_WIDTH_MM = 6.0
CANAL_MAX_GAP_MM = 30.0
SMOOTH_HALF_WINDOW_MM = 25.0
PROFILE_HALF_WINDOW_MM = 40.0
BODY_DEPTH_RANGE_MM = (12.0, 50.0)
BODY_HALF_WIDTH_MM = 10.0
MIN_BODY_FRACTION = 0.25
END_PLATE_CONFIRM_MM = 8.0  # a disc gap this long needs no vertebra beyond it


@dataclass(frozen=True)
class VertebralSegment:
    """A vertebral body (or fused block, like the sacrum) between two discs."""

    lo: int  # lowest canonical slice
    hi: int  # highest canonical slice
    bottom_open: bool  # its lower end plate may lie outside the scan or the spine's track
    top_open: bool

    @property
    def complete(self) -> bool:
        return not (self.bottom_open or self.top_open)

    @property
    def middle(self) -> float:
        return (self.lo + self.hi) / 2.0

    def height_mm(self, frame: AnatomicalFrame) -> float:
        return float(frame.z_mm[self.hi] - frame.z_mm[self.lo] + frame.slice_interval_mm)


@dataclass(frozen=True)
class SpineTrack:
    valid: NDArray[np.bool_]  # slices where the spine was found
    x: NDArray[np.float64]  # spine centre column (pooled pixels), NaN where not valid
    front: NDArray[np.float64]  # row of the vertebral bodies' front edge (pooled pixels)
    depth_px: float  # vertebral body depth (pooled pixels)
    profile: NDArray[np.float64]  # bone fraction of the vertebral-body box per slice
    is_body: NDArray[np.bool_]  # slice passes through a vertebral body, not a disc
    segments: list[VertebralSegment]

    def filled_centres(self) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Body centre rows and columns for every slice, held constant beyond the track."""
        rows = self.front + self.depth_px / 2.0
        return _fill_by_nearest(rows, self.valid), _fill_by_nearest(self.x, self.valid)

    @classmethod
    def empty(cls, n: int) -> SpineTrack:
        nan = np.full(n, np.nan)
        return cls(np.zeros(n, bool), nan, nan.copy(), 0.0, np.zeros(n), np.zeros(n, bool), [])


def track_spine(
    bone: NDArray[np.bool_], trunk: NDArray[np.bool_], frame: AnatomicalFrame
) -> SpineTrack:
    """Find the vertebral column and its vertebral bodies in pooled canonical masks."""
    n = bone.shape[0]
    py, px = frame.pooled_mm
    dz = frame.slice_interval_mm or 1.0
    smooth = max(1, round(SMOOTH_HALF_WINDOW_MM / dz))

    x_raw = np.array([_spine_column(bone[c] & trunk[c], trunk[c], px) for c in range(n)])
    x = _running(x_raw, smooth, np.nanmedian)
    valid = np.isfinite(x_raw) & np.isfinite(x)
    if valid.sum() < 2:
        return SpineTrack.empty(n)

    strip = max(1, round(STRIP_HALF_WIDTH_MM / px))
    fronts = np.full(n, np.nan)
    runs = np.full(n, np.nan)
    for c in np.flatnonzero(valid):
        fronts[c], runs[c] = _front_run(bone[c] & trunk[c], int(round(x[c])), strip, py)
    front = _running(fronts, smooth, lambda v, axis: np.nanpercentile(v, 25, axis=axis))
    valid &= np.isfinite(front)
    at_body = valid & np.isfinite(fronts) & (fronts <= front + max(1.0, 5.0 / py))
    depth_mm = float(np.median(runs[at_body]) * py) if at_body.any() else 30.0
    depth_px = float(np.clip(depth_mm, *BODY_DEPTH_RANGE_MM) / py)

    half = max(1, round(BODY_HALF_WIDTH_MM / px))
    profile = np.zeros(n)
    for c in np.flatnonzero(valid):
        top = int(round(front[c]))
        box = bone[c, max(top, 0) : max(top + int(round(0.8 * depth_px)), top + 1)]
        col = int(round(x[c]))
        box = box[:, max(col - half, 0) : col + half + 1]
        profile[c] = float(box.mean()) if box.size else 0.0
    window = max(1, round(PROFILE_HALF_WINDOW_MM / dz))
    local_max = _running(
        np.where(valid, profile, np.nan), window, lambda v, axis: np.nanpercentile(v, 90, axis=axis)
    )
    is_body = valid & (profile >= np.maximum(MIN_BODY_FRACTION, 0.5 * np.nan_to_num(local_max)))
    segments = _segments(is_body, valid, profile, local_max, frame)
    return SpineTrack(
        valid=valid,
        x=np.where(valid, x, np.nan),
        front=np.where(valid, front, np.nan),
        depth_px=depth_px,
        profile=profile,
        is_body=is_body,
        segments=segments,
    )


def _spine_column(bone: NDArray[np.bool_], trunk: NDArray[np.bool_], px_mm: float) -> float:
    rows, cols = np.nonzero(trunk)
    if rows.size == 0:
        return np.nan
    centre_x = cols.mean()
    posterior_from = rows.mean() - 0.15 * (rows.max() - rows.min())
    b_rows, b_cols = np.nonzero(bone)
    near = (np.abs(b_cols - centre_x) * px_mm <= SEARCH_HALF_WIDTH_MM) & (b_rows >= posterior_from)
    if near.sum() < 3:
        return np.nan
    return float(np.median(b_cols[near]))


def _front_run(bone: NDArray[np.bool_], col: int, strip: int, py_mm: float) -> tuple[float, float]:
    """Front row of the spine's most anterior bone run at this column, and that run's length."""
    band = bone[:, max(col - strip, 0) : col + strip + 1]
    if band.size == 0:
        return np.nan, np.nan
    has_bone = band.mean(axis=1) >= 0.4
    rows = np.flatnonzero(has_bone)
    if rows.size == 0:
        return np.nan, np.nan
    max_gap = CANAL_MAX_GAP_MM / py_mm
    front = rows[-1]
    for r in rows[::-1][1:]:
        if front - r > max_gap:
            break
        front = r
    end = front
    while end + 1 < has_bone.size and (
        has_bone[end + 1] or (end + 2 < has_bone.size and has_bone[end + 2])
    ):
        end += 1
    return float(front), float(end - front + 1)


def _running(
    values: NDArray[np.float64], half: int, statistic: Callable[..., NDArray[np.float64]]
) -> NDArray[np.float64]:
    """``statistic`` (a NaN-aware reducer taking ``axis``) over a window of +-half samples."""
    padded = np.pad(values.astype(np.float64), half, constant_values=np.nan)
    windows = np.lib.stride_tricks.sliding_window_view(padded, 2 * half + 1)
    out = np.full(values.shape, np.nan)
    seen = np.isfinite(windows).any(axis=1)
    if seen.any():
        out[seen] = statistic(windows[seen], axis=1)
    return out


def _fill_by_nearest(values: NDArray[np.float64], valid: NDArray[np.bool_]) -> NDArray[np.float64]:
    idx = np.flatnonzero(valid & np.isfinite(values))
    if idx.size == 0:
        return np.full(values.shape, np.nan)
    return np.interp(np.arange(values.size), idx, values[idx])


def _segments(
    is_body: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    profile: NDArray[np.float64],
    local_max: NDArray[np.float64],
    frame: AnatomicalFrame,
) -> list[VertebralSegment]:
    n = is_body.size
    runs: list[tuple[int, int]] = []
    c = 0
    while c < n:
        if is_body[c]:
            start = c
            while c + 1 < n and is_body[c + 1]:
                c += 1
            runs.append((start, c))
        c += 1
    dz = frame.slice_interval_mm or 1.0
    confirm = max(1, int(np.ceil(END_PLATE_CONFIRM_MM / dz)))
    reach = max(1, int(np.ceil(MAX_DISC_MM / dz)))
    if runs:
        found = np.zeros_like(is_body)
        for lo, hi in runs:
            found[lo : hi + 1] = True
        open_ends = (
            not _end_plate_seen(found, valid, runs[0][0], -1, confirm, reach),
            not _end_plate_seen(found, valid, runs[-1][1], +1, confirm, reach),
        )
        runs = vertebral_bodies(runs, profile, local_max, open_ends, dz)
    kept = np.zeros_like(is_body)
    for lo, hi in runs:
        kept[lo : hi + 1] = True
    return [
        VertebralSegment(
            lo=lo,
            hi=hi,
            bottom_open=not _end_plate_seen(kept, valid, lo, -1, confirm, reach),
            top_open=not _end_plate_seen(kept, valid, hi, +1, confirm, reach),
        )
        for lo, hi in runs
    ]


def _end_plate_seen(
    is_body: NDArray[np.bool_],
    valid: NDArray[np.bool_],
    end: int,
    step: int,
    confirm: int,
    reach: int,
) -> bool:
    """Whether the gap beyond a segment's end is a real disc: it reaches another vertebral
    body, or runs on along the spine for ``confirm`` slices, before the scan or track ends.
    A short gap at the scan's edge may be the end plate's partial volume, not a disc.

    The track may drop for a few slices inside a disc, where a slice holds no bone near the
    midline (a disc level without its arch, as on the generator phantoms): such a gap is a
    disc when it reaches another body within ``MAX_DISC_MM``."""
    c = end + step
    gap = 0
    lost = False
    while 0 <= c < is_body.size and (valid[c] or gap < reach):
        if is_body[c]:
            return True
        lost |= not valid[c]
        gap += 1
        if gap >= confirm and not lost:
            return True
        c += step
    return False
