"""Where training runs: ``--device auto|cpu|cuda`` and ``--precision auto|fp32|bf16``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import Literal

import torch

from habitus.errors import HabitusError

DeviceName = Literal["auto", "cpu", "cuda"]
PrecisionName = Literal["auto", "fp32", "bf16"]
DEVICES: tuple[DeviceName, ...] = ("auto", "cpu", "cuda")
PRECISIONS: tuple[PrecisionName, ...] = ("auto", "fp32", "bf16")


class DeviceUnavailable(HabitusError):
    """The requested training device or precision cannot be used on this machine."""


def resolve_device(name: str, *, cuda_available: bool | None = None) -> torch.device:
    """``auto`` is CUDA when PyTorch sees a GPU, else the CPU; ``cuda`` without one is refused.

    ``cuda_available`` defaults to ``torch.cuda.is_available()``; tests pass it explicitly.
    """
    if name not in DEVICES:
        raise DeviceUnavailable(f"--device must be one of {', '.join(DEVICES)}, found {name!r}")
    if cuda_available is None:
        cuda_available = torch.cuda.is_available()
    if name == "cpu" or (name == "auto" and not cuda_available):
        return torch.device("cpu")
    if not cuda_available:
        build = torch.version.cuda
        raise DeviceUnavailable(
            "--device cuda: expected a CUDA GPU visible to PyTorch, found none "
            + (
                f"(torch {torch.__version__} is built for CUDA {build}; check the driver "
                "and CUDA_VISIBLE_DEVICES)"
                if build
                else f"(torch {torch.__version__} is a CPU-only build)"
            )
        )
    return torch.device("cuda")


def resolve_precision(
    name: str, device: torch.device, *, bf16_supported: bool | None = None
) -> str:
    """``auto`` is bf16 on a GPU that supports it and fp32 otherwise; the CPU trains in fp32."""
    if name not in PRECISIONS:
        raise DeviceUnavailable(
            f"--precision must be one of {', '.join(PRECISIONS)}, found {name!r}"
        )
    if device.type != "cuda":
        if name == "bf16":
            raise DeviceUnavailable(
                "--precision bf16: expected a CUDA device, found the CPU (which trains in fp32)"
            )
        return "fp32"
    if bf16_supported is None:
        bf16_supported = torch.cuda.is_bf16_supported()
    if name == "bf16" and not bf16_supported:
        raise DeviceUnavailable("--precision bf16: this GPU does not support bfloat16")
    if name == "auto":
        return "bf16" if bf16_supported else "fp32"
    return name


@contextlib.contextmanager
def autocast(device: torch.device, precision: str) -> Iterator[None]:
    """bf16 autocast for the forward pass on CUDA; nothing on the CPU or in fp32."""
    if device.type == "cuda" and precision == "bf16":
        with torch.autocast(device_type="cuda", dtype=torch.bfloat16):
            yield
    else:
        yield
