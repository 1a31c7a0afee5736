"""Whether a vertebral body's end is an end plate seen (a disc beyond it) or may lie outside
the scan or the track (``habitus.anatomy.spine._end_plate_seen``).

The generator phantoms paint no arch at disc level, so the track drops for a slice or two
inside each disc; every lumbar body then read as cut by the edge of the scan and L3 was
never named there ("L3 is cut by the edge of the scan" on seeds 1, 3, 4 and 5, 3 mm, with
both counts agreeing). With the drop crossed, those L3s are named, each the phantom's L3.
"""

from __future__ import annotations

import numpy as np

from habitus.anatomy.spine import _end_plate_seen

CONFIRM, REACH = 3, 7  # 8 mm and 20 mm at 3 mm slices


def _track(pattern: str) -> tuple[np.ndarray, np.ndarray]:
    """'B' body, '.' disc on the track, ' ' off the track."""
    is_body = np.array([ch == "B" for ch in pattern])
    valid = np.array([ch != " " for ch in pattern])
    return is_body, valid


def test_a_track_lost_inside_a_disc_still_reaches_the_next_body() -> None:
    is_body, valid = _track("BBBBB.  .BBBBB")
    assert _end_plate_seen(is_body, valid, 4, +1, CONFIRM, REACH)
    assert _end_plate_seen(is_body, valid, 9, -1, CONFIRM, REACH)


def test_a_track_lost_beyond_a_body_is_no_end_plate() -> None:
    """Lost and never reaching a body: the end may lie beyond the track."""
    is_body, valid = _track("BBBBB.          ")
    assert not _end_plate_seen(is_body, valid, 4, +1, CONFIRM, REACH)
    is_body, valid = _track("BBBBB. ")
    assert not _end_plate_seen(is_body, valid, 4, +1, CONFIRM, REACH)


def test_a_long_gap_on_the_track_is_an_end_plate_and_a_short_one_at_the_edge_is_not() -> None:
    is_body, valid = _track("BBBBB....")
    assert _end_plate_seen(is_body, valid, 4, +1, CONFIRM, REACH)
    is_body, valid = _track("BBBBB..")
    assert not _end_plate_seen(is_body, valid, 4, +1, CONFIRM, REACH)
