"""Write a comparison's results: JSONL, summary JSON, Markdown and self-contained
HTML, PNG plots."""

from __future__ import annotations

import base64
import html
import json
import time
from pathlib import Path

from evals.runner import ItemResult


def report_folder(root: Path, name: str, when: float | None = None) -> Path:
    """The folder of a new report: ``root/<name>-<YYYYmmdd-HHMMSS>``.

    ``root`` is ``settings.evals_dir``; ``when`` is a Unix time (default: now), shown in
    local time to the second.
    """
    return root / f"{name}-{time.strftime('%Y%m%d-%H%M%S', time.localtime(when))}"


def report_paths(folder: Path) -> dict[str, Path]:
    """The files of the report in ``folder``, by kind (``write_report`` writes them).

    ``results`` (JSONL, one scored answer per line), ``summary`` (JSON), ``markdown``,
    ``html`` (self-contained) and the PNG plots ``metrics`` and ``latency``, which exist
    only when there was something to draw.
    """
    return {
        "results": folder / "results.jsonl",
        "summary": folder / "summary.json",
        "markdown": folder / "report.md",
        "html": folder / "report.html",
        "metrics": folder / "metrics.png",
        "latency": folder / "latency.png",
    }


def plot_metric_intervals(
    names: list[str], cells: dict[str, list[dict | None]], path: Path
) -> Path:
    """One bar chart per metric: each name's mean with its 95% interval as error bars.

    ``cells`` maps a metric to one ``{"mean", "ci": [low, high]}`` per name (``None`` where
    a name has no such score: no bar rather than 0). Writes a PNG to ``path`` and returns it.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    columns = min(3, len(cells))
    rows = (len(cells) + columns - 1) // columns
    fig, axes = plt.subplots(rows, columns, figsize=(4.2 * columns, 3.2 * rows), squeeze=False)
    for axis, (metric, row) in zip(axes.flat, cells.items()):
        means = [c["mean"] if c else float("nan") for c in row]
        low = [max(c["mean"] - c["ci"][0], 0) if c and c["mean"] == c["mean"] else 0 for c in row]
        high = [max(c["ci"][1] - c["mean"], 0) if c and c["mean"] == c["mean"] else 0 for c in row]
        axis.bar(range(len(names)), means, yerr=[low, high], capsize=4, color="#4c72b0")
        axis.set_xticks(range(len(names)), names, rotation=30, ha="right", fontsize=8)
        axis.set_title(f"{metric} (95% CI)", fontsize=10)
        axis.grid(axis="y", alpha=0.3)
    for axis in list(axes.flat)[len(cells) :]:
        axis.axis("off")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path


def _plots(
    summary: dict, results: list[ItemResult], metrics: tuple[str, ...], folder: Path
) -> list[Path]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    variants = list(summary["variants"])
    shown = [
        m
        for m in metrics
        if m != "latency_s" and any(m in summary["variants"][v]["metrics"] for v in variants)
    ]
    paths = []
    if shown:
        cells = {m: [summary["variants"][v]["metrics"].get(m) for v in variants] for m in shown}
        paths.append(plot_metric_intervals(variants, cells, report_paths(folder)["metrics"]))
    latencies = [
        [r.scores["latency_s"] for r in results if r.variant == v and "latency_s" in r.scores]
        for v in variants
    ]
    if any(latencies):
        fig, axis = plt.subplots(figsize=(max(4, 1.3 * len(variants)), 3.2))
        axis.boxplot(latencies, showfliers=True)
        axis.set_xticks(range(1, len(variants) + 1), variants, rotation=30, ha="right", fontsize=8)
        axis.set_ylabel("seconds")
        axis.set_title("latency per answer")
        fig.tight_layout()
        paths.append(report_paths(folder)["latency"])
        fig.savefig(paths[-1], dpi=100)
        plt.close(fig)
    return paths


def _markdown(title: str, summary: dict, metrics: tuple[str, ...], labels: dict[str, str]) -> str:
    variants = list(summary["variants"])
    lines = [f"# {title}", "", "| variant | recipe | errors |", "| --- | --- | --- |"]
    lines += [
        f"| {v} | {labels.get(v, '')} | {summary['variants'][v]['errors']} |" for v in variants
    ]
    for metric in metrics:
        cells = [(v, summary["variants"][v]["metrics"].get(metric)) for v in variants]
        if not any(c for _, c in cells):
            continue
        lines += [
            "",
            f"## {metric}",
            "",
            "| variant | mean | 95% CI | n |",
            "| --- | --- | --- | --- |",
        ]
        for v, c in cells:
            if c:
                lines.append(
                    f"| {v} | {c['mean']:.3f} | [{c['ci'][0]:.3f}, {c['ci'][1]:.3f}] | {c['n']} |"
                )
    if summary["pairs"]:
        lines += [
            "",
            "## Paired differences (sign-flip permutation test)",
            "",
            "| pair | metric | mean difference | p-value | n |",
            "| --- | --- | --- | --- | --- |",
        ]
        for pair, per_metric in summary["pairs"].items():
            for metric, cell in per_metric.items():
                if metric in metrics and metric != "latency_s":
                    lines.append(
                        f"| {pair} | {metric} | {cell['diff']:+.3f} | {cell['p']:.3f} "
                        f"| {cell['n']} |"
                    )
    return "\n".join(lines) + "\n"


def write_report(
    folder: Path,
    title: str,
    results: list[ItemResult],
    summary: dict,
    metrics: tuple[str, ...],
    labels: dict[str, str],
) -> dict[str, Path]:
    """Write every output into ``folder``; return their paths by kind."""
    import markdown as markdown_lib

    folder.mkdir(parents=True, exist_ok=True)
    files = report_paths(folder)
    paths = {kind: files[kind] for kind in ("results", "summary", "markdown", "html")}
    with paths["results"].open("w") as handle:
        for result in results:
            handle.write(json.dumps(result.to_dict(), ensure_ascii=False) + "\n")
    paths["summary"].write_text(json.dumps(summary, indent=2))
    plots = _plots(summary, results, metrics, folder)
    text = _markdown(title, summary, metrics, labels)
    paths["markdown"].write_text(text + "".join(f"\n![{p.stem}]({p.name})\n" for p in plots))
    images = "".join(
        f'<p><img alt="{p.stem}" '
        f'src="data:image/png;base64,{base64.b64encode(p.read_bytes()).decode()}"></p>'
        for p in plots
    )
    body = markdown_lib.markdown(text, extensions=["tables"])
    paths["html"].write_text(
        f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>"
        "<style>body{font-family:sans-serif;max-width:70em;margin:2em auto}"
        "table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.25em .6em}"
        "img{max-width:100%}</style></head>"
        f"<body>{body}{images}</body></html>"
    )
    for plot in plots:
        paths[plot.stem] = plot
    return paths
