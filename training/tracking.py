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

    def on_log(self, args, state, control, logs=None, **kwargs):  # noqa: D102 (transformers hook)
        if not logs:
            return
        elapsed = time.monotonic() - self.started
        done = max(state.global_step, 1)
        record = {
            "step": state.global_step,
            "max_steps": state.max_steps,
            "elapsed_s": round(elapsed, 1),
            "eta_s": round(elapsed / done * max(state.max_steps - done, 0), 1),
            **{k: v for k, v in logs.items() if isinstance(v, (int, float))},
        }
        self.records.append(record)
        with self.path.open("a") as handle:
            handle.write(json.dumps(record) + "\n")


def plot_curves(records: list[dict[str, Any]], target: Path, keys: tuple[str, ...] = ("loss",)) -> Path | None:
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
