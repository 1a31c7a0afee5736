"""Training: a few steps lower the loss; folders of NIfTI pairs; resumable checkpoints."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from model_export.network import NetworkConfig  # noqa: E402
from model_export.phantoms import make_phantom  # noqa: E402
from model_export.train import TrainConfig, load_checkpoint, train  # noqa: E402
from model_export.volumes import IGNORE, read_labelled_folder, write_nifti_pair  # noqa: E402


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("labelled")
    for seed in (3, 4):
        p = make_phantom(seed, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
        write_nifti_pair(p.volume.hu, p.labels, p.volume.geometry, root / f"case{seed}")
    return root


def _config(steps: int) -> TrainConfig:
    return TrainConfig(
        spacing_mm=(8.0, 8.0, 8.0),
        patch_size=(8, 24, 24),
        batch_size=2,
        steps=steps,
        learning_rate=1e-2,
        warmup_steps=2,
        checkpoint_every=5,
        threads=1,
        network=NetworkConfig(width=4),
    )


def _losses(out_dir):
    lines = (out_dir / "train_log.jsonl").read_text().splitlines()
    return [json.loads(line)["loss"] for line in lines]


def test_reading_a_folder_of_nifti_pairs_keeps_the_phantom(folder):
    volumes = read_labelled_folder(folder)
    p = make_phantom(3, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    assert [v.name for v in volumes] == ["case3", "case4"]
    assert np.array_equal(volumes[0].hu, p.volume.hu)
    assert np.array_equal(volumes[0].labels, p.labels)
    assert volumes[0].spacing == (8.0, 8.0, 8.0)
    assert IGNORE not in np.unique(volumes[0].labels)


def test_training_on_a_folder_lowers_the_loss_and_resumes(folder, tmp_path):
    result = train(_config(24), tmp_path, folder=folder, phantoms=False)
    assert result.steps == 24 and result.folder_cases == ["case3", "case4"]
    losses = _losses(tmp_path)
    assert np.mean(losses[-5:]) < np.mean(losses[:5])

    data = load_checkpoint(tmp_path / "checkpoint.pt")
    assert data["step"] == 24 and "optimizer" in data and "model" in data
    resumed = train(_config(27), tmp_path, folder=folder, phantoms=False)
    assert resumed.steps == 27
    assert [json.loads(x)["step"] for x in (tmp_path / "train_log.jsonl").read_text().splitlines()][
        -3:
    ] == [25, 26, 27]


def test_reading_a_dicom_series_with_its_seg(tmp_path):
    from habitus.dicom import load_ct
    from habitus.dicom.synthetic import write_series
    from habitus.outputs.seg import build_segmentation
    from habitus.segment.base import ModelInfo

    p = make_phantom(4, spacing_mm=(5.0, 8.0, 8.0), scan_range="upper_abdomen")
    case = tmp_path / "cases" / "case1"
    write_series(case / "ct", p.volume.hu, p.volume.geometry, slice_thickness=5.0)
    volume = load_ct(case / "ct").volume
    info = ModelInfo(model_id="annotator", version="1", kind="rules")
    build_segmentation(p.labels, volume, info).save_as(case / "seg.dcm")

    (read,) = read_labelled_folder(tmp_path / "cases")
    assert np.array_equal(read.hu, p.volume.hu)
    assert np.array_equal(read.labels, p.labels)


def test_fine_tuning_restarts_warm_up_and_decay_at_schedule_start():
    from model_export.train import learning_rate

    config = TrainConfig(steps=200, schedule_start=100, warmup_steps=10, learning_rate=1e-3)
    assert learning_rate(100, config) == pytest.approx(1e-4)  # first warm-up step
    assert learning_rate(109, config) == pytest.approx(1e-3)  # peak
    assert learning_rate(199, config) < 0.05 * 1e-3  # decayed by the last step
    rising = [learning_rate(s, config) for s in range(100, 110)]
    assert rising == sorted(rising)


def test_class_weights_change_the_loss():
    from model_export.train import loss_fn

    logits = torch.zeros(1, 8, 2, 2, 2)
    target = torch.full((1, 2, 2, 2), 7, dtype=torch.long)
    target[0, 0] = 0
    plain = loss_fn(logits, target, dice_weight=0.0)
    weights = torch.ones(8)
    weights[7] = 4.0
    weighted = loss_fn(logits, target, dice_weight=0.0, class_weights=weights)
    # Uniform logits: every voxel costs log(8) whatever its weight (weighted mean).
    assert float(plain) == pytest.approx(float(np.log(8)))
    assert float(weighted) == pytest.approx(float(np.log(8)))
    logits[0, 7] = 1.0  # now class-7 voxels cost less, and they weigh more
    assert float(loss_fn(logits, target, 0.0, weights)) < float(loss_fn(logits, target, 0.0))
