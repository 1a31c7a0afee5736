"""Where a job's files live in the spool, and removing them."""

from __future__ import annotations

import shutil
from pathlib import Path

from habitus.jobs import JobRecord


def job_folder(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / job_id


def remove_job_files(record: JobRecord) -> None:
    """Remove a job's input and output folders, and their common parent if it is empty."""
    folders = {Path(record.input_dir), Path(record.output_dir)}
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    for parent in {f.parent for f in folders}:
        if parent.name == record.id:
            shutil.rmtree(parent, ignore_errors=True)
