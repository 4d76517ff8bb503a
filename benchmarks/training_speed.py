"""Training cost per method on the default model: step time, peak memory, trainable share.

LoRA, full fine-tuning, prompt tuning and prefix tuning each run a few steps of their
bundled config (``configs/train/sft_*.yaml``, same data and batch size) through the
``ragtune train`` CLI; the numbers come from each run's manifest. Step time is reported
as a ratio against full fine-tuning measured in the same run.

Run: ``.venv/bin/python -m benchmarks.training_speed`` (part of ``make bench``). Writes
``benchmarks/results/training.json``.
"""

from __future__ import annotations

import json
import os
import platform
import time

from benchmarks.harness import REPO, base_env, train_sft

RESULTS = REPO / "benchmarks/results/training.json"
DATA = REPO / ".ragtune/bench"
METHODS = ("full", "lora", "prompt", "prefix")
STEPS = 4


def main() -> None:
    from app.models import pull_default_generator
    from app.settings import load_settings

    started = time.monotonic()
    model_dir = str(pull_default_generator(load_settings().models_dir))
    env = base_env(DATA, RAGTUNE_GENERATOR__MODEL=model_dir)
    rows = {}
    for method in METHODS:
        manifest = train_sft(
            env, f"configs/train/sft_{method}.yaml", f"bench-speed-{method}", STEPS, "batch_size=8"
        )
        m = manifest["metrics"]
        rows[method] = {
            "seconds_per_step": m["seconds_per_step"],
            "peak_memory_mb": round(m["peak_memory_mb"]),
            "trainable_parameters": manifest["trainable_parameters"],
            "trainable_share": manifest["trainable_parameters"] / manifest["total_parameters"],
        }
    for row in rows.values():
        row["x_full_step_time"] = round(
            row["seconds_per_step"] / rows["full"]["seconds_per_step"], 3
        )
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "steps": STEPS,
        "batch_size": 8,
        "methods": rows,
        "total_minutes": round((time.monotonic() - started) / 60, 1),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def training_section(results: dict) -> str:
    """Markdown for docs/performance.md from benchmarks/results/training.json."""
    lines = [
        (
            f"{results['steps']} steps at batch size {results['batch_size']} per method on the "
            f"bundled instruction set; {results['machine']['cpus']} CPUs. Reproduce: "
            "`.venv/bin/python -m benchmarks.training_speed`."
        ),
        "",
        "| method | s/step | x full fine-tuning | peak memory MB | trainable parameters |",
        "| --- | --- | --- | --- | --- |",
    ]
    for method, row in results["methods"].items():
        lines.append(
            f"| {method} | {row['seconds_per_step']} | {row['x_full_step_time']:.2f}x | "
            f"{row['peak_memory_mb']} | {row['trainable_parameters']:,} "
            f"({row['trainable_share']:.3%}) |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
