"""The `habitus` command: a summary for good input, a clear message and exit 2 for bad."""

from pathlib import Path

import pytest

from habitus.cli import main


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
