"""Compare the classification approaches side by side on one dataset (e.g. GLUE SST-2).

Each approach runs as its own ``ragtune train classify`` process, so its peak memory and
time are its own; the table reports test accuracy, macro-F1, trainable parameters (count
and share), train time, peak memory and artefact size.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

APPROACHES = ("features", "head", "lora", "full")


def run_comparison(
    data: Path,
    *,
    prefix: str,
    train_rows: int,
    max_steps: int,
    extra: list[str],
    methods: tuple[str, ...] = APPROACHES,
) -> list[dict]:
    """Train each approach in a subprocess; return their manifests (as dicts)."""
    ragtune = str(Path(sys.executable).with_name("ragtune"))
    rows = []
    for method in methods:
        command = [
            ragtune,
            "train",
            "classify",
            "--config",
            f"configs/train/classify_{method}.yaml",
            "--name",
            f"{prefix}-{method}",
            "--dataset",
            str(data / "train.tsv"),
            "--set",
            f"eval_file={data / 'dev.tsv'}",
            "--set",
            f"test_file={data / 'test.tsv'}",
            "--set",
            f"train_rows={train_rows if method != 'features' else max(train_rows, 5000)}",
            "--max-steps",
            str(max_steps),
            "--overwrite",
            "--json",
            *extra,
        ]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
        if result.returncode != 0:
            rows.append(
                {"method": method, "error": (result.stderr or result.stdout).strip()[-500:]}
            )
            continue
        rows.append(json.loads(result.stdout))
    return rows


def markdown_table(rows: list[dict], majority: float | None = None) -> str:
    """The comparison as a Markdown table."""
    lines = [
        (
            "| approach | test accuracy | macro-F1 | trainable params | share | train time | peak "
            "memory | artefact |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    if majority is not None:
        lines.append(f"| majority class | {majority:.3f} | | 0 | 0% | | | |")
    for row in rows:
        if "error" in row:
            lines.append(f"| {row['method']} | failed: {row['error'][:80]} | | | | | | |")
            continue
        m = row["metrics"]
        share = 100 * row["trainable_parameters"] / max(row["total_parameters"], 1)
        lines.append(
            f"| {row['method']} | {m['test']['accuracy']:.3f} | {m['test']['macro_f1']:.3f} "
            f"| {row['trainable_parameters']:,} | {share:.3f}% | {m['train_seconds']:.0f} s "
            f"| {m['peak_memory_mb']:.0f} MB | {m.get('artefact_bytes', 0) / 1e6:.1f} MB |"
        )
    return "\n".join(lines)
