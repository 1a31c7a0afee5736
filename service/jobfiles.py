"""Where a job's files live in the spool, and removing them."""

from __future__ import annotations

import shutil
from pathlib import Path

from habitus.jobs import JobRecord, job_folders


def job_folder(jobs_dir: Path, job_id: str) -> Path:
    return jobs_dir / job_id


def remove_job_files(record: JobRecord) -> None:
    """Remove a job's input and output folders, and their parent if it is named by the job.

    Only folders of the form the service gives them are removed (``job_folders``).
    """
    folders = set(job_folders(record).values())
    for folder in folders:
        shutil.rmtree(folder, ignore_errors=True)
    for parent in {f.parent for f in folders}:
        if parent.name == record.id:
            shutil.rmtree(parent, ignore_errors=True)
