"""Training: phantoms (and optionally a folder of labelled scans), resumable checkpoints."""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch.nn import functional as F  # noqa: N812  (the usual name)

from habitus.labels import NUM_LABELS
from model_export.acquisition import Reacquisition
from model_export.dataset import Augmentation
from model_export.device import autocast, resolve_device, resolve_precision
from model_export.meter import ThroughputMeter
from model_export.network import NetworkConfig, UNet3D, patch_multiple
from model_export.stream import TRAINING_SEED_BASE, PatchStream, StreamSpec, batches, seeds_seen
from model_export.training_pairs import IGNORE, LabelledVolume, read_labelled_folder

logger = logging.getLogger(__name__)

__all__ = ["TRAINING_SEED_BASE", "Runtime", "TrainConfig", "train"]


@dataclass(frozen=True)
class TrainConfig:
    spacing_mm: tuple[float, float, float] = (4.0, 4.0, 4.0)
    patch_size: tuple[int, int, int] = (24, 64, 64)
    batch_size: int = 2
    steps: int = 1000
    learning_rate: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 30
    dice_weight: float = 0.5  # loss = cross-entropy + dice_weight * soft Dice loss
    phantoms: int = 32  # phantoms held in memory at once, over all lanes
    refresh_every: int = 10  # steps between fresh phantoms (see model_export.stream)
    lanes: int = 8  # phantom pools that steps take turns on (model_export.stream)
    folder_share: float = 0.5  # share of patches from the labelled folder, when one is given
    reacquire_cases: bool = True  # draw the folder's cases at random acquisitions (stream.py)
    checkpoint_every: int = 50
    seed: int = 0
    threads: int = 2
    network: NetworkConfig = field(default_factory=NetworkConfig)
    hu_clip: tuple[float, float] = (-1024.0, 1500.0)
    hu_mean: float = 0.0
    hu_std: float = 250.0
    class_weights: tuple[float, ...] | None = None  # cross-entropy weight of each label
    schedule_start: int = 0  # step where warm-up and cosine decay begin (for fine-tuning)

    def __post_init__(self) -> None:
        multiple = patch_multiple()
        if any(p % m for p, m in zip(self.patch_size, multiple, strict=True)):
            raise ValueError(
                f"patch_size must be a multiple of {multiple} per axis, found {self.patch_size}"
            )
        if self.lanes < 1:
            raise ValueError(f"lanes must be at least 1, found {self.lanes}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        values = dict(data)
        values["network"] = NetworkConfig(**values.get("network", {}))
        for key in ("spacing_mm", "patch_size", "hu_clip", "class_weights"):
            if values.get(key) is not None:
                values[key] = tuple(values[key])
        return cls(**values)


def loss_fn(
    logits: torch.Tensor,
    target: torch.Tensor,
    dice_weight: float,
    class_weights: torch.Tensor | None = None,
) -> torch.Tensor:
    """Cross-entropy plus soft Dice over the classes, both ignoring IGNORE voxels."""
    ce = F.cross_entropy(logits, target, weight=class_weights, ignore_index=IGNORE)
    if dice_weight <= 0:
        return ce
    valid = (target != IGNORE).unsqueeze(1)
    probs = torch.softmax(logits, dim=1) * valid
    onehot = F.one_hot(torch.where(target == IGNORE, 0, target), NUM_LABELS)
    onehot = onehot.permute(0, 4, 1, 2, 3).to(probs.dtype) * valid
    dims = (0, 2, 3, 4)
    inter = (probs * onehot).sum(dims)
    denom = probs.sum(dims) + onehot.sum(dims)
    present = onehot.sum(dims) > 0
    dice = (2 * inter + 1.0) / (denom + 1.0)
    dice_loss = 1.0 - dice[present].mean() if bool(present.any()) else logits.sum() * 0.0
    return ce + dice_weight * dice_loss


def learning_rate(step: int, config: TrainConfig) -> float:
    """Linear warm-up, then cosine decay to 2% of the peak, from ``schedule_start``."""
    step -= config.schedule_start
    if step < config.warmup_steps:
        return config.learning_rate * (max(step, 0) + 1) / config.warmup_steps
    span = config.steps - config.schedule_start - config.warmup_steps
    progress = (step - config.warmup_steps) / max(1, span)
    return config.learning_rate * (
        0.02 + 0.98 * 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))
    )


