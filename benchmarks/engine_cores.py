"""The vLLM CPU engine's model threads on every core against vLLM's default reserve of one.

vLLM's CPU backend keeps one core per worker free of model threads for its scheduler
(``VLLM_CPU_NUM_OF_RESERVED_CPU``); on a two-core machine that leaves the model one core.
``generator.cpu_reserved_cores`` (null: 0 on machines of up to 2 CPUs) decides it for
ragtune's engine. Each setting gets an engine of its own, started one after the other
(never two at once), and answers the same RAG-sized requests: distinct slices of the
shipped docs (about 1,150 prompt tokens each, so no prompt shares a cached prefix with
another) with 100 generated tokens each (``ignore_eos``), first 4 one at a time, then 32
with 16 in flight. Rounds interleave the settings.

Run: ``.venv/bin/python -m benchmarks.engine_cores [--rounds 1]`` (part of ``make bench``).
Writes ``benchmarks/results/engine_cores.json``; ``benchmarks/report.py`` renders the
section of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

from benchmarks.harness import REPO, engine

RESULTS = REPO / "benchmarks/results/engine_cores.json"
DATA = REPO / ".ragtune/bench-cores"
SLICE_CHARS = 3400
SETTINGS = {"vLLM default (1 reserved)": "1", "ragtune default (0 reserved)": "0"}


def contexts() -> list[str]:
    """Distinct slices of the shipped docs, ``SLICE_CHARS`` characters each."""
    corpus = "".join(p.read_text(encoding="utf-8") for p in sorted((REPO / "docs").glob("*.md")))
    return [corpus[i : i + SLICE_CHARS] for i in range(0, len(corpus) - SLICE_CHARS, SLICE_CHARS)]


def measure(url: str, slices: list[str]) -> dict:
    """Seconds per request one at a time (4) and with 16 in flight (32), and prompt tokens."""
    client = httpx.Client(timeout=900)

    def ask(index: int) -> int:
        question = f"Question {index}: what does this text explain?"
        body = {
            "model": "base",
            "messages": [{"role": "user", "content": f"{slices[index]}\n\n{question}"}],
            "max_tokens": 100,
            "ignore_eos": True,
            "temperature": 0,
        }
        reply = client.post(url + "/chat/completions", json=body)
        reply.raise_for_status()
        return reply.json()["usage"]["prompt_tokens"]

    ask(len(slices) - 1)  # the first request compiles: in neither figure
    started = time.perf_counter()
    tokens = [ask(i) for i in range(4)]
    one = (time.perf_counter() - started) / 4
    started = time.perf_counter()
    with ThreadPoolExecutor(16) as pool:
        tokens += list(pool.map(ask, range(4, 36)))
    sixteen = (time.perf_counter() - started) / 32
    return {"one_s": one, "sixteen_s": sixteen, "prompt_tokens": statistics.mean(tokens)}


def main(rounds: int) -> None:
    from app.models import pull_default_generator
    from app.settings import load_settings

    model = str(pull_default_generator(load_settings().models_dir))
    slices = contexts()
    if len(slices) < 37:
        raise SystemExit(f"the docs give {len(slices)} distinct slices; 37 are needed")
    runs: dict[str, list[dict]] = {label: [] for label in SETTINGS}
    saved = os.environ.get("VLLM_CPU_NUM_OF_RESERVED_CPU")
    try:
        for round_ in range(rounds):
            for label, reserved in SETTINGS.items():
                os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = reserved  # the engine inherits it
                with engine(DATA, f"cores-{reserved}", RAGTUNE_GENERATOR__MODEL=model) as url:
                    runs[label].append(measure(url, slices))
                print(f"  round {round_ + 1}, {label}: {runs[label][-1]}", flush=True)
    finally:
        os.environ.pop("VLLM_CPU_NUM_OF_RESERVED_CPU", None)
        if saved is not None:
            os.environ["VLLM_CPU_NUM_OF_RESERVED_CPU"] = saved
    results = {
        "cpus": os.cpu_count(),
        "model": Path(model).name,
        "rounds": rounds,
        "settings": {
            label: {
                key: round(statistics.median(r[key] for r in rs), 2)
                for key in ("one_s", "sixteen_s", "prompt_tokens")
            }
            for label, rs in runs.items()
        },
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def engine_cores_section(results: dict) -> str:
    """Markdown for docs/performance.md from benchmarks/results/engine_cores.json."""
    base = results["settings"]["vLLM default (1 reserved)"]
    lines = [
        (
            f"{results['model']}, {results['cpus']} CPUs, {results['rounds']} interleaved "
            f"round(s); RAG-sized requests of about {base['prompt_tokens']:.0f} prompt tokens "
            "(distinct docs slices) and 100 generated tokens. Reproduce: `.venv/bin/python -m "
            "benchmarks.engine_cores`."
        ),
        "",
        (
            "| cores reserved from the model | s per request, one at a time | x | "
            "s per request, 16 in flight | x |"
        ),
        "| --- | --- | --- | --- | --- |",
    ]
    for label, run in results["settings"].items():
        lines.append(
            f"| {label} | {run['one_s']} | {base['one_s'] / run['one_s']:.2f}x | "
            f"{run['sixteen_s']} | {base['sixteen_s'] / run['sixteen_s']:.2f}x |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=1, help="Interleaved rounds per setting.")
    main(parser.parse_args().rounds)
