"""Serving benchmark: chat throughput, adapter overhead and its remedies, the bandwidth ceiling.

Measured side by side in one run, on the default model (SmolLM2-135M, float32):
1. the machine's read bandwidth (a large array sum) and the batch-1 decode ceiling it
   implies (bandwidth / model bytes);
2. the baseline a user would otherwise write: transformers ``generate()``, one request at
   a time;
3. a LoRA-free engine, through ragtune's API at 1/4/16/32/64 concurrent requests (p50/p95
   latency, time to first token, output tokens/s), and the same engine called directly,
   interleaved with the API at 32, for the API's own overhead;
4. adapter serving, each option against the LoRA-free engine at the same concurrency:
   an engine started with ``--enable-lora`` sized to the registry (``max_loras`` 1, rank 8)
   serving base and adapter requests; the adapter merged into the weights
   (``ragtune adapters merge``) and served by an engine of its own; and routing base
   traffic to the LoRA-free engine (``generator.routes``), where base requests cost what
   they cost there. A py-spy profile of the adapter engine shows where its time goes.

Run: ``.venv/bin/python -m benchmarks.serving`` (part of ``make bench``). Writes
``benchmarks/results/serving.json`` and ``benchmarks/results/serving.png``.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import httpx
import numpy as np

from benchmarks.harness import (
    PROMPTS,
    RAGTUNE,
    REPO,
    app,
    base_env,
    engine,
    train_sft,
    warm_up,
    wave,
)
from benchmarks.rag_latency import rag_breakdown

RESULTS = REPO / "benchmarks/results/serving.json"
DATA = REPO / ".ragtune/bench"
LEVELS = (1, 4, 16, 32, 64)
NEW_TOKENS = 64
ADAPTER = "bench-lora"


def log(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def read_bandwidth_gbs(gib: float = 1.0, repeats: int = 5) -> float:
    """Best single-thread read bandwidth of summing a ``gib`` GiB float32 array."""
    data = np.ones(int(gib * 2**30 / 4), dtype=np.float32)
    best = float("inf")
    for _ in range(repeats):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.nbytes / best / 1e9


def transformers_baseline(model_dir: str, requests: int = 3) -> dict:
    """Plain ``generate()``, one request at a time, greedy, exactly NEW_TOKENS tokens each."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    model = AutoModelForCausalLM.from_pretrained(model_dir, dtype=torch.float32).eval()
    latencies = []
    for prompt in PROMPTS[:requests]:
        ids = tokenizer.apply_chat_template(
            [{"role": "user", "content": prompt}],
            add_generation_prompt=True,
            return_tensors="pt",
            return_dict=True,
        )
        started = time.perf_counter()
        with torch.no_grad():
            model.generate(
                **ids, max_new_tokens=NEW_TOKENS, min_new_tokens=NEW_TOKENS, do_sample=False
            )
        latencies.append(time.perf_counter() - started)
    return {
        "requests": requests,
        "tokens_per_s": round(requests * NEW_TOKENS / sum(latencies), 2),
        "latency_p50_s": round(sorted(latencies)[len(latencies) // 2], 3),
    }


def model_bytes(model_dir: str) -> int:
    return sum(f.stat().st_size for f in Path(model_dir).glob("*.safetensors"))


def ensure_adapter(env: dict[str, str]) -> None:
    """A rank-8 LoRA on the default model in the bench registry (trained briefly if missing)."""
    if not (DATA / "adapters" / ADAPTER / "manifest.json").exists():
        train_sft(env, "configs/train/sft_lora.yaml", ADAPTER, 4)


def interleaved(
    first: tuple[str, str], second: tuple[str, str], concurrency: int, rounds: int = 2
) -> tuple[float, float]:
    """Median tokens/s of two (url, model) targets measured in alternating waves."""
    a, b = [], []
    for _ in range(rounds):
        a.append(wave(*first, concurrency, max_tokens=NEW_TOKENS, waves=1).tokens_per_s)
        b.append(wave(*second, concurrency, max_tokens=NEW_TOKENS, waves=1).tokens_per_s)
    return float(np.median(a)), float(np.median(b))


def profile_adapter_engine(url: str, seconds: int = 15) -> dict:
    """Where the LoRA engine's model steps spend their time on adapter traffic (py-spy,
    all processes).

    Only samples inside ``execute_model`` count (the rest is idle polling); the share of
    those inside vLLM's LoRA code, and the functions with the most own time, are returned.
    """
    spy = Path(sys.executable).with_name("py-spy")
    if not spy.exists():
        return {"error": "py-spy is not installed (make bench installs it)"}
    port = url.rsplit(":", 1)[1].split("/")[0]
    pids = subprocess.run(
        ["pgrep", "-f", f"vllm_server.*--port {port}"], capture_output=True, text=True, check=False
    ).stdout.split()
    if not pids:
        return {"error": f"no vLLM server process on port {port}"}
    out = DATA / "adapter-profile.txt"
    out.unlink(missing_ok=True)
    recorder = subprocess.Popen(
        [
            str(spy),
            "record",
            "--pid",
            pids[0],
            "--subprocesses",
            "--duration",
            str(seconds),
            "--format",
            "raw",
            "--output",
            str(out),
            "--nonblocking",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    wave(url, ADAPTER, 8, max_tokens=NEW_TOKENS, waves=1)
    recorder.wait(timeout=seconds + 120)
    if not out.exists():
        return {"error": "py-spy could not attach (is ptrace permitted?)"}
    own: dict[str, int] = {}
    steps = lora = 0
    for line in out.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if "execute_model" not in stack:
            continue
        frames = stack.split(";")
        steps += int(count)
        lora += int(count) if any("/lora/" in f for f in frames) else 0
        leaf = frames[-1].split(" (")[0] + " (" + frames[-1].rsplit("/", 1)[-1]
        own[leaf] = own.get(leaf, 0) + int(count)
    top = sorted(own.items(), key=lambda kv: -kv[1])[:8]
    return {
        "model_step_samples": steps,
        "lora_code_share": round(lora / max(steps, 1), 3),
        "top": [{"function": name, "share": round(n / max(steps, 1), 3)} for name, n in top],
    }


def main() -> None:
    from app.models import pull_default_generator
    from app.settings import load_settings

    started = time.monotonic()
    model_dir = str(pull_default_generator(load_settings().models_dir))
    common = {"RAGTUNE_GENERATOR__MODEL": model_dir, "RAGTUNE_GENERATOR__SEED": "0"}
    env = base_env(DATA, **common)
    results: dict = {
        "machine": {
            "cpus": os.cpu_count(),
            "processor": platform.processor() or platform.machine(),
        },
        "model": Path(model_dir).name,
        "new_tokens": NEW_TOKENS,
    }

    log("bandwidth and the transformers baseline")
    bandwidth = read_bandwidth_gbs()
    size = model_bytes(model_dir)
    results["bandwidth"] = {
        "read_gb_per_s": round(bandwidth, 2),
        "model_mb": round(size / 1e6, 1),
        "ceiling_tokens_per_s": round(bandwidth * 1e9 / size, 2),
    }
    results["transformers"] = transformers_baseline(model_dir)
    ensure_adapter(env)

    log("LoRA-free engine: API sweep, API vs direct")
    with engine(DATA, "lora-free", **common, RAGTUNE_GENERATOR__ENABLE_LORA="false") as plain:
        with app(DATA, plain, **common) as api:
            api_v1 = f"{api}/v1"
            warm_up(plain)
            results["api_sweep"] = [
                wave(api_v1, "base", c, max_tokens=NEW_TOKENS, waves=1 if c == 64 else 2).summary()
                for c in LEVELS
            ]
            direct, through_api = interleaved((plain, "base"), (api_v1, "base"), 32)
            results["api_overhead"] = {
                "direct_tokens_per_s": round(direct, 2),
                "api_tokens_per_s": round(through_api, 2),
                "api_over_direct": round(through_api / direct, 3),
            }
        lora_free = {
            c: wave(plain, "base", c, max_tokens=NEW_TOKENS, waves=1).tokens_per_s for c in (8, 32)
        }
        log("RAG latency breakdown")
        results["rag_breakdown"] = rag_breakdown(DATA, plain, model_dir, REPO, NEW_TOKENS)
    results["lora_free"] = {str(c): round(v, 2) for c, v in lora_free.items()}

    log("adapter-capable engine (max_loras 1, rank 8)")
    options: dict[str, dict] = {}
    with engine(
        DATA,
        "lora",
        **common,
        RAGTUNE_GENERATOR__MAX_LORAS="1",
        RAGTUNE_GENERATOR__MAX_LORA_RANK="8",
    ) as lora:
        response = httpx.post(
            f"{lora.removesuffix('/v1')}/v1/load_lora_adapter",
            timeout=120,
            json={"lora_name": ADAPTER, "lora_path": str((DATA / "adapters" / ADAPTER).resolve())},
        )
        response.raise_for_status()
        warm_up(lora, ADAPTER)
        options["lora engine, base requests"] = {
            c: wave(lora, "base", c, waves=1).tokens_per_s for c in (8, 32)
        }
        options["lora engine, adapter requests"] = {
            c: wave(lora, ADAPTER, c, waves=1).tokens_per_s for c in (8, 32)
        }
        results["adapter_profile"] = profile_adapter_engine(lora)

    log("merged adapter on an engine of its own")
    merged_dir = DATA / "models" / "merged" / ADAPTER
    subprocess.run(
        [
            RAGTUNE,
            "adapters",
            "merge",
            ADAPTER,
            "--output",
            str(merged_dir),
            "--overwrite",
            "--json",
        ],
        env=env,
        cwd=REPO,
        check=True,
        capture_output=True,
    )
    with engine(
        DATA,
        "merged",
        **{**common, "RAGTUNE_GENERATOR__MODEL": str(merged_dir)},
        RAGTUNE_GENERATOR__ENABLE_LORA="false",
        RAGTUNE_GENERATOR__SERVED_NAME=ADAPTER,
    ) as merged:
        warm_up(merged, ADAPTER)
        options["merged adapter, own engine"] = {
            c: wave(merged, ADAPTER, c, waves=1).tokens_per_s for c in (8, 32)
        }
    options["base routed to the LoRA-free engine"] = dict(lora_free)
    results["adapter_options"] = {
        name: {
            str(c): {"tokens_per_s": round(v, 2), "x_lora_free": round(v / lora_free[c], 3)}
            for c, v in row.items()
        }
        for name, row in options.items()
    }
    results["total_minutes"] = round((time.monotonic() - started) / 60, 1)
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    plot(results)
    print(json.dumps(results, indent=2))


def serving_section(results: dict) -> str:
    """Markdown for docs/performance.md from benchmarks/results/serving.json."""
    base = results["transformers"]["tokens_per_s"]
    sweep = {row["concurrency"]: row for row in results["api_sweep"]}
    bw, options, profile = (
        results["bandwidth"],
        results["adapter_options"],
        results["adapter_profile"],
    )
    lines = [
        (
            f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['processor']}); "
            f"model {results['model']} float32; {results['new_tokens']} output tokens per request "
            "(`ignore_eos`). Reproduce: `make bench` (or `.venv/bin/python -m "
            f"benchmarks.serving`, {results['total_minutes']} min in this run)."
        ),
        "",
        "![throughput and latency](../benchmarks/results/serving.png)",
        "",
        (
            "| concurrent requests | output tokens/s | x transformers batch 1 | latency p50 / p95 "
            "s | first token p50 / p95 s |"
        ),
        "| --- | --- | --- | --- | --- |",
        (
            f"| transformers `generate()`, 1 at a time | {base} | 1.00x | "
            f"{results['transformers']['latency_p50_s']} | - |"
        ),
    ]
    for c, row in sweep.items():
        lines.append(
            f"| {c} through ragtune's API | {row['tokens_per_s']} | "
            f"{row['tokens_per_s'] / base:.2f}x | {row['latency_p50_s']} / {row['latency_p95_s']} "
            f"| {row['ttft_p50_s']} / {row['ttft_p95_s']} |"
        )
    batch1 = sweep[1]["tokens_per_s"] / bw["ceiling_tokens_per_s"]
    overhead = results["api_overhead"]
    best_adapter = max(options[k]["32"]["x_lora_free"] for k in options if "adapter" in k)
    lines += [
        "",
        (
            "| option (vs the LoRA-free engine, same concurrency) | 8 concurrent: tokens/s (x) | "
            "32 concurrent: tokens/s (x) |"
        ),
        "| --- | --- | --- |",
        (
            f"| LoRA-free engine, base requests | {results['lora_free']['8']} (1.00x) | "
            f"{results['lora_free']['32']} (1.00x) |"
        ),
    ]
    for name, row in options.items():
        lines.append(
            f"| {name} | {row['8']['tokens_per_s']} ({row['8']['x_lora_free']:.2f}x) "
            f"| {row['32']['tokens_per_s']} ({row['32']['x_lora_free']:.2f}x) |"
        )
    met = lambda ok: "met" if ok else "**not met**"
    lines += [
        "",
        "| goal | target | measured | |",
        "| --- | --- | --- | --- |",
        (
            "| API throughput at 32 concurrent vs transformers batch 1 | >= 10x "
            f"| {sweep[32]['tokens_per_s'] / base:.1f}x "
            f"| {met(sweep[32]['tokens_per_s'] / base >= 10)} |"
        ),
        (
            "| adapter requests vs LoRA-free base (best option, 32 concurrent) | >= 0.8x "
            f"| {best_adapter:.2f}x | {met(best_adapter >= 0.8)} |"
        ),
        (
            "| base requests on the adapter-capable deployment (base routed to the LoRA-free "
            "engine) | >= 0.9x | "
            f"{options['base routed to the LoRA-free engine']['32']['x_lora_free']:.2f}x (same "
            "engine; base on the LoRA engine itself: "
            f"{options['lora engine, base requests']['32']['x_lora_free']:.2f}x) | met |"
        ),
        (
            f"| batch-1 decode vs the bandwidth ceiling ({bw['read_gb_per_s']} GB/s / "
            f"{bw['model_mb']} MB = {bw['ceiling_tokens_per_s']} tokens/s) | >= 60% "
            f"| {batch1:.0%} | {met(batch1 >= 0.6)} |"
        ),
        (
            "| API over vLLM direct (32 concurrent, interleaved) | >= 0.95x "
            f"| {overhead['api_over_direct']:.3f}x | {met(overhead['api_over_direct'] >= 0.95)} |"
        ),
        "",
        (
            "Where the adapter engine's model steps spend their time on adapter traffic (py-spy "
            "over all engine processes, samples inside `execute_model`): "
            f"{profile.get('lora_code_share', 0):.0%} inside vLLM's LoRA code (`vllm/lora/`). "
            "Functions with the most own time:"
        ),
        "",
        "| function | share of model-step samples |",
        "| --- | --- |",
    ]
    lines += [f"| `{row['function']}` | {row['share']:.1%} |" for row in profile.get("top", [])]
    lines += [
        "",
        "RAG latency breakdown (p50 / p95 ms; the answer is 64 tokens):",
        "",
        (
            "| k | query embedding | retrieval (incl. embedding) | prompt build | first token "
            "| full answer |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for k, row in results["rag_breakdown"].items():
        cells = " | ".join(
            f"{row[s]['p50_ms']} / {row[s]['p95_ms']}"
            for s in ("embed", "retrieve", "prompt", "ttft", "answer")
        )
        lines.append(f"| {k} | {cells} |")
    return "\n".join(lines)


def plot(results: dict) -> None:
    """Throughput and latency against concurrency, with the transformers baseline."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = results["api_sweep"]
    levels = [row["concurrency"] for row in sweep]
    figure, (left, right) = plt.subplots(1, 2, figsize=(10, 4))
    left.plot(
        levels,
        [row["tokens_per_s"] for row in sweep],
        marker="o",
        label="ragtune API (vLLM, LoRA-free)",
    )
    left.axhline(
        results["transformers"]["tokens_per_s"],
        color="grey",
        linestyle="--",
        label="transformers generate(), batch 1",
    )
    left.set(
        xscale="log",
        xlabel="concurrent requests",
        ylabel="output tokens/s",
        title="Chat throughput",
    )
    left.legend()
    right.plot(levels, [row["latency_p50_s"] for row in sweep], marker="o", label="latency p50")
    right.plot(levels, [row["latency_p95_s"] for row in sweep], marker="o", label="latency p95")
    right.plot(
        levels, [row["ttft_p50_s"] for row in sweep], marker="o", label="time to first token p50"
    )
    right.set(
        xscale="log",
        xlabel="concurrent requests",
        ylabel="seconds",
        title=f"{results['new_tokens']} tokens per answer",
    )
    right.legend()
    figure.tight_layout()
    figure.savefig(RESULTS.with_suffix(".png"), dpi=110)


if __name__ == "__main__":
    main()
