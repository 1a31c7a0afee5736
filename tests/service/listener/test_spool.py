"""The spool's durability: an instance and its name are synced before it is acknowledged,
unless HABITUS_LISTENER_FSYNC turns that off."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from habitus.settings import ListenerSettings
from service.listener import Listener
from service.listener.spool import SeriesKey, Spool

KEY = SeriesKey("1.2.3", "1.2.3.4")


class SyncSpy:
    """Records which descriptors were synced (the calls still reach the system)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.data: list[str] = []
        self.full: list[str] = []
        real_fdatasync, real_fsync = os.fdatasync, os.fsync

        def fdatasync(fd: int) -> None:
            self.data.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fdatasync(fd)

        def fsync(fd: int) -> None:
            self.full.append(os.readlink(f"/proc/self/fd/{fd}"))
            real_fsync(fd)

        monkeypatch.setattr(os, "fdatasync", fdatasync)
        monkeypatch.setattr(os, "fsync", fsync)


def store(spool: Spool) -> Path:
    tmp = spool.write_temp([b"instance bytes"])
    final = spool.commit(tmp, KEY, "1.2.3.4.5")
    spool.sync_names(final)
    return final


def test_with_fsync_the_data_and_every_new_directory_are_synced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    spy = SyncSpy(monkeypatch)
    spool = Spool(tmp_path, fsync=True)
    final = store(spool)
    assert final.read_bytes() == b"instance bytes"
    assert len(spy.data) == 1 and spy.data[0].startswith(str(spool.tmp_dir))
    # the series directory holding the name, and the two directories created for it
    assert set(spy.full) == {str(final.parent), str(final.parent.parent), str(spool.received_dir)}


def test_without_fsync_nothing_is_synced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spy = SyncSpy(monkeypatch)
    final = store(Spool(tmp_path, fsync=False))
    assert final.read_bytes() == b"instance bytes"
    assert spy.data == [] and spy.full == []


def test_the_setting_reaches_the_listener_spool(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert ListenerSettings().fsync is True
    monkeypatch.setenv("HABITUS_LISTENER_FSYNC", "false")
    settings = ListenerSettings(spool_dir=tmp_path)
    assert settings.fsync is False
    assert Listener(settings, lambda study, origin: []).spool.fsync is False
    assert Listener(settings, lambda study, origin: [], fsync=True).spool.fsync is True
