"""What both trainers share: options, device and dtype, schedule, checkpoints, progress."""

from __future__ import annotations

import json
import math
import random
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

STATE_NAME = "trainer_state.json"
OPTIMIZER_NAME = "optimizer.pt"


@dataclass(frozen=True)
class TrainOptions:
    """Optimisation settings (defaults for the VGM; the VLM trainer overrides lr/epochs).

    Attributes:
        epochs: Passes over the training pairs.
        batch_size: Pairs (or conversations) per step.
        lr: Peak learning rate (AdamW), reached after ``warmup`` of the steps, then cosine decay.
        weight_decay: AdamW weight decay.
        warmup: Fraction of steps with linear warm-up.
        seed: Seeds Python, NumPy and torch; the data order depends only on it and the epoch.
        device: ``"auto"`` (CUDA if present), ``"cpu"`` or ``"cuda"``.
        checkpoint_every: Steps between resumable checkpoints (and at each epoch end).
        max_steps: Stop early after this many steps (for smoke runs).
        threads: torch CPU threads (None: torch's default).
    """

    epochs: int = 10
    batch_size: int = 16
    lr: float = 5e-4
    weight_decay: float = 0.01
    warmup: float = 0.1
    seed: int = 0
    device: str = "auto"
    checkpoint_every: int = 100
    max_steps: int | None = None
    threads: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda' requested but CUDA is not available; use --device cpu")
    return torch.device(name)


def autocast(device: torch.device):
    """bf16 autocast on CUDA, a no-op context on CPU (fp32 there)."""
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def cosine_schedule(
    optimizer: torch.optim.Optimizer, total_steps: int, warmup: float, *, done: int = 0
) -> torch.optim.lr_scheduler.LambdaLR:
    """Linear warm-up then cosine decay; ``done`` steps already taken (resume)."""
    warm = max(1, int(total_steps * warmup))

    def factor(step: int) -> float:
        if step < warm:
            return (step + 1) / warm
        progress = (step - warm) / max(1, total_steps - warm)
        return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))

    if done:  # the restored optimizer carries each group's initial_lr
        return torch.optim.lr_scheduler.LambdaLR(optimizer, factor, last_epoch=done - 1)
    return torch.optim.lr_scheduler.LambdaLR(optimizer, factor)


def epoch_order(n: int, *, seed: int, epoch: int) -> list[int]:
    """The shuffled order of ``n`` samples in ``epoch``: a function of seed and epoch only,
    so a resumed run sees exactly the batches the interrupted one would have."""
    return np.random.default_rng([seed, epoch]).permutation(n).tolist()


def batches(order: list[int], size: int) -> Iterator[list[int]]:
    for i in range(0, len(order), size):
        yield order[i : i + size]


@dataclass
class TrainerState:
    """Where a run is: the next step to take (global) and the loss history."""

    step: int = 0
    history: list[dict[str, float]] | None = None

    def to_json(self) -> str:
        return json.dumps({"step": self.step, "history": self.history or []}, indent=1)


def save_checkpoint(
    folder: Path, save_model, optimizer: torch.optim.Optimizer, state: TrainerState
) -> None:
    """Model (via its own safetensors ``save``), optimizer tensors and trainer state, atomically.

    Written into ``folder.tmp`` then renamed, so a kill mid-save leaves the last good one.
    """
    tmp = folder.with_name(folder.name + ".tmp")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir(parents=True)
    save_model(tmp)
    torch.save(optimizer.state_dict(), tmp / OPTIMIZER_NAME)
    (tmp / STATE_NAME).write_text(state.to_json())
    if folder.exists():
        import shutil

        shutil.rmtree(folder)
    tmp.rename(folder)


def load_checkpoint(folder: Path, optimizer: torch.optim.Optimizer) -> TrainerState:
    """Restore optimizer tensors (``weights_only=True``: no pickle code) and trainer state."""
    optimizer.load_state_dict(torch.load(folder / OPTIMIZER_NAME, weights_only=True))
    data = json.loads((folder / STATE_NAME).read_text())
    return TrainerState(step=int(data["step"]), history=data.get("history", []))
