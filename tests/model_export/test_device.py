"""Training device and precision: auto picks what the machine has, an absent GPU is refused."""

import pytest

torch = pytest.importorskip("torch")

from model_export.__main__ import main  # noqa: E402
from model_export.device import (  # noqa: E402
    DeviceUnavailable,
    resolve_device,
    resolve_precision,
)
from model_export.train import default_workers  # noqa: E402


def test_auto_is_the_gpu_when_there_is_one_and_the_cpu_otherwise():
    assert resolve_device("auto", cuda_available=False) == torch.device("cpu")
    assert resolve_device("auto", cuda_available=True) == torch.device("cuda")
    assert resolve_device("cpu", cuda_available=True) == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")


def test_cuda_without_a_gpu_is_refused_with_the_reason():
    with pytest.raises(DeviceUnavailable, match="expected a CUDA GPU visible to PyTorch"):
        resolve_device("cuda", cuda_available=False)
    with pytest.raises(DeviceUnavailable, match="--device must be one of"):
        resolve_device("tpu")


def test_precision_is_bf16_on_a_gpu_that_has_it_and_fp32_on_the_cpu():
    cpu, cuda = torch.device("cpu"), torch.device("cuda")
    assert resolve_precision("auto", cpu) == "fp32"
    assert resolve_precision("auto", cuda, bf16_supported=True) == "bf16"
    assert resolve_precision("auto", cuda, bf16_supported=False) == "fp32"
    assert resolve_precision("fp32", cuda, bf16_supported=True) == "fp32"
    with pytest.raises(DeviceUnavailable, match="found the CPU"):
        resolve_precision("bf16", cpu)
    with pytest.raises(DeviceUnavailable, match="does not support bfloat16"):
        resolve_precision("bf16", cuda, bf16_supported=False)


def test_workers_default_to_one_on_the_cpu_and_divide_the_lanes_on_a_gpu():
    assert default_workers(torch.device("cpu"), lanes=8, cpus=16) == 1
    assert default_workers(torch.device("cpu"), lanes=8, cpus=1) == 0
    assert default_workers(torch.device("cuda"), lanes=8, cpus=16) == 8
    assert default_workers(torch.device("cuda"), lanes=8, cpus=6) == 4
    assert default_workers(torch.device("cuda"), lanes=8, cpus=1) == 1


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")
def test_train_on_cuda_without_a_gpu_exits_2_with_a_message(tmp_path, capsys):
    code = main(["train", "--out", str(tmp_path / "run"), "--steps", "1", "--device", "cuda"])
    assert code == 2
    err = capsys.readouterr().err
    assert err.startswith("error: --device cuda: expected a CUDA GPU") and "Traceback" not in err
    assert not (tmp_path / "run" / "checkpoint.pt").exists()
