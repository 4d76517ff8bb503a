"""Worker spin benchmark: vLLM's 1 s idle spin against ragtune's bound
(``generator.worker_spin_s``).

After each model step, vLLM's worker polls for the next one for ``worker_spin_s`` seconds
(vLLM's own value is 1 s; ragtune starts the engine with 0.1 s, see
``app/generation/vllm_server.py``). Engines with each setting run one after another,
LoRA-free, on the default model, for ``--rounds`` interleaved rounds (1 in ``make bench``, to
keep it under 30 minutes; the recorded run used 2). For each it measures:
- output tokens/s at 1 and 32 concurrent requests (the bound must cost nothing);
- the app's query embedding 0.2 s after an answer finished (what the spin takes from the app);
- the slowest of 40 short requests sent after random 0-0.3 s pauses (a stall would show here).

Run: ``.venv/bin/python -m benchmarks.worker_spin [--rounds N]`` (part of ``make bench``). Writes
``benchmarks/results/worker_spin.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import time
from pathlib import Path

from benchmarks.harness import REPO, engine, warm_up, wave

RESULTS = REPO / "benchmarks/results/worker_spin.json"
DATA = REPO / ".ragtune/bench"
SPINS = {"vLLM default (1 s)": "1.0", "ragtune default (0.1 s)": "0.1"}


def _embed_ms(embedder, index: int) -> float:
    """Milliseconds of one query embedding (a fresh question each time)."""
    began = time.perf_counter()
    embedder.embed_query(f"How do I ingest a folder of documents? ({index})")
    return (time.perf_counter() - began) * 1000


def _embed_after_answer(url: str, embedder, samples: int = 10) -> float:
    """Median ms of one query embedding 0.2 s after an 8-token answer."""
    times = []
    for i in range(samples):
        wave(url, "base", 1, max_tokens=8, waves=1)
        time.sleep(0.2)
        times.append(_embed_ms(embedder, i))
    return statistics.median(times)


def _slowest_after_pauses(url: str, requests: int = 40) -> dict:
    pauses = random.Random(0)
    latencies = []
    for _ in range(requests):
        time.sleep(pauses.uniform(0, 0.3))
        began = time.perf_counter()
        wave(url, "base", 1, max_tokens=8, waves=1)
        latencies.append(time.perf_counter() - began)
    return {"median_s": round(statistics.median(latencies), 3), "max_s": round(max(latencies), 3)}


def measure(spin: str, model_dir: str, embedder, round_: int) -> dict:
    settings = {
        "RAGTUNE_GENERATOR__MODEL": model_dir,
        "RAGTUNE_GENERATOR__ENABLE_LORA": "false",
        "RAGTUNE_GENERATOR__WORKER_SPIN_S": spin,
    }
    with engine(DATA, f"spin-{spin}-{round_}", **settings) as url:
        warm_up(url)
        return {
            "tokens_per_s_1": wave(url, "base", 1, waves=3).tokens_per_s,
            "tokens_per_s_32": wave(url, "base", 32, waves=2).tokens_per_s,
            "embed_ms_after_answer": _embed_after_answer(url, embedder),
            "short_requests_after_pauses": _slowest_after_pauses(url),
        }


def main(rounds: int) -> None:
    from app.components import build_embedder
    from app.models import pull_default_generator
    from app.settings import load_settings

    settings = load_settings()
    model_dir = str(pull_default_generator(settings.models_dir))
    embedder = build_embedder(settings)
    alone = [_embed_ms(embedder, i) for i in range(10)]
    runs: dict[str, list[dict]] = {name: [] for name in SPINS}
    for round_ in range(rounds):
        for name, spin in SPINS.items():
            runs[name].append(measure(spin, model_dir, embedder, round_))
            print(name, runs[name][-1], flush=True)
    rows = {}
    for name, measured in runs.items():
        rows[name] = {
            "tokens_per_s_1": round(statistics.mean(r["tokens_per_s_1"] for r in measured), 2),
            "tokens_per_s_32": round(statistics.mean(r["tokens_per_s_32"] for r in measured), 2),
            "embed_ms_after_answer": round(
                statistics.mean(r["embed_ms_after_answer"] for r in measured), 1
            ),
            "slowest_short_request_s": max(
                r["short_requests_after_pauses"]["max_s"] for r in measured
            ),
            "median_short_request_s": round(
                statistics.mean(r["short_requests_after_pauses"]["median_s"] for r in measured), 3
            ),
        }
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": Path(model_dir).name,
        "embed_ms_alone": round(statistics.median(alone[2:]), 1),
        "rows": rows,
        "runs": runs,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(rows, indent=2))


def worker_spin_section(results: dict) -> str:
    """Markdown for docs/performance.md from benchmarks/results/worker_spin.json."""
    baseline = results["rows"]["vLLM default (1 s)"]
    rounds = len(results["runs"]["vLLM default (1 s)"])
    lines = [
        (
            f"LoRA-free engines on {results['model']}, {rounds} interleaved round(s) per setting; "
            f"{results['machine']['cpus']} CPUs. Query embedding alone (no engine busy): "
            f"{results['embed_ms_alone']} ms. Reproduce: `.venv/bin/python -m "
            f"benchmarks.worker_spin --rounds {rounds}`."
        ),
        "",
        (
            "| worker spin | tok/s at 1 | tok/s at 32 | x vLLM default at 32 | query embedding 0.2 "
            "s after an answer, ms | short request after a 0-0.3 s pause: median / slowest s |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in results["rows"].items():
        lines.append(
            f"| {name} | {row['tokens_per_s_1']} | {row['tokens_per_s_32']} | "
            f"{row['tokens_per_s_32'] / baseline['tokens_per_s_32']:.2f}x | "
            f"{row['embed_ms_after_answer']} | {row['median_short_request_s']} / "
            f"{row['slowest_short_request_s']} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--rounds",
        type=int,
        default=1,
        help="interleaved rounds per setting (each starts an engine)",
    )
    main(parser.parse_args().rounds)
