"""Every SFT method on the same data and step budget: cost, task score and forgetting.

Each method trains from its bundled config (``configs/train/sft_<method>.yaml``; its own
learning rate, the same instruction data, batch size 8, ``--steps`` optimizer steps, one
seed) through ``ragtune train sft`` in its own process, so step time and peak memory are
its own. Then, against one local vLLM engine:

- task score: ``ragtune eval run`` on the QA suite (``evals/suites/qa_docs.yaml``, the
  first ``--qa-items`` questions, zero-shot + the adapter; the base model zero-shot as
  the reference row): ROUGE-L with its 95% bootstrap interval;
- forgetting: ``ragtune adapters forgetting`` on the benchmark families (``--tasks``,
  first ``--limit`` items): tuned minus base accuracy per family with the 95% interval of
  the paired per-item differences.

Results go to benchmarks/results/methods_table.json and into docs/methods.md between the
``<!-- bench:methods_table -->`` markers (``benchmarks.report`` renders them).

    .venv/bin/python -m benchmarks.methods_table [--steps 20] [--limit 100] [--qa-items 40]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

from benchmarks.harness import RAGTUNE, REPO, base_env, engine, train_sft

RESULTS = REPO / "benchmarks/results/methods_table.json"
# under the git-ignored .ragtune/ like the other benchmarks' data (ruff and git skip it)
DATA = REPO / ".ragtune" / "bench-methods"
COMMAND = ".venv/bin/python -m benchmarks.methods_table"
# (row label, bundled config) in the order
METHODS = [
    ("lora", "sft_lora"),
    ("ia3", "sft_ia3"),
    ("adapter layers (bottleneck)", "sft_bottleneck"),
    ("prefix", "sft_prefix"),
    ("prompt", "sft_prompt"),
    ("p-tuning", "sft_ptuning"),
    ("bitfit", "sft_bitfit"),
    ("layernorm", "sft_layernorm"),
    ("top-N blocks", "sft_top-blocks"),
    ("full", "sft_full"),
    ("lora + replay", "sft_lora-replay"),
    ("multi-task (lora)", "sft_multitask"),
]
TASKS = "arc_easy,hellaswag,mmlu"


def _run(args: list[str], env: dict[str, str], what: str) -> dict:
    print(f"  {what}", file=sys.stderr, flush=True)
    result = subprocess.run(
        [RAGTUNE, *args], env=env, cwd=REPO, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        return {"error": (result.stderr or result.stdout).strip()[-1500:]}
    return json.loads(result.stdout)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=20, help="Optimizer steps per method.")
    parser.add_argument("--limit", type=int, default=100, help="Benchmark items per family.")
    parser.add_argument("--tasks", default=TASKS, help="Benchmark families.")
    parser.add_argument("--qa-items", type=int, default=40, help="QA-suite questions.")
    parser.add_argument("--only", default="", help="Comma-separated configs (default: all).")
    args = parser.parse_args()

    from app.models import pull_default_generator
    from app.settings import load_settings

    model_dir = str(pull_default_generator(load_settings().models_dir))
    common = {"RAGTUNE_GENERATOR__MODEL": model_dir}
    env = base_env(DATA, **common)
    chosen = [m for m in METHODS if not args.only or m[1] in args.only.split(",")]
    rows, started = [], time.perf_counter()
    for label, config in chosen:
        name = "tbl-" + config.removeprefix("sft_")
        try:  # no SST-2 forgetting check: the benchmarks measure forgetting
            manifest = train_sft(env, f"configs/train/{config}.yaml", name, args.steps, "seed=0")
        except SystemExit as exc:
            manifest = {"error": str(exc)[-1500:]}
        row = {"method": label, "config": f"configs/train/{config}.yaml", "adapter": name}
        if "error" in manifest:
            rows.append({**row, "error": manifest["error"]})
            continue
        listed = _run(["adapters", "list", "--json"], env, "the registry")
        shown = (
            next((a for a in listed if a["name"] == name), {}) if isinstance(listed, list) else {}
        )
        metrics = manifest["metrics"]
        row.update(
            kind=manifest["kind"],
            trainable_parameters=manifest["trainable_parameters"],
            total_parameters=manifest["total_parameters"],
            steps=metrics["steps"],
            train_seconds=metrics["train_seconds"],
            seconds_per_step=metrics["seconds_per_step"],
            peak_memory_mb=metrics["peak_memory_mb"],
            adapter_mb=round(shown["size_bytes"] / 1e6, 2) if "size_bytes" in shown else None,
            mixture=metrics.get("mixture"),
        )
        forgetting = _run(
            [
                "adapters",
                "forgetting",
                name,
                "--tasks",
                args.tasks,
                "--limit",
                str(args.limit),
                "--json",
            ],
            env,
            f"benchmarks of {name} ({args.tasks}, {args.limit} items)",
        )
        row["forgetting"] = forgetting
        rows.append(row)
    trained = [r["adapter"] for r in rows if "error" not in r]
    with engine(DATA, "methods", **common) as url:
        env = base_env(DATA, RAGTUNE_GENERATOR__URL=url, **common)
        report = DATA / "qa-report"
        variants = ",".join(["zero-shot", *(f"zero-shot+{a}" for a in trained)])
        qa = _run(
            [
                "eval",
                "run",
                "--suite",
                "evals/suites/qa_docs.yaml",
                "--variants",
                variants,
                "--limit",
                str(args.qa_items),
                "--output",
                str(report),
                "--json",
            ],
            env,
            f"QA suite, {args.qa_items} questions, {len(trained) + 1} variants",
        )
    summary = {}
    if "error" not in qa and (report / "summary.json").exists():
        summary = json.loads((report / "summary.json").read_text())["variants"]
    base_qa = summary.get("zero-shot", {}).get("metrics", {}).get("rougeL")
    for row in rows:
        row["qa_rougeL"] = summary.get(f"zero-shot+{row['adapter']}", {}).get("metrics", {})
        row["qa_rougeL"] = row["qa_rougeL"].get("rougeL")
    results = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or "?"},
        "model": Path(model_dir).name,
        "steps": args.steps,
        "tasks": args.tasks.split(","),
        "limit": args.limit,
        "qa_items": args.qa_items,
        "base_qa_rougeL": base_qa,
        "qa_error": qa.get("error"),
        "wall_s": round(time.perf_counter() - started, 1),
        "command": " ".join(
            [
                COMMAND,
                f"--steps {args.steps}",
                f"--limit {args.limit}",
                f"--tasks {args.tasks}",
                f"--qa-items {args.qa_items}",
            ]
        ),
        "rows": rows,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    from benchmarks.report import render

    render()
    print(json.dumps(results, indent=2))


def _interval(cell: dict | None, digits: int = 3) -> str:
    if not cell:
        return "–"
    low, high = cell["ci"]
    return f"{cell['mean']:.{digits}f} [{low:.{digits}f}, {high:.{digits}f}]"


def _delta(family: dict | None) -> str:
    from evals.benchmarks.forgetting import delta_cells

    cells = dict(delta_cells(family or {}))
    if "acc" not in cells:
        return "–"
    star = "*" if family["acc"]["p"] < 0.05 else ""
    return cells["acc"].replace(" [", f"{star} [", 1)


def methods_table_section(results: dict) -> str:
    """Markdown for docs/methods.md from benchmarks/results/methods_table.json."""
    tasks = results["tasks"]
    lines = [
        (
            f"{results['model']}, {results['machine']['cpus']} CPUs, {results['steps']} optimizer "
            f"steps of batch 8 per method on `training/datasets/ragtune_instructions.jsonl` (the "
            f"mixtures add `general_instructions.jsonl`), seed 0. QA: ROUGE-L on the first "
            f"{results['qa_items']} questions of `evals/suites/qa_docs.yaml`, zero-shot, 95% "
            f"bootstrap interval (base model: {_interval(results['base_qa_rougeL'])}). Benchmarks: "
            f"accuracy change (tuned - base) on the first {results['limit']} items of each family, "
            f"95% interval of the paired per-item differences (* McNemar's exact p < 0.05). Wall "
            f"time {results['wall_s']:.0f} s. "
            f"Command: `{results['command']}`."
        ),
        "",
        "| method | trainable params | step s | peak MB | adapter MB | QA ROUGE-L | "
        + " | ".join(f"Δ {t} acc" for t in tasks)
        + " |",
        "| --- | ---: | ---: | ---: | ---: | --- |" + " --- |" * len(tasks),
    ]
    for row in results["rows"]:
        if "error" in row:
            lines.append(f"| {row['method']} | failed: {row['error'][-120:]!r} |")
            continue
        families = row.get("forgetting", {}).get("results", {})
        size = row["adapter_mb"]
        lines.append(
            f"| {row['method']} | {row['trainable_parameters']:,} | "
            f"{row['seconds_per_step']:.2f} | "
            f"{row['peak_memory_mb'] or 0:,.0f} | {size if size is not None else '–'} | "
            f"{_interval(row['qa_rougeL'])} | "
            + " | ".join(_delta(families.get(t)) for t in tasks)
            + " |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    main()
