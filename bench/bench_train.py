"""Training throughput: steps/s and the share of time spent waiting for patches.

    python bench/bench_train.py [--preset cpu|gpu] [--steps 120] [--workers 0 1 2]
                                [--device auto|cpu|cuda] [--threads 2] [--phantoms N]

Trains each worker count for ``--steps`` steps from scratch in a temporary folder and reads
the run's own log (train_log.jsonl); the first quarter of the steps (phantoms being drawn
for the first time, lazy initialisation) is left out of the figures. Presets:

- ``cpu``: the bundled CPU model's recipe (width 8, 4 mm grid, 16 x 48 x 48 patches, batch 2);
- ``gpu``: the full-resolution configuration of the model card's GPU recipe (width 16, 2 mm
  grid, 32 x 96 x 96 patches, batch 4, 8 lanes).

A data-wait share well above a few per cent means the device is not fed: more workers.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import statistics
import tempfile
import time
from pathlib import Path

from model_export.network import NetworkConfig
from model_export.train import Runtime, TrainConfig, train

PRESETS = {
    "cpu": TrainConfig(
        spacing_mm=(4.0, 4.0, 4.0),
        patch_size=(16, 48, 48),
        batch_size=2,
        phantoms=16,
        network=NetworkConfig(width=8),
    ),
    "gpu": TrainConfig(
        spacing_mm=(2.0, 2.0, 2.0),
        patch_size=(32, 96, 96),
        batch_size=4,
        phantoms=64,
        lanes=8,
        network=NetworkConfig(width=16),
    ),
}


def measure(config: TrainConfig, runtime: Runtime) -> tuple[float, float, float]:
    """(steps/s, data-wait share, wall seconds) of one run, after its first quarter."""
    with tempfile.TemporaryDirectory(prefix="habitus-bench-train-") as tmp:
        start = time.perf_counter()
        train(config, Path(tmp), resume=False, runtime=runtime)
        wall = time.perf_counter() - start
        rows = [json.loads(line) for line in (Path(tmp) / "train_log.jsonl").open()]
    skip = max(1, len(rows) // 4)
    first, last = rows[skip - 1], rows[-1]
    seconds = last["seconds"] - first["seconds"]
    steps = last["step"] - first["step"]
    waited = sum(r["data_wait_s"] for r in rows[skip:])
    return steps / seconds, waited / seconds, wall


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", choices=sorted(PRESETS), default="cpu")
    parser.add_argument("--steps", type=int, default=120)
    parser.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--device", choices=["auto", "cpu", "cuda"], default="auto")
    parser.add_argument("--threads", type=int, default=2, help="torch threads of the trainer")
    parser.add_argument("--phantoms", type=int, help="phantoms held in memory (preset's if unset)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    base = PRESETS[args.preset]
    config = TrainConfig.from_dict(
        {
            **base.to_dict(),
            "steps": args.steps,
            "threads": args.threads,
            "phantoms": args.phantoms or base.phantoms,
            "checkpoint_every": 10**9,
        }
    )
    load = os.getloadavg()[0]
    print(
        f"{os.cpu_count()} CPU(s), load {load:.1f}; preset {args.preset}: width "
        f"{config.network.width}, grid {config.spacing_mm} mm, patch {config.patch_size}, "
        f"batch {config.batch_size}, {args.steps} steps, device {args.device}"
    )
    print(f"{'workers':>8} {'steps/s':>9} {'patches/s':>10} {'data wait':>10} {'wall s':>8}")
    rates = []
    for workers in args.workers:
        runtime = Runtime(device=args.device, workers=workers, log_every=10**9)
        rate, wait, wall = measure(config, runtime)
        rates.append(rate)
        print(
            f"{workers:>8} {rate:>9.2f} {rate * config.batch_size:>10.1f} "
            f"{100 * wait:>9.0f}% {wall:>8.1f}"
        )
    print(f"median steps/s over the worker counts: {statistics.median(rates):.2f}")


if __name__ == "__main__":
    main()
