"""The study report's PNG plots (matplotlib, Agg): quality with intervals, cost, forgetting."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from app.compare.measure import QUALITY
from evals.report import plot_metric_intervals


def plots(summary: dict[str, Any], folder: Path) -> list[Path]:
    """quality.png (metrics with intervals), cost.png (latency, training), forgetting.png."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    arms = {n: r for n, r in summary["arms"].items() if r["status"] == "ok"}
    names = list(arms)
    paths: list[Path] = []
    shown = [m for m in QUALITY if any(m in r.get("metrics", {}) for r in arms.values())]
    if shown:
        cells = {m: [arms[n].get("metrics", {}).get(m) for n in names] for m in shown}
        paths.append(plot_metric_intervals(names, cells, folder / "quality.png"))
    if names:
        fig, (left, right) = plt.subplots(1, 2, figsize=(10, 3.4))
        p50 = [arms[n]["cost"]["latency_p50_s"] or 0 for n in names]
        p95 = [arms[n]["cost"]["latency_p95_s"] or 0 for n in names]
        x = range(len(names))
        left.bar([i - 0.2 for i in x], p50, width=0.4, label="p50")
        left.bar([i + 0.2 for i in x], p95, width=0.4, label="p95")
        left.set_title("answer latency (s)", fontsize=10)
        left.legend(fontsize=8)
        right.bar(x, [arms[n]["cost"]["train_seconds"] or 0 for n in names], color="#dd8452")
        right.set_title("training wall time (s)", fontsize=10)
        for axis in (left, right):
            axis.set_xticks(list(x), names, rotation=30, ha="right", fontsize=8)
            axis.grid(axis="y", alpha=0.3)
        fig.tight_layout()
        paths.append(folder / "cost.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    forgot = {n: r["forgetting"]["metrics"] for n, r in arms.items() if r.get("forgetting")}
    forgot = {n: m["token_f1"] for n, m in forgot.items() if "token_f1" in m}
    if forgot:
        fig, axis = plt.subplots(figsize=(max(4, 1.4 * len(forgot)), 3.2))
        cells = list(forgot.values())
        axis.bar(
            range(len(cells)),
            [c["delta"] for c in cells],
            yerr=[
                [max(c["delta"] - c["ci"][0], 0) for c in cells],
                [max(c["ci"][1] - c["delta"], 0) for c in cells],
            ],
            capsize=4,
            color="#55a868",
        )
        axis.axhline(0, color="black", linewidth=0.8)
        axis.set_xticks(range(len(cells)), list(forgot), rotation=30, ha="right", fontsize=8)
        axis.set_title("forgetting: token F1 change on the general suite", fontsize=10)
        fig.tight_layout()
        paths.append(folder / "forgetting.png")
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths
