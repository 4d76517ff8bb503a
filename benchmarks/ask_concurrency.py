"""`ragtune ask --file` throughput: one question at a time against ``--concurrency 16``.

The same RAG questions over the `docs` collection (the shipped docs, ingested into the
benchmark data folder) are answered twice through the real command line against one
engine with the default settings (LoRA enabled, as ``make run`` starts it), once with
``--concurrency 16`` and once with ``--concurrency 1``, in that order: a second pass may
reuse cached prompt prefixes, which can only help the one-at-a-time run, so the ratio is
not flattered. The questions are those of ``evals/datasets/qa_docs.jsonl`` followed by
those of ``evals/datasets/retrieval_docs.jsonl`` (96 in all; the first file has 40).
Throughput is questions per second of the answering itself (the time ``ask`` reports
for the batch, so the CLI's start-up, the same for both, is left out; the processes' whole
wall times are kept too).

Run: ``.venv/bin/python -m benchmarks.ask_concurrency`` (part of ``make bench``). Writes
``benchmarks/results/ask_concurrency.json``; ``benchmarks/report.py`` renders the section
of docs/performance.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import subprocess
import sys
import time
from pathlib import Path

import httpx

from benchmarks.harness import RAGTUNE, REPO, base_env, engine

RESULTS = REPO / "benchmarks/results/ask_concurrency.json"
DATA = REPO / ".ragtune/bench"
SOURCES = [REPO / "evals/datasets/qa_docs.jsonl", REPO / "evals/datasets/retrieval_docs.jsonl"]
LEVELS = (16, 1)  # the batched run first: see the module docstring


def questions(count: int) -> list[str]:
    """The first ``count`` distinct questions of ``SOURCES``, in file order."""
    found: dict[str, None] = {}
    for path in SOURCES:
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.strip():
                found.setdefault(json.loads(line)["question"], None)
    return list(found)[:count]


def _run(args: list[str], env: dict[str, str], log: Path) -> subprocess.CompletedProcess:
    log.parent.mkdir(parents=True, exist_ok=True)
    result = subprocess.run(args, env=env, cwd=REPO, capture_output=True, text=True, check=False)
    log.write_text(result.stdout[-20000:] + result.stderr[-20000:])
    if result.returncode not in (0, 1):  # 1: some questions failed, counted below
        raise SystemExit(f"{' '.join(args[:3])} failed ({result.returncode}); log {log}")
    return result


def engine_tokens(url: str) -> tuple[float, float]:
    """(prompt, generated) tokens the engine has processed so far (its Prometheus counters)."""
    text = httpx.get(url.removesuffix("/v1") + "/metrics", timeout=10).text

    def total(name: str) -> float:
        pattern = rf"^{re.escape(name)}\{{[^}}]*\}} ([0-9.e+]+)$"
        return sum(float(v) for v in re.findall(pattern, text, re.MULTILINE))

    return total("vllm:prompt_tokens_total"), total("vllm:generation_tokens_total")


def ask_file(env: dict[str, str], file: Path, concurrency: int, url: str) -> dict:
    """One ``ragtune ask --file`` run: its batch and process times, tokens, answers, failures."""
    out = DATA / f"ask-c{concurrency}.jsonl"
    before = engine_tokens(url)
    started = time.perf_counter()
    result = _run(
        [RAGTUNE, "ask", "--file", str(file), "-c", "docs", "-o", str(out)]
        + ["--concurrency", str(concurrency)],
        env,
        DATA / "logs" / f"ask-c{concurrency}.log",
    )
    process_s = time.perf_counter() - started
    after = engine_tokens(url)
    batch = re.search(r"wrote (\d+) answers to .* in ([\d.]+) s", result.stderr)
    if not batch:
        raise SystemExit(f"no summary line from ask:\n{result.stderr[-2000:]}")
    records = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    seconds = float(batch.group(2))
    return {
        "concurrency": concurrency,
        "questions": len(records),
        "failed": sum(1 for r in records if r.get("error")),
        "batch_s": round(seconds, 1),
        "process_s": round(process_s, 1),
        "questions_per_s": round(len(records) / seconds, 3),
        "prompt_tokens": int(after[0] - before[0]),
        "generated_tokens": int(after[1] - before[1]),
        "mean_answer_chars": round(
            sum(len(r.get("answer") or "") for r in records) / max(1, len(records)), 1
        ),
        "in_order": [r["question"] for r in records] == questions(len(records)),
    }


def main(count: int, overrides: list[str]) -> None:
    from app.models import pull_default_generator
    from app.settings import load_settings

    model_dir = str(pull_default_generator(load_settings().models_dir))
    common = {"RAGTUNE_GENERATOR__MODEL": model_dir}
    for item in overrides:
        key, _, value = item.partition("=")
        common[key] = value
    asked = questions(count)
    file = DATA / "ask-questions.jsonl"
    file.parent.mkdir(parents=True, exist_ok=True)
    file.write_text("".join(json.dumps({"question": q}) + "\n" for q in asked), encoding="utf-8")
    env = base_env(DATA, **common)
    _run([RAGTUNE, "ingest", str(REPO / "docs"), "-c", "docs"], env, DATA / "logs/ingest.log")
    runs = {}
    with engine(DATA, "ask-concurrency", **common) as url:
        env = base_env(DATA, RAGTUNE_GENERATOR__URL=url, **common)
        warm = DATA / "ask-warm.jsonl"
        warm.write_text(json.dumps({"question": "What is ragtune?"}) + "\n", encoding="utf-8")
        ask_file(env, warm, 1, url)  # the engine's first request compiles; in neither run
        for level in LEVELS:
            print(f"  ask --file, {len(asked)} questions, concurrency {level}", file=sys.stderr)
            runs[str(level)] = ask_file(env, file, level, url)
            print(f"  {runs[str(level)]}", file=sys.stderr, flush=True)
    results = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": Path(model_dir).name,
        "questions": len(asked),
        "overrides": overrides,
        "runs": runs,
        "speedup": round(runs["16"]["questions_per_s"] / runs["1"]["questions_per_s"], 2),
    }
    out = RESULTS if not overrides else RESULTS.with_name("ask_concurrency-trial.json")
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


def ask_concurrency_section(results: dict) -> str:
    """Markdown for docs/performance.md from benchmarks/results/ask_concurrency.json."""
    lines = [
        (
            f"`ragtune ask --file` with {results['questions']} RAG questions on the `docs` "
            f"collection, {results['model']}, {results['machine']['cpus']} CPUs, default "
            "settings; both runs side by side against one engine. Reproduce: "
            "`.venv/bin/python -m benchmarks.ask_concurrency`."
        ),
        "",
        (
            "| --concurrency | answering s | whole command s | questions/s | x one at a time "
            "| failed | prompt tokens/s | generated tokens/s |"
        ),
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    one = results["runs"]["1"]["questions_per_s"]
    for level in sorted(results["runs"], key=int):
        run = results["runs"][level]
        lines.append(
            f"| {level} | {run['batch_s']} | {run['process_s']} | {run['questions_per_s']} | "
            f"{run['questions_per_s'] / one:.2f}x | {run['failed']} "
            f"| {run['prompt_tokens'] / run['batch_s']:.0f} "
            f"| {run['generated_tokens'] / run['batch_s']:.1f} |"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--questions", type=int, default=96, help="How many questions (>= 90).")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="RAGTUNE_KEY=VALUE",
        help="A setting for the engine and ask (repeatable), for trials: the result then goes "
        "to ask_concurrency-trial.json, not into the docs.",
    )
    args = parser.parse_args()
    main(args.questions, args.set)
