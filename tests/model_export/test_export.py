"""ONNX export: parity with PyTorch, a manifest the engine accepts, the engine runs it."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("onnxruntime")

from habitus.labels import NUM_LABELS  # noqa: E402
from habitus.phantoms import make_phantom  # noqa: E402
from habitus.segment.manifest import load_manifest  # noqa: E402
from habitus.segment.onnx_segmenter import OnnxSegmenter  # noqa: E402
from model_export.export import (  # noqa: E402
    check_parity,
    export_model,
    export_onnx,
    record_evaluation,
)
from model_export.network import NetworkConfig, UNet3D  # noqa: E402
from model_export.train import TrainConfig, save_checkpoint  # noqa: E402


def test_onnx_matches_torch_with_dynamic_batch_and_depth(tmp_path):
    torch.manual_seed(0)
    net = UNet3D(NetworkConfig(width=4)).eval()
    path = export_onnx(net, tmp_path / "tiny.onnx", (8, 32, 32))
    rng = np.random.default_rng(0)
    parity = check_parity(net, path, rng.normal(size=(2, 1, 8, 32, 32)).astype(np.float32))
    assert parity.max_abs_prob_diff < 1e-4
    assert parity.argmax_agreement > 0.999

    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = rng.normal(size=(3, 1, 12, 32, 32)).astype(np.float32)  # other batch and depth
    (out,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = net(torch.from_numpy(x)).numpy()
    assert out.shape == (3, NUM_LABELS, 12, 32, 32)
    assert np.abs(out - expected).max() < 1e-3


def test_export_writes_a_manifest_the_engine_runs(tmp_path):
    torch.manual_seed(0)
    config = TrainConfig(
        spacing_mm=(8.0, 8.0, 8.0), patch_size=(8, 32, 32), network=NetworkConfig(width=4)
    )
    net = UNet3D(config.network)
    optimizer = torch.optim.AdamW(net.parameters())
    save_checkpoint(tmp_path / "checkpoint.pt", net, optimizer, 3, config)

    result = export_model(
        tmp_path / "checkpoint.pt",
        tmp_path / "out",
        model_id="tiny",
        version="0.0.1",
        description="test",
        parity_patches=1,
    )
    manifest_path = tmp_path / "out" / "tiny.json"
    manifest = load_manifest(manifest_path)
    assert manifest.patch_size == (8, 32, 32)
    assert manifest.input_spacing_mm == config.spacing_mm
    assert manifest.refinement == "attenuation"
    assert manifest.normalization.scale == "zscore"
    assert manifest.training["steps"] == 3
    assert result["parity"]["max_abs_prob_diff"] < 1e-4
    parity = json.loads((tmp_path / "out" / "tiny.parity.json").read_text())
    assert parity == result["parity"]

    record_evaluation(manifest_path, {"phantom_dice": {"bone": 0.5}})
    recorded = load_manifest(manifest_path)
    assert recorded.training["evaluation"] == {"phantom_dice": {"bone": 0.5}}
    assert recorded.sha256 == manifest.sha256 and recorded.training["parity"]

    phantom = make_phantom(2, spacing_mm=(8.0, 8.0, 8.0), scan_range="upper_abdomen")
    labels = OnnxSegmenter(manifest_path, device="cpu").segment(phantom.volume)
    assert labels.shape == phantom.volume.shape
    assert labels.dtype == np.uint8 and int(labels.max()) < NUM_LABELS


def test_a_gpu_sized_model_exports_under_its_own_name_and_the_engine_loads_it(tmp_path, capsys):
    from model_export.__main__ import main

    torch.manual_seed(0)
    # The GPU recipe's network and patch (width 16, 32 x 96 x 96); a coarser grid keeps the
    # parity phantoms quick to draw.
    config = TrainConfig(
        spacing_mm=(4.0, 4.0, 4.0), patch_size=(32, 96, 96), network=NetworkConfig(width=16)
    )
    net = UNet3D(config.network)
    save_checkpoint(tmp_path / "checkpoint.pt", net, torch.optim.AdamW(net.parameters()), 5, config)

    args = ["export", str(tmp_path / "checkpoint.pt"), "--out", str(tmp_path / "out")]
    assert main([*args, "--target", "gpu", "--parity-patches", "1"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["manifest"].endswith("habitus-unet3d-gpu.json")
    manifest = load_manifest(tmp_path / "out" / "habitus-unet3d-gpu.json")
    assert manifest.model_id == "habitus-unet3d-gpu" and "GPU build" in manifest.description
    assert manifest.training["target_device"] == "gpu"
    assert manifest.training["network"]["width"] == 16
    assert manifest.patch_size == (32, 96, 96)
    # The engine checks the manifest, the checksum and the graph's input and output on load.
    OnnxSegmenter(tmp_path / "out" / "habitus-unet3d-gpu.json", device="cpu")
