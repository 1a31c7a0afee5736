"""Training: a few steps lower the loss; folders of NIfTI pairs; resumable checkpoints."""

import dataclasses
import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from habitus.phantoms import make_phantom  # noqa: E402
from model_export.network import NetworkConfig  # noqa: E402
from model_export.train import (  # noqa: E402
    TrainConfig,
    load_checkpoint,
    model_from_checkpoint,
    train,
)
from model_export.training_pairs import IGNORE, read_labelled_folder, write_nifti_pair  # noqa: E402


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
    from habitus.outputs.seg import build_segmentation
    from habitus.phantoms.write_dicom import write_series
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


def _phantom_config(steps: int) -> TrainConfig:
    """The small recipe of _config drawing from two one-phantom lanes, checkpointing at the end."""
    return dataclasses.replace(
        _config(steps), checkpoint_every=100, phantoms=2, lanes=2, refresh_every=2
    )


def test_a_resumed_run_ends_where_an_uninterrupted_one_does(tmp_path):
    straight = train(_phantom_config(4), tmp_path / "straight")
    train(_phantom_config(2), tmp_path / "resumed")
    resumed = train(_phantom_config(4), tmp_path / "resumed")
    assert straight.steps == resumed.steps == 4
    assert straight.device == "cpu" and straight.precision == "fp32"
    a = load_checkpoint(tmp_path / "straight" / "checkpoint.pt")
    b = load_checkpoint(tmp_path / "resumed" / "checkpoint.pt")
    for name, tensor in a["model"].items():
        assert tensor.device.type == "cpu"
        assert torch.equal(tensor, b["model"][name]), name
    for state in a["optimizer"]["state"].values():
        assert all(v.device.type == "cpu" for v in state.values())
    assert straight.final_loss == resumed.final_loss


def test_a_checkpoint_written_before_lanes_existed_still_resumes(tmp_path):
    train(_phantom_config(2), tmp_path)
    path = tmp_path / "checkpoint.pt"
    data = load_checkpoint(path)
    for key in ("lanes",):  # recipe fields that older checkpoints lack
        del data["config"][key]
    torch.save(data, path)
    _, config, step = model_from_checkpoint(path)  # as export reads it
    assert step == 2 and config.lanes == TrainConfig().lanes
    result = train(_phantom_config(3), tmp_path)
    assert result.steps == 3


@pytest.mark.filterwarnings("ignore:This DataLoader will create")
def test_the_command_trains_with_workers_and_reports_throughput(tmp_path, capsys, caplog):
    from model_export.__main__ import main

    caplog.set_level("INFO", logger="model_export.train")
    args = ["train", "--out", str(tmp_path), "--steps", "4", "--workers", "2", "--lanes", "2"]
    args += ["--spacing", "8,8,8", "--patch", "8,24,24", "--width", "4", "--phantoms", "2"]
    args += ["--threads", "1", "--log-every", "2", "--device", "auto"]
    assert main(args) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 4 and printed["workers"] == 2
    assert printed["device"] == ("cuda" if torch.cuda.is_available() else "cpu")
    lines = [r.getMessage() for r in caplog.records if "steps/s" in r.getMessage()]
    assert [line.split(":")[0] for line in lines] == ["step 2", "step 4"]
    assert all("patches/s" in line and "waiting for data" in line for line in lines)
    records = [json.loads(x) for x in (tmp_path / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    assert all(r["data_wait_s"] >= 0 for r in records)
