"""Removing a job's files takes only the folders the service gives a job, never others."""

from __future__ import annotations

from pathlib import Path

from habitus.jobs import JobRecord, Origin, OriginKind, job_folders
from service.jobfiles import job_folder, remove_job_files


def _record(input_dir: str, output_dir: str) -> JobRecord:
    origin = Origin(kind=OriginKind.REST)
    return JobRecord(input_dir=input_dir, output_dir=output_dir, origin=origin)


def test_a_job_s_own_folders_are_removed(tmp_path: Path) -> None:
    record = _record("", "")
    folder = job_folder(tmp_path / "jobs", record.id)
    for name in ("input", "output"):
        (folder / name).mkdir(parents=True)
        (folder / name / "file.dcm").write_bytes(b"x")
    record = record.model_copy(
        update={"input_dir": str(folder / "input"), "output_dir": str(folder / "output")}
    )
    remove_job_files(record)
    assert not folder.exists()
    assert (tmp_path / "jobs").is_dir()


def test_a_forged_record_cannot_name_other_folders(tmp_path: Path) -> None:
    precious = tmp_path / "precious"
    (precious / "input").mkdir(parents=True)
    (precious / "keep.txt").write_text("keep")
    other = tmp_path / "data"
    other.mkdir()
    (other / "keep.txt").write_text("keep")
    forged = _record(str(tmp_path), str(other))  # names that are not input/ and output/
    assert job_folders(forged) == {}
    remove_job_files(forged)
    sneaky = _record(str(precious / "input" / ".." / ".." / "input"), "relative/output")
    assert job_folders(sneaky) == {}
    remove_job_files(sneaky)
    assert (precious / "keep.txt").is_file()
    assert (other / "keep.txt").is_file()
    # A folder named input/ elsewhere may go, but never its parent unless named by the job.
    remove_job_files(_record(str(precious / "input"), ""))
    assert (precious / "keep.txt").is_file()
