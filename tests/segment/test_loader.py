"""Choosing the segmenter: bundled or configured model, onnxruntime present or not, rules."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from habitus.config import get_settings
from habitus.errors import ModelError
from habitus.segment.loader import (
    bundled_model_dir,
    configured_model_dir,
    find_default_manifest,
    load_segmenter,
    model_manifests,
)
from habitus.segment.onnx_segmenter import OnnxSegmenter
from tests.conftest import REPO_ROOT
from tests.segment.onnx_models import write_intensity_model


@pytest.fixture(autouse=True)
def fresh_settings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("HABITUS_MODEL_DIR", raising=False)
    monkeypatch.delenv("HABITUS_MODEL", raising=False)
    get_settings.cache_clear()
    yield
    get_settings.cache_clear()


@pytest.fixture
def no_onnxruntime(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "onnxruntime", None)  # import fails as if not installed


def _rules_available() -> bool:
    try:
        from habitus.segment.rules import RuleSegmenter  # noqa: F401
    except ImportError:
        return False
    return True


needs_rules = pytest.mark.skipif(not _rules_available(), reason="rule-based segmenter absent")


def test_bundled_model_dir_is_inside_the_package() -> None:
    assert bundled_model_dir() == REPO_ROOT / "habitus" / "models"
    assert configured_model_dir() == bundled_model_dir()


def test_model_dir_setting_is_used(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HABITUS_MODEL_DIR", str(tmp_path))
    get_settings.cache_clear()
    assert configured_model_dir() == tmp_path
    write_intensity_model(tmp_path)
    assert find_default_manifest() == tmp_path / "intensity.json"


def test_empty_or_absent_folder_has_no_model(tmp_path: Path) -> None:
    assert find_default_manifest(tmp_path) is None
    assert find_default_manifest(tmp_path / "absent") is None


def test_only_json_with_an_onnx_beside_it_is_a_manifest(tmp_path: Path) -> None:
    write_intensity_model(tmp_path)
    (tmp_path / "notes.json").write_text("{}")
    assert model_manifests(tmp_path) == [tmp_path / "intensity.json"]
    assert find_default_manifest(tmp_path) == tmp_path / "intensity.json"


def test_several_models_need_a_name(tmp_path: Path) -> None:
    write_intensity_model(tmp_path, "alpha")
    write_intensity_model(tmp_path, "beta")
    with pytest.raises(ModelError, match=r"several models \['alpha', 'beta'\]"):
        find_default_manifest(tmp_path)
    assert find_default_manifest(tmp_path, name="beta") == tmp_path / "beta.json"
    with pytest.raises(ModelError, match=r"'gamma' was asked for.*\['alpha', 'beta'\]"):
        find_default_manifest(tmp_path, name="gamma")


def test_model_without_a_model_says_where_it_looked(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=rf"no segmentation model found: .* in {tmp_path}"):
        load_segmenter("model", model_dir=tmp_path)


@pytest.mark.parametrize("kind", ["model", "auto"])
def test_model_present_gives_the_onnx_segmenter(tmp_path: Path, kind: str) -> None:
    write_intensity_model(tmp_path)
    segmenter = load_segmenter(kind, device="cpu", model_dir=tmp_path)  # type: ignore[arg-type]
    assert isinstance(segmenter, OnnxSegmenter)
    assert segmenter.info.kind == "onnx" and segmenter.info.device == "cpu"


def test_broken_model_is_an_error_even_in_auto(tmp_path: Path) -> None:
    write_intensity_model(tmp_path)
    (tmp_path / "intensity.onnx").write_bytes(b"version https://git-lfs.github.com/spec/v1\n")
    with pytest.raises(ModelError, match="SHA-256"):
        load_segmenter("auto", model_dir=tmp_path)


@pytest.mark.usefixtures("no_onnxruntime")
def test_model_without_onnxruntime_is_an_error(tmp_path: Path) -> None:
    write_intensity_model(tmp_path)
    with pytest.raises(ModelError, match="needs onnxruntime, which is not installed"):
        load_segmenter("model", model_dir=tmp_path)


def test_unknown_kind_is_refused() -> None:
    with pytest.raises(ModelError, match="auto, model or rules"):
        load_segmenter("unet")  # type: ignore[arg-type]


@needs_rules
def test_rules_on_request(tmp_path: Path) -> None:
    write_intensity_model(tmp_path)
    assert load_segmenter("rules", model_dir=tmp_path).info.kind == "rules"


@needs_rules
def test_auto_passes_over_a_model_that_is_not_validated(tmp_path: Path) -> None:
    write_intensity_model(tmp_path, validated=False)
    assert load_segmenter("auto", model_dir=tmp_path).info.kind == "rules"
    assert load_segmenter("model", model_dir=tmp_path).info.kind == "onnx"


@needs_rules
def test_auto_without_a_model_gives_the_rules(tmp_path: Path) -> None:
    assert load_segmenter("auto", model_dir=tmp_path).info.kind == "rules"


@needs_rules
@pytest.mark.usefixtures("no_onnxruntime")
def test_auto_without_onnxruntime_gives_the_rules(tmp_path: Path) -> None:
    write_intensity_model(tmp_path)
    assert load_segmenter("auto", model_dir=tmp_path).info.kind == "rules"


def test_modules_import_without_onnxruntime(tmp_path: Path) -> None:
    """The API image has no onnxruntime: importing the engine must not need it."""
    write_intensity_model(tmp_path)
    script = (
        "import sys; sys.modules['onnxruntime'] = None\n"
        "import habitus.segment.loader, habitus.segment.onnx_segmenter as o\n"
        "from habitus.errors import ModelError\n"
        "try:\n"
        f"    o.OnnxSegmenter({str(tmp_path / 'intensity.json')!r})\n"
        "except ModelError as e:\n"
        "    print('refused:', e)\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, cwd=REPO_ROOT, timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert "refused: the ONNX segmenter needs onnxruntime" in result.stdout
