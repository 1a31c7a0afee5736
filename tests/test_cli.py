"""The `habitus` command: a summary for good input, a clear message and exit 2 for bad."""

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from habitus.cli import main
from habitus.config import get_settings
from habitus.errors import InputRefused


def test_demo_then_analyze_prints_a_summary_and_writes_the_outputs(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["demo", str(tmp_path / "study"), "--slices", "24", "--rows", "64"]) == 0
    out = tmp_path / "result"
    code = main(["analyze", str(tmp_path / "study"), "--out", str(out), "--segmenter", "rules"])
    printed = capsys.readouterr().out
    assert code == 0
    assert "Tissue volumes" in printed and "Skeletal muscle" in printed
    assert "habitus-rules" in printed
    assert {p.name for p in out.iterdir()} == {"seg.dcm", "sr.dcm", "report.json", "preview.png"}


def test_refused_input_says_why_without_a_traceback(
    shared_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["analyze", str(shared_data / "dcmqi-ct-3slice" / "ct"), "--out", str(tmp_path)])
    errors = capsys.readouterr().err
    assert code == 2
    assert "3" in errors and "slices" in errors
    assert "Traceback" not in errors
    assert not (tmp_path / "report.json").exists()


@pytest.fixture(scope="module")
def small_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("cli") / "study [demo]"
    assert main(["demo", str(folder), "--slices", "24", "--rows", "64"]) == 0
    return folder


def test_out_naming_a_file_is_refused_before_the_analysis(
    small_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    existing = tmp_path / "report.txt"
    existing.write_text("keep me")
    code = main(["analyze", str(small_study), "--out", str(existing), "--segmenter", "rules"])
    errors = capsys.readouterr().err
    assert code == 2
    assert "is a file; expected a folder" in errors and "Traceback" not in errors
    assert existing.read_text() == "keep me"


def test_paths_and_messages_are_printed_as_given_brackets_included(
    small_study: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing_path = tmp_path / "scans [2024]" / "nothing[1].dcm"
    assert main(["analyze", str(missing_path), "--out", str(tmp_path / "o")]) == 2
    assert str(missing_path.parent) in capsys.readouterr().err
    out = tmp_path / "result [rules]"
    assert main(["analyze", str(small_study), "--out", str(out), "--segmenter", "rules"]) == 0
    printed = capsys.readouterr().out
    assert str(out) in printed  # whole, on one line


def test_device_cuda_with_the_rules_says_where_it_ran(small_study: Path, tmp_path: Path) -> None:
    from habitus.pipeline import AnalysisOptions, analyze

    options = AnalysisOptions(segmenter="rules", device="cuda")
    result = analyze(small_study, tmp_path / "out", options)
    (note,) = [w for w in result.report.warnings if "device cuda" in w]
    assert "rule-based segmenter runs on the CPU" in note


@pytest.fixture
def asked_options(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[Any]]:
    """The options `habitus analyze` passes to the pipeline, which then refuses the input."""
    import habitus.pipeline

    asked: list[Any] = []

    def refuse(source: Any, out: Path, options: Any, **_: Any) -> None:
        asked.append(options)
        raise InputRefused("stopped by the test")

    monkeypatch.setattr(habitus.pipeline, "analyze", refuse)
    yield asked
    get_settings.cache_clear()  # the next reader sees the environment as restored


@pytest.mark.parametrize(
    ("environment", "flags", "expected"),
    [
        ({}, [], ("auto", "auto")),
        ({"HABITUS_SEGMENTER": "rules", "HABITUS_DEVICE": "cpu"}, [], ("rules", "cpu")),
        (
            {"HABITUS_SEGMENTER": "rules", "HABITUS_DEVICE": "cpu"},
            ["--segmenter", "model", "--device", "cuda"],
            ("model", "cuda"),
        ),
    ],
)
def test_analyze_takes_segmenter_and_device_from_the_settings_unless_told(
    asked_options: list[Any],
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
    environment: dict[str, str],
    flags: list[str],
    expected: tuple[str, str],
) -> None:
    monkeypatch.delenv("HABITUS_SEGMENTER", raising=False)
    monkeypatch.delenv("HABITUS_DEVICE", raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    assert main(["analyze", str(tmp_path), "--out", str(tmp_path / "out"), *flags]) == 2
    (options,) = asked_options
    assert (options.segmenter, options.device) == expected


def test_serve_help_shows_where_the_settings_are(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as done:
        main(["serve", "--help"])
    assert done.value.code == 0
    shown = capsys.readouterr().out
    assert "HABITUS_" in shown and "README.md" in shown
