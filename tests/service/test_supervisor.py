"""The worker supervisor of `habitus serve` with stand-in worker commands (real processes)."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from service.supervisor import START_RETRIES, WorkerSupervisor
from tests.service.test_serve import alive, wait_for

SLEEPER = (sys.executable, "-c", "import time; time.sleep(120)")


def supervise(command: tuple[str, ...], gave_up: list[str]) -> WorkerSupervisor:
    return WorkerSupervisor(dict(os.environ), gave_up.append, grace_s=5, command=command).start()


def test_a_killed_worker_is_started_again_and_the_kill_logged(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "service.serve")
    gave_up: list[str] = []
    supervisor = supervise(SLEEPER, gave_up)
    try:
        first = wait_for(lambda: supervisor.pid or 0, 10, "the first worker")
        os.kill(first, signal.SIGKILL)
        second = wait_for(
            lambda: supervisor.pid not in (None, first) and supervisor.pid, 10, "a new worker"
        )
    finally:
        supervisor.stop()
    assert not alive(second) and not gave_up
    assert f"worker (pid {first}) was killed by SIGKILL" in caplog.text
    assert "worker stopped" in caplog.text


def test_the_pool_a_dead_worker_leaves_behind_is_killed(tmp_path: Path) -> None:
    pool_pid = tmp_path / "pool.pid"
    leader = (
        sys.executable,
        "-c",
        "import subprocess, sys, time; "
        f"p = subprocess.Popen({list(SLEEPER)!r}); "
        f"open({str(pool_pid)!r}, 'w').write(str(p.pid)); time.sleep(120)",
    )
    gave_up: list[str] = []
    supervisor = supervise(leader, gave_up)
    try:
        first = wait_for(lambda: supervisor.pid or 0, 10, "the worker")
        pool = int(wait_for(lambda: pool_pid.exists() and pool_pid.read_text(), 10, "its pool"))
        os.kill(first, signal.SIGKILL)  # as the OOM killer would: its pool process stays
        wait_for(lambda: not alive(pool), 10, "the pool process to be killed")
    finally:
        supervisor.stop()
    assert not gave_up


def test_a_worker_that_cannot_start_is_given_up_with_the_reason(
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.INFO, "service.serve")
    failing = (sys.executable, "-c", "import sys; sys.exit(3)")
    done = threading.Event()
    gave_up: list[str] = []

    def give_up(reason: str) -> None:
        gave_up.append(reason)
        done.set()

    supervisor = WorkerSupervisor(dict(os.environ), give_up, grace_s=5, command=failing).start()
    try:
        assert done.wait(60), "the supervisor never gave up"
    finally:
        supervisor.stop()
    assert gave_up == [supervisor.failure]
    assert f"stopped {START_RETRIES} times in a row" in gave_up[0]
    assert "exited with status 3" in gave_up[0]
    # the pause doubles between attempts
    pauses = [
        r.getMessage().rsplit(" in ", 1)[1]
        for r in caplog.records
        if "starting another" in r.getMessage()
    ]
    assert pauses == ["1 s", "2 s", "4 s"][: START_RETRIES - 1]


def test_a_worker_command_that_cannot_run_is_given_up_at_once(tmp_path: Path) -> None:
    gave_up: list[str] = []
    supervisor = supervise((str(tmp_path / "no-such-python"), "-m", "worker"), gave_up)
    wait_for(lambda: gave_up, 10, "the supervisor to give up")
    supervisor.stop()
    assert gave_up[0].startswith("the worker cannot be started: FileNotFoundError")
