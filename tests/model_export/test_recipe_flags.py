"""``python -m model_export train`` and ``census``: one recipe from the flags, with
TrainConfig's and Runtime's defaults where a flag is not given."""

import dataclasses
from typing import Any

import pytest

pytest.importorskip("torch")

from model_export.__main__ import _runtime, _train_config, build_parser  # noqa: E402
from model_export.network import NetworkConfig  # noqa: E402
from model_export.train import Runtime, TrainConfig, stream_spec  # noqa: E402

# The recipe flags that both commands take: flags, the field they set, its value (no default).
SHARED: list[tuple[list[str], str, Any]] = [
    (["--batch", "3"], "batch_size", 3),
    (["--phantoms", "5"], "phantoms", 5),
    (["--spacing", "8,6,6"], "spacing_mm", (8.0, 6.0, 6.0)),
    (["--patch", "8,24,32"], "patch_size", (8, 24, 32)),
    (["--lanes", "5"], "lanes", 5),
    (["--refresh-every", "3"], "refresh_every", 3),
    (["--no-reacquire"], "reacquire_cases", False),
]
# ... and those of train alone
TRAIN_ONLY: list[tuple[list[str], str, Any]] = [
    (["--steps", "7"], "steps", 7),
    (["--lr", "0.01"], "learning_rate", 0.01),
    (["--width", "4"], "network", NetworkConfig(width=4)),
    (["--threads", "1"], "threads", 1),
    (["--checkpoint-every", "2"], "checkpoint_every", 2),
    (["--schedule-start", "1"], "schedule_start", 1),
    (["--class-weights", *"12345678"], "class_weights", tuple(float(w) for w in range(1, 9))),
]
RUNTIME: list[tuple[list[str], str, Any]] = [
    (["--device", "cpu"], "device", "cpu"),
    (["--precision", "fp32"], "precision", "fp32"),
    (["--workers", "0"], "workers", 0),
    (["--log-every", "9"], "log_every", 9),
]


def _flags(table: list[tuple[list[str], str, Any]]) -> list[str]:
    return [flag for flags, _, _ in table for flag in flags]


def _values(table: list[tuple[list[str], str, Any]]) -> dict[str, Any]:
    return {field: value for _, field, value in table}


def test_without_flags_the_recipe_and_runtime_are_the_dataclass_defaults() -> None:
    args = build_parser().parse_args(["train", "--out", "run"])
    assert _train_config(args) == TrainConfig()
    assert _runtime(args) == Runtime()
    assert _train_config(build_parser().parse_args(["census"])) == TrainConfig()


def test_each_train_flag_sets_its_field() -> None:
    flags = _flags(SHARED) + _flags(TRAIN_ONLY) + _flags(RUNTIME)
    args = build_parser().parse_args(["train", "--out", "run", *flags])
    expected = TrainConfig(**_values(SHARED), **_values(TRAIN_ONLY))
    assert _train_config(args) == expected
    assert all(getattr(expected, f) != getattr(TrainConfig(), f) for f in _values(TRAIN_ONLY))
    assert _runtime(args) == Runtime(**_values(RUNTIME))


def test_census_draws_the_stream_train_would_draw() -> None:
    train = _train_config(build_parser().parse_args(["train", "--out", "run", *_flags(SHARED)]))
    census = _train_config(build_parser().parse_args(["census", *_flags(SHARED)]))
    assert census == train == TrainConfig(**_values(SHARED))
    assert all(getattr(census, f) != getattr(TrainConfig(), f) for f in _values(SHARED))
    assert stream_spec(census, phantoms=True) == stream_spec(train, phantoms=True)


def test_the_stream_spec_is_the_recipe_s_fields_of_the_same_name() -> None:
    config = TrainConfig(seed=4, folder_share=0.25, hu_std=100.0, phantoms=6)
    spec = stream_spec(config, phantoms=True)
    for field in dataclasses.fields(spec):
        assert getattr(spec, field.name) == getattr(config, field.name)
    assert stream_spec(config, phantoms=False).phantoms == 0