def _to_cpu(value: Any) -> Any:
    """Tensors (at any depth of dicts, lists and tuples) moved to the CPU."""
    if isinstance(value, torch.Tensor):
        return value.detach().to("cpu")
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def save_checkpoint(
    path: Path,
    model: UNet3D,
    optimizer: torch.optim.Optimizer,
    step: int,
    config: TrainConfig,
    init_from: dict[str, Any] | None = None,
) -> None:
    """Write atomically, so that an interrupted save leaves the previous checkpoint intact.

    Tensors are stored on the CPU, so a run trained on a GPU resumes on a CPU and back.
    ``init_from``: the exported model the run started from (model_export.warm_start).
    """
    tmp = path.with_suffix(".tmp")
    data: dict[str, Any] = {
        "model": _to_cpu(model.state_dict()),
        "optimizer": _to_cpu(optimizer.state_dict()),
        "step": step,
        "config": config.to_dict(),
    }
    if init_from is not None:
        data["init_from"] = init_from
    torch.save(data, tmp)
    os.replace(tmp, path)


def load_checkpoint(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = torch.load(path, map_location="cpu", weights_only=False)
    return data


def model_from_checkpoint(path: Path) -> tuple[UNet3D, TrainConfig, int]:
    data = load_checkpoint(path)
    config = TrainConfig.from_dict(data["config"])
    model = UNet3D(config.network)
    model.load_state_dict(data["model"])
    model.eval()
    return model, config, int(data["step"])


@dataclass
class TrainResult:
    checkpoint: Path
    steps: int
    final_loss: float
    seconds: float
    phantom_seeds: list[int]
    folder_cases: list[str]
    device: str = "cpu"
    precision: str = "fp32"
    workers: int = 0
    init_from: dict[str, Any] | None = None  # the exported model the run started from


@dataclass(frozen=True)
class Runtime:
    """Where and how a run executes; not part of the recipe (a run resumes anywhere)."""

    device: str = "auto"  # auto | cpu | cuda
    precision: str = "auto"  # auto | fp32 | bf16 (bf16 autocast on CUDA only)
    workers: int | None = None  # patch-generating processes; None: default_workers()
    log_every: int = 50  # steps between throughput lines


def default_workers(device: torch.device, lanes: int, cpus: int | None = None) -> int:
    """Patch workers when ``--workers`` is not given.

    CPU: one worker when there is a second core (on 2 shared cores it removed the ~24 % of
    the time spent waiting for phantoms and was not slower; see the model card). GPU: the
    largest divisor of ``lanes`` that leaves a core for the training process.
    """
    cores = cpus or os.cpu_count() or 1
    if device.type != "cuda":
        return 1 if cores >= 2 else 0
    spare = max(1, cores - 1)
    return max(d for d in range(1, lanes + 1) if lanes % d == 0 and d <= spare)


def stream_spec(config: TrainConfig, phantoms: bool) -> StreamSpec:
    """The recipe's part that the batches depend on: each field of StreamSpec is the
    TrainConfig field of the same name (``phantoms``: none with ``phantoms=False``)."""
    values = {f.name: getattr(config, f.name) for f in dataclasses.fields(StreamSpec)}
    return StreamSpec(**{**values, "phantoms": config.phantoms if phantoms else 0})


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    folder: Path | None = None,
    resume: bool = True,
    phantoms: bool = True,
    runtime: Runtime | None = None,
    init_from: Path | None = None,
) -> TrainResult:
    """Train (or resume) a model into ``out_dir``; returns where the checkpoint is.

    ``folder`` holds labelled cases (see :func:`model_export.training_pairs.read_labelled_folder`);
    with ``phantoms=False`` only those are used, which is how a site fine-tunes on its own
    annotations. ``init_from`` (an exported model's manifest or ONNX file) starts a new run
    from that model's weights at step ``schedule_start`` with a fresh optimizer; a run that
    resumes from its own checkpoint ignores it.
    """
    runtime = runtime or Runtime()
    device = resolve_device(runtime.device)
    precision = resolve_precision(runtime.precision, device)
    workers = (
        runtime.workers if runtime.workers is not None else default_workers(device, config.lanes)
    )
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    ckpt_path = out_dir / "checkpoint.pt"
    model = UNet3D(config.network)
    optimizer_state = None
    step = 0
    init_source: dict[str, Any] | None = None
    if resume and ckpt_path.is_file():
        data = load_checkpoint(ckpt_path)
        model.load_state_dict(data["model"])
        optimizer_state = data["optimizer"]
        step = int(data["step"])
        init_source = data.get("init_from")
        logger.info("resumed from %s at step %d", ckpt_path, step)
        if init_from is not None:
            logger.info("--init-from %s ignored: the run resumes from its checkpoint", init_from)
    elif init_from is not None:
        init_source = _warm_start(model, init_from, config)
        step = config.schedule_start

    cases: list[LabelledVolume] = []
    if folder is not None:
        cases = read_labelled_folder(folder)
    spec = stream_spec(config, phantoms)
    reacquisition = Reacquisition() if config.reacquire_cases else None
    stream = PatchStream(spec, step, config.steps, cases, Augmentation(), reacquisition)
    # Workers are forked before the network touches the GPU.
    produced = batches(stream, workers, pin_memory=device.type == "cuda")
    logger.info(
        "training on %s (%s), %d patch worker(s), steps %d to %d",
        device,
        precision,
        workers,
        step,
        config.steps,
    )

    model = model.to(device=device, memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    if optimizer_state is not None:
        optimizer.load_state_dict(optimizer_state)  # moves the state to the parameters' device
    weights = (
        torch.tensor(config.class_weights, dtype=torch.float32, device=device)
        if config.class_weights is not None
        else None
    )
    log_path = out_dir / "train_log.jsonl"
    start = time.perf_counter()
    meter = ThroughputMeter(config.batch_size)
    loss_value = float("nan")
    first_step = step
    model.train()
    while step < config.steps:
        waiting = time.perf_counter()
        drawn, x, y = next(produced)
        wait = time.perf_counter() - waiting
        meter.waited(wait)
        assert drawn == step, f"batch of step {drawn} arrived at step {step}"
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        x = x.to(device, non_blocking=True).contiguous(memory_format=torch.channels_last_3d)
        target = y.to(device, non_blocking=True).long()
        with autocast(device, precision):
            logits = model(x)
        loss = loss_fn(logits.float(), target, config.dice_weight, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        loss_value = float(loss.detach())
        meter.stepped()
        with log_path.open("a", encoding="utf-8") as log:
            log.write(
                json.dumps(
                    {
                        "step": step,
                        "loss": round(loss_value, 5),
                        "lr": round(learning_rate(step - 1, config), 6),
                        "seconds": round(time.perf_counter() - start, 1),
                        "data_wait_s": round(wait, 3),
                    }
                )
                + "\n"
            )
        if step % max(runtime.log_every, 1) == 0 or step == config.steps:
            logger.info(meter.report().line(step))
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(ckpt_path, model, optimizer, step, config, init_source)
    save_checkpoint(ckpt_path, model, optimizer, step, config, init_source)
    return TrainResult(
        checkpoint=ckpt_path,
        steps=step,
        final_loss=loss_value,
        seconds=time.perf_counter() - start,
        phantom_seeds=seeds_seen(spec, first_step, step),
        folder_cases=[v.name for v in cases],
        device=str(device),
        precision=precision,
        workers=workers,
        init_from=init_source,
    )


def _warm_start(model: UNet3D, path: Path, config: TrainConfig) -> dict[str, Any]:
    """Load an exported model's weights into ``model``; returns their source."""
    from model_export.warm_start import check_matches, input_differences, load_warm_start

    warm = load_warm_start(path)
    check_matches(warm, config.network)
    model.load_state_dict(warm.model.state_dict())
    differences = input_differences(
        warm.manifest, config.spacing_mm, config.hu_clip, config.hu_mean, config.hu_std
    )
    if differences:
        logger.warning("--init-from model was trained on other inputs: %s", "; ".join(differences))
    logger.info(
        "initialised from %s %s (sha256 %s), step %d, fresh optimizer",
        warm.source["model_id"],
        warm.source["version"],
        warm.source["sha256"],
        config.schedule_start,
    )
    return warm.source
