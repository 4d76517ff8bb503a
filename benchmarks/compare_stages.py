"""`ragtune compare` stage times: the study on the shipped docs corpus, per budget.

Runs ``ragtune compare --collection docs --synth 200 --budget B --restart --json`` through
the real command line for each budget (``quick`` and ``standard`` by default, one after
the other) against one engine with the default settings (LoRA enabled, as ``make run``
starts it; the engine's start-up is not counted), in the benchmark data folder. Records
each stage's seconds (from the study's ``state.json``), the command's wall time, the
dataset's kept pairs, the test questions, the training steps and peak memory of every
adapter, and the recommendation. The issue's targets: quick within 30 minutes, standard
within 90.

Run: ``.venv/bin/python -m benchmarks.compare_stages [--budgets quick,standard]`` (part of
``make bench``). Writes ``benchmarks/results/compare_stages.json``; ``benchmarks/report.py``
renders the section of docs/performance.md.
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

from benchmarks.harness import RAGTUNE, REPO, base_env, engine

RESULTS = REPO / "benchmarks/results/compare_stages.json"
DATA = REPO / ".ragtune/bench"
SYNTH = 200
TARGET_S = {"quick": 30 * 60, "standard": 90 * 60}


def study(env: dict[str, str], budget: str) -> dict:
    """One ``ragtune compare`` run from scratch; its stage times and headline figures."""
    name = f"bench-docs-synth{SYNTH}-{budget}"
    log = DATA / "logs" / f"compare-{budget}.log"
    log.parent.mkdir(parents=True, exist_ok=True)
    print(f"  compare --budget {budget} (log {log})", file=sys.stderr, flush=True)
    started = time.perf_counter()
    with log.open("w") as err:
        result = subprocess.run(
            [RAGTUNE, "compare", "--collection", "docs", "--synth", str(SYNTH)]
            + ["--budget", budget, "--name", name, "--restart", "--json"],
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            check=False,
        )
    wall_s = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"compare --budget {budget} failed ({result.returncode}); log {log}")
    summary = json.loads(result.stdout)
    state = json.loads((DATA / "compare" / name / "state.json").read_text())
    stages = {n: s["seconds"] for n, s in state["stages"].items()}
    failed = {n: s["error"] for n, s in state["stages"].items() if s["state"] != "done"}
    return {
        "budget": budget,
        "wall_s": round(wall_s, 1),
        "target_s": TARGET_S.get(budget),
        "within_target": TARGET_S.get(budget) is None or wall_s <= TARGET_S[budget],
        "stages_s": stages,
        "failed_stages": failed,
        "summary": {k: v for k, v in summary.items() if k != "files"},
    }


def main(budgets: list[str]) -> None:
    from app.models import pull_default_generator
    from app.settings import load_settings

    model_dir = str(pull_default_generator(load_settings().models_dir))
    common = {"RAGTUNE_GENERATOR__MODEL": model_dir}
    env = base_env(DATA, **common)
    subprocess.run(
        [RAGTUNE, "ingest", str(REPO / "docs"), "-c", "docs", "--prune"],
        env=env,
        cwd=REPO,
        capture_output=True,
        check=True,
    )
    runs = {}
    with engine(DATA, "compare", **common) as url:
        env = base_env(DATA, RAGTUNE_GENERATOR__URL=url, **common)
        for budget in budgets:
            runs[budget] = study(env, budget)
            print(
                f"  {budget}: {runs[budget]['wall_s']} s {runs[budget]['stages_s']}",
                file=sys.stderr,
                flush=True,
            )
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": Path(model_dir).name,
        "synth": SYNTH,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def compare_stages_section(results: dict) -> str:
    """Markdown for docs/compare.md from benchmarks/results/compare_stages.json."""
    runs = results["runs"]
    budgets = list(runs)
    lines = [
        (
            f"`ragtune compare --collection docs --synth {results['synth']} --budget B` on the "
            f"shipped docs corpus, {results['model']}, {results['machine']['cpus']} CPUs, one "
            "local vLLM CPU engine started beforehand (not counted). Reproduce: "
            "`.venv/bin/python -m benchmarks.compare_stages` (part of `make bench`)."
        ),
        "",
        "| stage | " + " | ".join(f"{b} s" for b in budgets) + " |",
        "| --- |" + " --- |" * len(budgets),
    ]
    names = list(dict.fromkeys(n for b in budgets for n in runs[b]["stages_s"]))
    for name in names:
        cells = [str(runs[b]["stages_s"].get(name, "")) for b in budgets]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append(
        "| **wall time of the command** | "
        + " | ".join(f"**{runs[b]['wall_s']}**" for b in budgets)
        + " |"
    )
    lines.append("")
    for b in budgets:
        run, summary = runs[b], runs[b]["summary"]
        counts = summary["data"]["counts"]
        target = f" (target {run['target_s'] // 60} min)" if run.get("target_s") else ""
        failed = ", ".join(run["failed_stages"]) or "none"
        lines.append(
            f"- {b}: {run['wall_s'] / 60:.1f} min{target}; kept {counts['kept']} of "
            f"{counts['generated']} synthesised pairs (train {counts['train']}, dev "
            f"{counts['dev']}, test {counts['test']}); {summary['data']['test_items']} test "
            f"questions per arm; recommended `{summary['recommendation'].get('arm')}` "
            f"({summary['recommendation'].get('rule')}); failed stages: {failed}."
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--budgets", default="quick,standard", help="Comma-separated budgets, run in order."
    )
    main([b.strip() for b in parser.parse_args().budgets.split(",") if b.strip()])
