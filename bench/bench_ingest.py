"""C-STORE ingest: the Habitus listener beside dcmtk's storescp, same machine, same data.

    python bench/bench_ingest.py [--instances 200] [--size 512] [--associations 1 2 4] [--repeat 5]

Writes ``--instances`` synthetic CT slices (explicit VR little endian, ``--size`` squared,
16-bit: 512 x 512 is 0.5 MB each) and sends them with dcmtk's storescu, over one association
and over several at once (the instances split between parallel storescu processes), to:

- dcmtk's storescp (``--fork`` for several associations), writing each file to disk without
  syncing it;
- the Habitus listener, in this process, as the product runs it: each instance written,
  fdatasync'ed and renamed, its directory fsync'ed, before the answer (an instance
  acknowledged survives a crash), with pynetdicom tuned by ``service.listener.fastpath``;
  then the same with fsync off, and with fsync on but stock pynetdicom (fast path off), to
  show what the disk and what the tuning account for. Its quiet period is set long so no
  study is submitted during the measurement: the figures are the SCP's own work;
- a bare stock pynetdicom SCP whose handler answers success and keeps nothing.

The receivers take turns within each repeat, so a machine shared with other work slows
them alike; prints instances/s and MB/s (median of ``--repeat`` runs) and the ratio to
storescp. Senders set TCP_NODELAY=1 (dcmtk) so small command messages are not held back by
Nagle's algorithm.

Measured on the 2-core shared development machine (no GPU): see the ingest row of the
README's performance table. The figures vary from run to run by a quarter or more (storescp's
own rate, 550 to 1,500 inst/s, most of all), hence the median of several runs, taken in turns.

Where the time goes, with fsync: the synced write and the synced rename are about 1 to 2 ms
an instance on this ext4 disk, mostly the file system's journal commits (an overwrite of
already-written blocks syncs in 0.35 ms; a new file's blocks and name need commits). A
write-ahead journal of acknowledged instances (overwrites, synced; the files synced later
in bulk) measured slower, 372 - 395 against 449 - 502 inst/s, since the files must still
reach the disk and the disk then writes each byte twice.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pynetdicom

from habitus.phantoms.torso import synthetic_torso
from habitus.phantoms.write_dicom import axial_geometry, write_series
from habitus.settings import ListenerSettings
from service.listener import Listener, fastpath

STORESCU = "/usr/bin/storescu"
STORESCP = "/usr/bin/storescp"


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def make_instances(folder: Path, count: int, size: int) -> list[Path]:
    shape, spacing = (count, size, size), (1.0, 400.0 / size, 400.0 / size)
    hu, _ = synthetic_torso(shape, spacing)
    return write_series(folder, hu, axial_geometry(shape, spacing))


def send(port: int, files: list[Path], associations: int) -> float:
    """Seconds for ``associations`` parallel storescu processes to send ``files`` between them."""
    env = {**os.environ, "TCP_NODELAY": "1"}
    parts = [files[i::associations] for i in range(associations)]
    start = time.perf_counter()
    senders = [
        subprocess.Popen(
            [STORESCU, "-aet", "BENCH", "-aec", "HABITUS", "127.0.0.1", str(port), *map(str, part)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        for part in parts
    ]
    for sender in senders:
        _, err = sender.communicate()
        if sender.returncode != 0:
            raise RuntimeError(f"storescu failed: {err.decode()[-500:]}")
    return time.perf_counter() - start


def with_storescp(files: list[Path], associations: int, work: Path) -> float:
    out = work / "storescp"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    port = free_port()
    args = [STORESCP, "-od", str(out), *(["--fork"] if associations > 1 else []), str(port)]
    scp = subprocess.Popen(args, env={**os.environ, "TCP_NODELAY": "1"})
    try:
        time.sleep(0.5)
        seconds = send(port, files, associations)
    finally:
        scp.terminate()
        scp.wait()
    stored = len(list(out.iterdir()))
    if stored != len(files):
        raise RuntimeError(f"storescp stored {stored} of {len(files)} instances")
    return seconds


def with_listener(
    files: list[Path], associations: int, work: Path, fsync: bool, tuned: bool = True
) -> float:
    spool = work / "spool"
    shutil.rmtree(spool, ignore_errors=True)
    settings = ListenerSettings(
        host="127.0.0.1",
        port=0,
        spool_dir=spool,
        allowed_ae_titles=["BENCH"],
        quiet_period_s=3600,
        max_associations=max(associations, 4),
    )
    active = fastpath.ACTIVE
    fastpath.ACTIVE = active and tuned  # off: as on a pynetdicom version it is not written for
    listener = Listener(settings, lambda study, origin: [], fsync=fsync).start()
    try:
        seconds = send(listener.port, files, associations)
    finally:
        listener.stop()
        fastpath.ACTIVE = active
    stored = len(list((spool / "received").rglob("*.dcm")))
    if stored != len(files):
        raise RuntimeError(f"the listener stored {stored} of {len(files)} instances")
    return seconds


def with_bare_pynetdicom(files: list[Path], associations: int, work: Path) -> float:
    from pynetdicom import AE, evt

    from service.listener.scp import presentation_contexts

    ae = AE("HABITUS")
    ae.supported_contexts = presentation_contexts()
    ae.maximum_associations = max(associations, 4)
    ae.maximum_pdu_size = 0  # as the listener: the sender picks its largest PDU
    port = free_port()
    server = ae.start_server(
        ("127.0.0.1", port), block=False, evt_handlers=[(evt.EVT_C_STORE, lambda event: 0)]
    )
    try:
        return send(port, files, associations)
    finally:
        server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--instances", type=int, default=200)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--associations", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="habitus-bench-ingest-") as tmp:
        work = Path(tmp)
        files = make_instances(work / "data", args.instances, args.size)
        megabytes = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"{len(files)} instances, {args.size}x{args.size}, {megabytes:.1f} MB; "
            f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f}; "
            f"pynetdicom {pynetdicom.__version__}, fast path "
            f"{'on' if fastpath.ACTIVE else 'off (another version)'}"
        )
        print(f"{'receiver':<30}{'assoc.':>7}{'inst/s':>10}{'MB/s':>9}{'vs storescp':>13}")
        for associations in args.associations:
            receivers: dict[str, Callable[[], float]] = {
                "dcmtk storescp": lambda a=associations: with_storescp(files, a, work),
                "habitus listener fsync=on": (
                    lambda a=associations: with_listener(files, a, work, fsync=True)
                ),
                "habitus listener fsync=off": (
                    lambda a=associations: with_listener(files, a, work, fsync=False)
                ),
                "habitus, stock pynetdicom": (
                    lambda a=associations: with_listener(files, a, work, fsync=True, tuned=False)
                ),
                "bare stock pynetdicom": (
                    lambda a=associations: with_bare_pynetdicom(files, a, work)
                ),
            }
            times: dict[str, list[float]] = {name: [] for name in receivers}
            for _ in range(args.repeat):
                for name, run in receivers.items():
                    times[name].append(run())
            baseline = statistics.median(times["dcmtk storescp"])
            for name, runs in times.items():
                seconds = statistics.median(runs)
                print(
                    f"{name:<30}{associations:>7}{len(files) / seconds:>10.1f}"
                    f"{megabytes / seconds:>9.1f}{baseline / seconds:>12.0%}"
                )


if __name__ == "__main__":
    main()
