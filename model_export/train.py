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

import numpy as np
import torch
from torch.nn import functional as F  # noqa: N812  (the usual name)

from habitus.labels import NUM_LABELS
from model_export.dataset import Augmentation, PatchSampler, training_phantom
from model_export.network import NetworkConfig, UNet3D, patch_multiple
from model_export.volumes import IGNORE, LabelledVolume, read_labelled_folder, to_model_grid

logger = logging.getLogger(__name__)

TRAINING_SEED_BASE = 100_000
"""Phantom seeds used for training start here; evaluation uses seeds below it."""


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
    phantoms: int = 32  # phantoms held in memory at once
    refresh_every: int = 10  # steps between replacing one phantom with a fresh one
    folder_share: float = 0.5  # share of patches from the labelled folder, when one is given
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


def normalise(hu: np.ndarray | torch.Tensor, config: TrainConfig) -> torch.Tensor:
    """HU -> network input, as the manifest's zscore normalisation does."""
    x = torch.as_tensor(hu, dtype=torch.float32)
    x = x.clamp(config.hu_clip[0], config.hu_clip[1])
    return (x - config.hu_mean) / config.hu_std


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


def save_checkpoint(
    path: Path, model: UNet3D, optimizer: torch.optim.Optimizer, step: int, config: TrainConfig
) -> None:
    """Write atomically, so that an interrupted save leaves the previous checkpoint intact."""
    tmp = path.with_suffix(".tmp")
    torch.save(
        {
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "step": step,
            "config": config.to_dict(),
        },
        tmp,
    )
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


def train(
    config: TrainConfig,
    out_dir: Path,
    *,
    folder: Path | None = None,
    resume: bool = True,
    phantoms: bool = True,
) -> TrainResult:
    """Train (or resume) a model into ``out_dir``; returns where the checkpoint is.

    ``folder`` holds labelled cases (see :func:`model_export.volumes.read_labelled_folder`);
    with ``phantoms=False`` only those are used, which is how a site fine-tunes on its own
    annotations (start from a bundled checkpoint copied into ``out_dir``).
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    torch.set_num_threads(config.threads)
    torch.manual_seed(config.seed)
    ckpt_path = out_dir / "checkpoint.pt"
    model = UNet3D(config.network)
    model = model.to(memory_format=torch.channels_last_3d)  # type: ignore[call-overload]
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.learning_rate, weight_decay=config.weight_decay
    )
    step = 0
    if resume and ckpt_path.is_file():
        data = load_checkpoint(ckpt_path)
        model.load_state_dict(data["model"])
        optimizer.load_state_dict(data["optimizer"])
        step = int(data["step"])
        logger.info("resumed from %s at step %d", ckpt_path, step)
    rng = np.random.default_rng([config.seed, step])

    samplers: list[tuple[PatchSampler, float]] = []
    folder_cases: list[str] = []
    if folder is not None:
        cases = [to_model_grid(v, config.spacing_mm) for v in read_labelled_folder(folder)]
        folder_cases = [v.name for v in cases]
        share = config.folder_share if phantoms else 1.0
        samplers.append((PatchSampler(cases, config.patch_size, Augmentation(), rng), share))
    next_seed = TRAINING_SEED_BASE + step // max(config.refresh_every, 1)
    seeds: list[int] = []
    phantom_sampler = None
    if phantoms:
        pool: list[LabelledVolume] = []
        for _ in range(config.phantoms):
            pool.append(training_phantom(next_seed, config.spacing_mm))
            seeds.append(next_seed)
            next_seed += 1
        phantom_sampler = PatchSampler(pool, config.patch_size, Augmentation(), rng)
        samplers.append((phantom_sampler, 1.0 - sum(s for _, s in samplers)))
    if not samplers:
        raise ValueError("nothing to train on: give a labelled folder or allow phantoms")
    shares = np.asarray([s for _, s in samplers], dtype=np.float64)
    shares = shares / shares.sum()

    weights = (
        torch.tensor(config.class_weights, dtype=torch.float32)
        if config.class_weights is not None
        else None
    )
    log_path = out_dir / "train_log.jsonl"
    start = time.perf_counter()
    loss_value = float("nan")
    model.train()
    while step < config.steps:
        for group in optimizer.param_groups:
            group["lr"] = learning_rate(step, config)
        pairs = []
        for _ in range(config.batch_size):
            sampler = samplers[int(rng.choice(len(samplers), p=shares))][0]
            pairs.append(sampler.sample())
        x = normalise(np.stack([p[0] for p in pairs])[:, None], config)
        x = x.contiguous(memory_format=torch.channels_last_3d)
        y = torch.as_tensor(np.stack([p[1] for p in pairs]).astype(np.int64))
        logits = model(x)
        loss = loss_fn(logits, y, config.dice_weight, weights)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        loss_value = float(loss.detach())
        if phantom_sampler is not None and step % config.refresh_every == 0:
            index = int(rng.integers(len(phantom_sampler.volumes)))
            phantom_sampler.replace(index, training_phantom(next_seed, config.spacing_mm))
            seeds.append(next_seed)
            next_seed += 1
        with log_path.open("a", encoding="utf-8") as log:
            log.write(
                json.dumps(
                    {
                        "step": step,
                        "loss": round(loss_value, 5),
                        "lr": round(learning_rate(step - 1, config), 6),
                        "seconds": round(time.perf_counter() - start, 1),
                    }
                )
                + "\n"
            )
        if step % config.checkpoint_every == 0 or step == config.steps:
            save_checkpoint(ckpt_path, model, optimizer, step, config)
    save_checkpoint(ckpt_path, model, optimizer, step, config)
    return TrainResult(
        checkpoint=ckpt_path,
        steps=step,
        final_loss=loss_value,
        seconds=time.perf_counter() - start,
        phantom_seeds=seeds,
        folder_cases=folder_cases,
    )
