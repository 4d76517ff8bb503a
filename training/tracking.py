"""Run bookkeeping shared by every method: metric log, loss curve, parameter counts.

Each run appends one JSON line per logging step to ``log.jsonl`` in its run folder (the
workbench tails it for live curves) and draws ``loss.png`` at the end.
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
    """``trainer.train()`` with the numbers every manifest records, and (trainable, total) parameters."""
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


def run_manifest(
    args,
    *,
    kind: str,
    method: str,
    metrics: dict[str, Any],
    parameters: tuple[int, int],
    base_model: str | None = None,
):
    """The manifest of a finished run: what was trained, on what, with which settings and results."""
    from dataclasses import asdict

    from training.data import file_sha256
    from training.registry import Manifest

    return Manifest(
        name=args.name,
        kind=kind,
        method=method,
        base_model=base_model or args.base_model,
        dataset=str(args.dataset),
        dataset_sha256=file_sha256(Path(args.dataset)),
        metrics=metrics,
        hyperparameters={
            k: v
            for k, v in asdict(args).items()
            if k not in {"name", "dataset", "overwrite", "resume"}
        },
        trainable_parameters=parameters[0],
        total_parameters=parameters[1],
    )


def count_parameters(model) -> tuple[int, int]:
    """(trainable, total) parameter counts."""
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    total = sum(p.numel() for p in model.parameters())
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
