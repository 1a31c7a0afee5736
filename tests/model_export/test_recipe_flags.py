"""``python -m model_export train`` and ``census``: one recipe from the flags, with
TrainConfig's and Runtime's defaults where a flag is not given."""

import dataclasses

import pytest

pytest.importorskip("torch")

from model_export.__main__ import _runtime, _train_config, build_parser  # noqa: E402
from model_export.network import NetworkConfig  # noqa: E402
from model_export.train import Runtime, TrainConfig, stream_spec  # noqa: E402

# Every recipe flag that both commands take, with a value other than its default.
SHARED = ["--batch", "3", "--phantoms", "5", "--spacing", "8,6,6", "--patch", "8,24,32"]
SHARED += ["--lanes", "5", "--refresh-every", "3", "--no-reacquire"]


def test_without_flags_the_recipe_and_runtime_are_the_dataclass_defaults() -> None:
    args = build_parser().parse_args(["train", "--out", "run"])
    assert _train_config(args) == TrainConfig()
    assert _runtime(args) == Runtime()
    census = build_parser().parse_args(["census"])
    assert _train_config(census) == TrainConfig()


def test_each_train_flag_sets_its_field() -> None:
    weights = [str(w) for w in range(1, 9)]
    args = build_parser().parse_args(
        ["train", "--out", "run", *SHARED, "--steps", "7", "--lr", "0.01", "--width", "4"]
        + ["--threads", "1", "--checkpoint-every", "2", "--schedule-start", "1"]
        + ["--class-weights", *weights, "--device", "cpu", "--precision", "fp32"]
        + ["--workers", "0", "--log-every", "9"]
    )
    assert _train_config(args) == TrainConfig(
        spacing_mm=(8.0, 6.0, 6.0),
        patch_size=(8, 24, 32),
        batch_size=3,
        steps=7,
        learning_rate=0.01,
        phantoms=5,
        refresh_every=3,
        lanes=5,
        reacquire_cases=False,
        checkpoint_every=2,
        threads=1,
        network=NetworkConfig(width=4),
        class_weights=tuple(float(w) for w in weights),
        schedule_start=1,
    )
    assert _runtime(args) == Runtime(device="cpu", precision="fp32", workers=0, log_every=9)


def test_census_draws_the_stream_train_would_draw() -> None:
    train = _train_config(build_parser().parse_args(["train", "--out", "run", *SHARED]))
    census = _train_config(build_parser().parse_args(["census", *SHARED]))
    assert census == train
    assert stream_spec(census, phantoms=True) == stream_spec(train, phantoms=True)


def test_the_stream_spec_is_the_recipe_s_fields_of_the_same_name() -> None:
    config = TrainConfig(seed=4, folder_share=0.25, hu_std=100.0, phantoms=6)
    spec = stream_spec(config, phantoms=True)
    for field in dataclasses.fields(spec):
        assert getattr(spec, field.name) == getattr(config, field.name)
    assert stream_spec(config, phantoms=False).phantoms == 0
