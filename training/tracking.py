"""Measurements shared by every method: metric log, curves, parameter counts, timings.

Each run appends one JSON line per logging step to ``log.jsonl`` in its run folder (the
workbench tails it for live curves) and draws the curves into the adapter at the end.
``training.run`` owns the folders, the manifest and the commit; this module only measures.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from transformers import TrainerCallback


class MetricsLog(TrainerCallback):
    """Writes every logged metric dict to ``log.jsonl`` with step, time and ETA."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.started = time.monotonic()
        self.records: list[dict[str, Any]] = []
        path.parent.mkdir(parents=True, exist_ok=True)

    def on_log(self, args, state, control, logs=None, **kwargs):
        if logs:
            self.add(state.global_step, state.max_steps, logs)

    def add(self, step: int, max_steps: int, metrics: dict[str, Any]) -> dict[str, Any]:
        """Append one record (for loops that are not a transformers Trainer, e.g. PPO)."""
        elapsed = time.monotonic() - self.started
        done = max(step, 1)
        record = {
            "step": step,
            "max_steps": max_steps,
            "elapsed_s": round(elapsed, 1),
            "eta_s": round(elapsed / done * max(max_steps - done, 0), 1),
            **{k: v for k, v in metrics.items() if isinstance(v, (int, float))},
        }
        self.records.append(record)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")
        return record

    def loss_curve(self) -> list[dict[str, float]]:
        """``{"step", "loss"}`` of every record that logged a loss."""
        return [{"step": r["step"], "loss": r["loss"]} for r in self.records if "loss" in r]

    def curve(self, keys: tuple[str, ...]) -> list[dict[str, Any]]:
        """Every record's step and whichever of ``keys`` it logged."""
        return [{k: r[k] for k in ("step", *keys) if k in r} for r in self.records]


def plot_curves(
    records: list[dict[str, Any]], target: Path, keys: tuple[str, ...] = ("loss",)
) -> Path | None:
    """Draw the logged metrics against the step; None when nothing was logged."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series = {k: [(r["step"], r[k]) for r in records if k in r] for k in keys}
    series = {k: v for k, v in series.items() if v}
    if not series:
        return None
    fig, axes = plt.subplots(1, len(series), figsize=(5 * len(series), 3.2), squeeze=False)
    for axis, (key, points) in zip(axes[0], series.items()):
        axis.plot([p[0] for p in points], [p[1] for p in points], marker="o", markersize=3)
        axis.set_xlabel("step")
        axis.set_ylabel(key)
        axis.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    plt.close(fig)
    return target


def train_measured(trainer, **train_kwargs) -> tuple[dict[str, Any], tuple[int, int]]:
    """``trainer.train()`` with the numbers every manifest records, and (trainable,
    total) parameters."""
    parameters = count_parameters(trainer.model)
    before = snapshot_trainable(trainer.model)
    started = time.monotonic()
    result = trainer.train(**train_kwargs)
    seconds = time.monotonic() - started
    metrics = {
        "train_loss": round(result.training_loss, 4),
        "steps": result.global_step,
        "train_seconds": round(seconds, 1),
        "seconds_per_step": round(seconds / max(result.global_step, 1), 3),
        "peak_memory_mb": peak_memory_mb(),
        "max_weight_change": max_change(trainer.model, before),
    }
    return metrics, parameters


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts of the model as it computes.

    Two peft methods train a copy of a base module and keep the frozen original beside it:
    ``modules_to_save`` (top-blocks; the original is ``original_module``) and LN tuning
    (the original is ``base_layer`` beside ``ln_tuning_layers``). The originals are not
    counted, so the total is the base model's count plus what the adapter adds.
    """
    shadowed = set()
    for name, module in model.named_modules():
        if hasattr(module, "ln_tuning_layers") and hasattr(module, "base_layer"):
            shadowed.add(f"{name}.base_layer.")
        if hasattr(module, "modules_to_save") and hasattr(module, "original_module"):
            shadowed.add(f"{name}.original_module.")
    params = [
        p
        for n, p in model.named_parameters()
        if not any(n.startswith(prefix) for prefix in shadowed)
    ]
    trainable = sum(p.numel() for p in params if p.requires_grad)
    total = sum(p.numel() for p in params)
    return trainable, total


def snapshot_trainable(model) -> dict[str, Any]:
    """Copies of the trainable tensors, to prove training changed them."""
    return {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}


def max_change(model, before: dict[str, Any]) -> float:
    """Largest absolute change of any trainable weight since ``before``."""
    changes = [
        (p.detach() - before[n]).abs().max().item()
        for n, p in model.named_parameters()
        if n in before
    ]
    return max(changes, default=0.0)


def peak_memory_mb() -> float:
    """Peak resident memory of this process in MB (Linux ru_maxrss is in KB)."""
    import resource

    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
