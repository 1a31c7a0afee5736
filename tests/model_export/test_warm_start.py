"""Warm start (``train --init-from``): an exported model's ONNX weights back in the network.

Logits are compared with ONNX Runtime's within 1e-4 of the largest logit: ORT's float32 graph
(GroupNorm exported as InstanceNormalization on reshaped tensors) differs from a float64
evaluation by up to 1.2e-4 on the bundled model's logits of about 30, while PyTorch's float32
stays within 1.5e-5 of it; a weight put in the wrong place moves logits by whole units.
"""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from habitus.errors import ModelError  # noqa: E402
from habitus.segment.manifest import load_manifest  # noqa: E402
from model_export.export import export_model  # noqa: E402
from model_export.network import NetworkConfig, UNet3D  # noqa: E402
from model_export.train import Runtime, TrainConfig, load_checkpoint, train  # noqa: E402
from model_export.warm_start import check_matches, load_warm_start  # noqa: E402

BUNDLED = "habitus/models/habitus-unet3d-cpu.json"


def _config(steps: int, **changes) -> TrainConfig:
    values = dict(
        spacing_mm=(8.0, 8.0, 8.0),
        patch_size=(8, 24, 24),
        batch_size=1,
        steps=steps,
        learning_rate=1e-2,
        warmup_steps=1,
        checkpoint_every=100,
        threads=1,
        phantoms=1,
        lanes=1,
        refresh_every=100,
        network=NetworkConfig(width=4),
    )
    return TrainConfig(**{**values, **changes})


def _assert_logits_match_ort(model: UNet3D, onnx_path, shape) -> None:
    x = np.random.default_rng(0).normal(size=(1, 1, *shape)).astype(np.float32)
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x})
    with torch.no_grad():
        expected = model.eval()(torch.from_numpy(x)).numpy()
    scale = max(1.0, float(np.abs(expected).max()))
    assert np.abs(got - expected).max() <= 1e-4 * scale
    probs = [torch.softmax(torch.from_numpy(v), dim=1).numpy() for v in (got, expected)]
    assert np.abs(probs[0] - probs[1]).max() < 1e-4


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    """A width-4 model trained three steps and exported: (run folder, manifest path)."""
    root = tmp_path_factory.mktemp("warm")
    train(_config(3), root / "run", runtime=Runtime(workers=0))
    export_model(
        root / "run" / "checkpoint.pt",
        root / "model",
        model_id="tiny",
        version="0.0.3",
        description="test",
        parity_patches=1,
    )
    return root / "run", root / "model" / "tiny.json"


def test_an_exported_model_loads_back_with_its_exact_weights(exported):
    run, manifest_path = exported
    for path in (manifest_path, manifest_path.with_suffix(".onnx")):
        warm = load_warm_start(path)
        trained = load_checkpoint(run / "checkpoint.pt")["model"]
        loaded = warm.model.state_dict()
        assert set(loaded) == set(trained)
        for name, tensor in trained.items():
            assert torch.equal(loaded[name], tensor), name
        assert warm.source["model_id"] == "tiny" and warm.source["version"] == "0.0.3"
        assert warm.source["sha256"] == load_manifest(manifest_path).sha256
        _assert_logits_match_ort(warm.model, manifest_path.with_suffix(".onnx"), (8, 24, 24))


def test_the_bundled_model_loads_with_onnx_runtime_parity():
    warm = load_warm_start(BUNDLED)
    assert warm.model.config == NetworkConfig(width=8)
    _assert_logits_match_ort(warm.model, "habitus/models/habitus-unet3d-cpu.onnx", (16, 48, 48))


def test_a_network_of_another_width_is_refused(exported, tmp_path):
    _, manifest_path = exported
    warm = load_warm_start(manifest_path)
    with pytest.raises(ModelError, match="width"):
        check_matches(warm, NetworkConfig(width=8))
    with pytest.raises(ModelError, match="width"):
        train(_config(1, network=NetworkConfig(width=8)), tmp_path, init_from=manifest_path)
    # A manifest that names another width than its ONNX file holds: shapes differ.
    manifest = json.loads(manifest_path.read_text())
    manifest["training"]["network"]["width"] = 8
    (tmp_path / "tiny.onnx").write_bytes(manifest_path.with_suffix(".onnx").read_bytes())
    (tmp_path / "tiny.json").write_text(json.dumps(manifest))
    with pytest.raises(ModelError, match="shape"):
        load_warm_start(tmp_path / "tiny.json")


def test_the_command_starts_from_the_model_and_records_it(exported, tmp_path, capsys, caplog):
    from model_export.__main__ import main

    _, manifest_path = exported
    caplog.set_level("INFO", logger="model_export.train")
    out = tmp_path / "run"
    args = ["train", "--out", str(out), "--init-from", str(manifest_path), "--workers", "0"]
    args += ["--spacing", "8,8,8", "--patch", "8,24,24", "--phantoms", "1", "--lanes", "1"]
    args += ["--threads", "1", "--batch", "1", "--schedule-start", "2"]
    # No --width: the model's network. Steps end where the schedule starts: the weights as loaded.
    assert main([*args, "--steps", "2"]) == 0
    printed = json.loads(capsys.readouterr().out)
    assert printed["steps"] == 2 and printed["init_from"]["model_id"] == "tiny"
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    source = load_warm_start(manifest_path).model.state_dict()
    assert all(torch.equal(checkpoint["model"][k], v) for k, v in source.items())
    assert checkpoint["init_from"]["sha256"] == load_manifest(manifest_path).sha256

    # Resumed: --init-from is ignored (the weights trained on are the checkpoint's).
    assert main([*args, "--steps", "3"]) == 0
    assert json.loads(capsys.readouterr().out)["steps"] == 3
    assert any("ignored" in r.getMessage() for r in caplog.records)
    log = [json.loads(x) for x in (out / "train_log.jsonl").read_text().splitlines()]
    assert [r["step"] for r in log] == [3]

    assert main(["export", str(out / "checkpoint.pt"), "--out", str(tmp_path / "m")]) == 0
    exported_again = load_manifest(tmp_path / "m" / "habitus-unet3d-cpu.json")
    assert exported_again.training["init_from"]["version"] == "0.0.3"
    assert main([*args[:2], str(tmp_path / "r2"), *args[3:], "--steps", "3", "--width", "8"]) == 2
