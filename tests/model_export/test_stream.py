"""Training batches: a pure function of (seed, step), the same whatever the number of workers."""

import numpy as np
import pytest

from habitus.labels import Tissue
from model_export.acquisition import Reacquisition
from model_export.training_pairs import LabelledVolume

torch = pytest.importorskip("torch")

from model_export.stream import (  # noqa: E402
    TRAINING_SEED_BASE,
    PatchStream,
    batches,
    case_version,
    lane_pool,
    seeds_seen,
)
from tests.model_export.small_stream import small_spec  # noqa: E402


def test_lanes_bring_in_one_fresh_phantom_every_refresh_steps_evenly():
    spec = small_spec(phantoms=32, lanes=8, refresh_every=10)
    assert lane_pool(spec, 0) == [TRAINING_SEED_BASE + 8 * k for k in range(4)]
    assert lane_pool(spec, 1) == [TRAINING_SEED_BASE + 1 + 8 * k for k in range(4)]
    # Lane 0 refreshes first on its 10th step (step 80): slot 0 gets the lane's phantom 4.
    assert lane_pool(spec, 72) == lane_pool(spec, 0)
    assert lane_pool(spec, 80) == [TRAINING_SEED_BASE + 8 * k for k in (4, 1, 2, 3)]
    arrivals = []  # steps where a phantom is drawn from for the first time
    seen: set[int] = set()
    for step in range(800):
        pool = lane_pool(spec, step)
        assert len(set(pool)) == 4
        assert all((s - TRAINING_SEED_BASE) % 8 == step % 8 for s in pool)
        if step >= 8 and set(pool) - seen:
            arrivals.append(step)
        seen.update(pool)
    # 800 steps: the 32 first phantoms and about one fresh phantom every 10 steps after them.
    assert len(seen) == len(seeds_seen(spec, 0, 800)) and 32 + 75 <= len(seen) <= 32 + 80
    gaps = [b - a for a, b in zip(arrivals, arrivals[1:], strict=False)]
    assert max(gaps) <= 25 and min(gaps) >= 5  # never all lanes at once


def _drawn(stream: PatchStream, workers: int) -> list:
    return list(batches(stream, workers))


@pytest.mark.filterwarnings("ignore:This DataLoader will create")  # 3 workers on 2 cores
def test_the_same_seeds_give_the_same_patches_whatever_the_workers():
    spec = small_spec()
    alone = _drawn(PatchStream(spec, 0, 7), 0)
    assert [step for step, _, _ in alone] == list(range(7))
    x, y = alone[0][1], alone[0][2]
    assert x.shape == (2, 1, 8, 24, 24) and x.dtype == torch.float32
    assert y.shape == (2, 8, 24, 24) and y.dtype == torch.uint8
    assert not torch.equal(alone[0][1], alone[1][1])
    for workers in (2, 3):  # 3 does not divide the lanes: slower, still the same batches
        together = _drawn(PatchStream(spec, 0, 7), workers)
        assert [step for step, _, _ in together] == list(range(7))
        for (_, xa, ya), (_, xb, yb) in zip(alone, together, strict=True):
            assert torch.equal(xa, xb) and torch.equal(ya, yb)


def test_a_stream_started_later_continues_the_same_batches():
    spec = small_spec()
    whole = _drawn(PatchStream(spec, 0, 6), 0)
    tail = _drawn(PatchStream(spec, 4, 6), 0)
    assert [s for s, _, _ in tail] == [4, 5]
    for (_, xa, ya), (_, xb, yb) in zip(whole[4:], tail, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    other_seed = _drawn(PatchStream(small_spec(seed=6), 4, 5), 0)
    assert not torch.equal(other_seed[0][1], whole[4][1])


def test_nothing_to_draw_from_is_refused():
    with pytest.raises(ValueError, match="nothing to train on"):
        PatchStream(small_spec(phantoms=0), 0, 1)


def _real_case(name: str, shift: int) -> LabelledVolume:
    """A small labelled case at a scanner's resolution (2 mm slices, 1 mm pixels)."""
    labels = np.zeros((24, 96, 96), dtype=np.uint8)
    labels[:, 20 + shift : 76 + shift, 16:80] = Tissue.MUSCLE
    labels[6:18, 40:56, 30 + shift : 60 + shift] = Tissue.BONE
    hu = np.where(labels == Tissue.BONE, 900, np.where(labels == Tissue.MUSCLE, 50, -1024))
    return LabelledVolume(hu.astype(np.int16), labels, (2.0, 1.0, 1.0), name)


def test_each_case_is_reacquired_every_refresh_steps_times_the_cases_staggered():
    spec = small_spec(refresh_every=10)
    versions = [[case_version(spec, s, c, 4) for c in range(4)] for s in range(400)]
    assert versions[0] == [0, 0, 0, 0]
    fresh = [s for s in range(1, 400) if versions[s] != versions[s - 1]]
    assert fresh == list(range(10, 400, 10))  # one case at a time, one every 10 steps
    assert [v[1] for v in versions].count(1) == 40  # each version lasts 40 steps


def test_reacquired_cases_give_the_same_batches_whatever_the_workers():
    spec = small_spec(phantoms=0, refresh_every=1)
    cases = [_real_case("a", 0), _real_case("b", 6)]
    stream = PatchStream(spec, 0, 6, cases, reacquisition=Reacquisition())
    alone = _drawn(stream, 0)
    together = _drawn(PatchStream(spec, 0, 6, cases, reacquisition=Reacquisition()), 2)
    for (_, xa, ya), (_, xb, yb) in zip(alone, together, strict=True):
        assert torch.equal(xa, xb) and torch.equal(ya, yb)
    # A new version of a case is another acquisition, on the model grid all the same.
    first, later = stream._cases(0), stream._cases(5)
    assert all(v.spacing == pytest.approx((8.0, 8.0, 8.0), rel=0.3) for v in first + later)
    assert any(
        a.hu.shape != b.hu.shape or not np.array_equal(a.hu, b.hu)
        for a, b in zip(first, later, strict=True)
    )
    as_scanned = PatchStream(spec, 0, 1, cases)
    assert not torch.equal(as_scanned.batch(0)[0], alone[0][1])
