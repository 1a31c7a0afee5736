"""The worker of `habitus serve`: started, watched, and started again when it stops.

A worker that stops is logged with its exit status or signal and started again after a pause
that doubles with each stop in a row (1, 2, 4 ... 30 s) and falls back to 1 s once a worker
has run ``STABLE_S``. What is left of a stopped worker (pool processes that outlive it, one of
them perhaps holding a job) is killed, so the job's lease lapses and the job is sent again
(``worker.orphans``). A worker that stops within ``START_S`` of starting ``START_RETRIES``
times in a row cannot start (a failing import, a bad setting): the supervisor gives up and
says why, and `habitus serve` exits with that reason.

The worker runs as ``python -P -m worker``: the folder `habitus serve` was started from is
not put on its import path, so a folder there named like one of the packages (the clone's
``habitus/`` beside it) cannot shadow the installed package.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

log = logging.getLogger("service.serve")

WORKER_COMMAND = (sys.executable, "-P", "-m", "worker")
FIRST_DELAY_S = 1.0
MAX_DELAY_S = 30.0
STABLE_S = 60.0  # a worker that ran this long resets the pause before the next start
START_S = 10.0  # a worker that stops sooner did not start
START_RETRIES = 4
POLL_S = 0.2


class WorkerSupervisor:
    """Keeps one worker process running from a daemon thread until ``stop``."""

    def __init__(
        self,
        env: Mapping[str, str],
        on_give_up: Callable[[str], None],
        grace_s: float,
        command: tuple[str, ...] = WORKER_COMMAND,
        on_death: Callable[[int], None] = lambda pid: None,
    ) -> None:
        # PYTHONSAFEPATH: the worker's own Python children are not shadowed either
        self.env = {**env, "PYTHONSAFEPATH": "1"}
        self.on_give_up, self.grace_s, self.command = on_give_up, grace_s, command
        self.on_death = on_death  # told the pid of each worker that stopped on its own
        self.failure: str | None = None  # why it gave up
        self._process: subprocess.Popen[bytes] | None = None
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="habitus-worker", daemon=True)

    def start(self) -> WorkerSupervisor:
        self._thread.start()
        return self

    @property
    def pid(self) -> int | None:
        """The current worker's process id while it runs."""
        process = self._process
        return process.pid if process is not None and process.poll() is None else None

    def stop(self) -> None:
        """Stop watching, then stop the worker (a warm shutdown first)."""
        self._stopping.set()
        self._thread.join()
        if self._process is not None and self._process.poll() is None:
            stop_process(self._process, self.grace_s)

    def _run(self) -> None:
        try:
            self._supervise()
        except Exception as exc:  # a supervisor that ended silently would leave no worker
            self._give_up(f"the worker cannot be started: {type(exc).__name__}: {exc}")

    def _give_up(self, reason: str) -> None:
        self.failure = reason
        log.error("%s", reason)
        self.on_give_up(reason)

    def _supervise(self) -> None:
        delay, quick_stops = FIRST_DELAY_S, 0
        while not self._stopping.is_set():
            started = time.monotonic()
            # its own session: Ctrl-C in the terminal reaches `habitus serve` only
            process = subprocess.Popen(self.command, env=self.env, start_new_session=True)
            self._process = process
            log.info("worker started (pid %d)", process.pid)
            while process.poll() is None:
                if self._stopping.wait(POLL_S):
                    return  # stop() ends it
            _kill_group(process.pid)
            self.on_death(process.pid)
            ran_s = time.monotonic() - started
            reason = exit_reason(process.returncode)
            quick_stops = quick_stops + 1 if ran_s < START_S else 0
            if quick_stops >= START_RETRIES:
                self._give_up(
                    f"the worker cannot start: it stopped {quick_stops} times in a row within "
                    f"{START_S:.0f} s of starting (last: {reason}); its log above says why"
                )
                return
            if ran_s >= STABLE_S:
                delay = FIRST_DELAY_S
            log.warning(
                "worker (pid %d) %s after %.0f s; starting another in %.0f s",
                process.pid,
                reason,
                ran_s,
                delay,
            )
            if self._stopping.wait(delay):
                return
            delay = min(delay * 2, MAX_DELAY_S)


def exit_reason(returncode: int) -> str:
    """'exited with status 1' or 'was killed by SIGKILL'."""
    if returncode >= 0:
        return f"exited with status {returncode}"
    try:
        name = signal.Signals(-returncode).name
    except ValueError:
        name = f"signal {-returncode}"
    return f"was killed by {name}"


def _kill_group(pgid: int) -> None:
    """Kill the pool processes a dead worker left in its process group."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pgid, signal.SIGKILL)


def stop_process(process: subprocess.Popen[Any], grace_s: float) -> None:
    """SIGTERM (a Celery warm shutdown), then SIGQUIT (cold), then SIGKILL to its group."""
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGQUIT, 5.0)):
        if process.poll() is not None:
            break
        process.send_signal(sig)
        try:
            process.wait(timeout=wait_s)
        except subprocess.TimeoutExpired:
            continue
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
    log.info("worker stopped (exit status %s)", process.returncode)
