"""What the serving benchmarks share: engines and apps as processes, and load waves.

Engines start through ``ragtune engine`` and the app through ``ragtune serve --no-engine``,
exactly as a deployment would run them; settings go in as RAGTUNE_* environment variables.
A load wave sends ``concurrency`` streaming chat requests at once with a fixed output
length (``ignore_eos``), so every request produces exactly ``max_tokens`` tokens.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent
RAGTUNE = str(Path(sys.executable).with_name("ragtune"))
PROMPTS = [
    "Write a short story about a lighthouse keeper.",
    "Explain how a bicycle stays upright.",
    "Describe a walk through a rainy city.",
    "List some reasons people keep a diary.",
]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def base_env(data_dir: Path, **settings: str) -> dict[str, str]:
    """Environment for ragtune processes on ``data_dir`` with RAGTUNE_* overrides."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")}
    env.update(RAGTUNE_SETTINGS_DIR=str(REPO), RAGTUNE_DATA_DIR=str(data_dir), **settings)
    return env


def train_sft(env: dict[str, str], config: str, name: str, steps: int, *sets: str) -> dict:
    """A few steps of a bundled SFT config through the CLI (no forgetting check); the
    run's manifest."""
    print(f"  training {name} ({steps} steps of {config})", file=sys.stderr, flush=True)
    extra = [arg for pair in sets for arg in ("--set", pair)]
    result = subprocess.run(
        [
            RAGTUNE,
            "train",
            "sft",
            "--config",
            config,
            "--name",
            name,
            "--max-steps",
            str(steps),
            "--set",
            "forgetting_check=false",
            *extra,
            "--overwrite",
            "--json",
        ],
        env=env,
        cwd=REPO,
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0:
        raise SystemExit(f"training {name} failed:\n{result.stderr[-3000:]}")
    return json.loads(result.stdout)


def wait_for(url: str, timeout_s: float, process: subprocess.Popen, log: Path) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"{process.args} exited; log {log}:\n{log.read_text()[-3000:]}")
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise SystemExit(f"{url} did not answer within {timeout_s} s; log {log}")


@contextlib.contextmanager
def process(
    args: list[str], env: dict[str, str], health_url: str, log: Path
) -> Iterator[subprocess.Popen]:
    """Run a ragtune process until its health URL answers; stop its whole group after."""
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("ab") as out:
        proc = subprocess.Popen(
            args, env=env, cwd=REPO, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        wait_for(health_url, 900, proc, log)
        yield proc
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextlib.contextmanager
def engine(data_dir: Path, name: str, **settings: str) -> Iterator[str]:
    """A vLLM engine (``ragtune engine``) with these generator settings; yields its /v1 URL."""
    port = free_port()
    env = base_env(data_dir, RAGTUNE_GENERATOR__PORT=str(port), **settings)
    print(f"  starting engine {name} ({settings})", file=sys.stderr, flush=True)
    with process(
        [RAGTUNE, "engine"],
        env,
        f"http://127.0.0.1:{port}/health",
        data_dir / "logs" / f"{name}.log",
    ):
        yield f"http://127.0.0.1:{port}/v1"


@contextlib.contextmanager
def app(data_dir: Path, generator_url: str, **settings: str) -> Iterator[str]:
    """``ragtune serve --no-engine`` in front of ``generator_url``; yields its base URL."""
    port = free_port()
    env = base_env(
        data_dir,
        RAGTUNE_GENERATOR__URL=generator_url,
        RAGTUNE_UI__PORT=str(port),
        RAGTUNE_API__MAX_CONCURRENT="128",
        RAGTUNE_API__MAX_QUEUE="256",
        **settings,
    )
    with process(
        [RAGTUNE, "serve", "--no-engine"],
        env,
        f"http://127.0.0.1:{port}/healthz",
        data_dir / "logs" / "app.log",
    ):
        yield f"http://127.0.0.1:{port}"


@dataclass
class Wave:
    """One load wave: every request's latency and time to first token."""

    concurrency: int
    tokens: int
    wall_s: float
    latencies: list[float]
    ttfts: list[float]

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.wall_s

    def summary(self) -> dict:
        q = lambda xs, p: (
            round(statistics.quantiles(xs, n=100)[p - 1], 3) if len(xs) > 1 else round(xs[0], 3)
        )
        return {
            "concurrency": self.concurrency,
            "requests": len(self.latencies),
            "tokens_per_s": round(self.tokens_per_s, 2),
            "latency_p50_s": q(self.latencies, 50),
            "latency_p95_s": q(self.latencies, 95),
            "ttft_p50_s": q(self.ttfts, 50),
            "ttft_p95_s": q(self.ttfts, 95),
        }


async def _one(
    client: httpx.AsyncClient,
    url: str,
    model: str,
    prompt: str,
    max_tokens: int,
    started: float,
    extra: dict,
) -> tuple[float, float, int]:
    body = {
        "model": model,
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": max_tokens,
        "temperature": 0,
        "stream": True,
        "ignore_eos": True,
        **extra,
    }
    first = None
    async with client.stream("POST", f"{url}/chat/completions", json=body) as response:
        if response.status_code != 200:
            raise SystemExit(
                f"{url} answered {response.status_code}: {(await response.aread())[:500]!r}"
            )
        async for line in response.aiter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            if "error" in event:
                raise SystemExit(f"{url}: {line[:500]}")
            if first is None and any(
                c.get("delta", {}).get("content") for c in event.get("choices", [])
            ):
                first = time.perf_counter() - started
    return time.perf_counter() - started, first or 0.0, max_tokens


async def _wave(
    url: str, model: str, concurrency: int, requests: int, max_tokens: int, extra: dict
) -> Wave:
    limits = httpx.Limits(max_connections=concurrency + 4)
    async with httpx.AsyncClient(timeout=900, limits=limits) as client:
        semaphore = asyncio.Semaphore(concurrency)

        async def run(index: int):
            async with semaphore:
                started = time.perf_counter()
                return await _one(
                    client, url, model, PROMPTS[index % len(PROMPTS)], max_tokens, started, extra
                )

        began = time.perf_counter()
        results = await asyncio.gather(*(run(i) for i in range(requests)))
        wall = time.perf_counter() - began
    return Wave(
        concurrency,
        sum(r[2] for r in results),
        wall,
        [r[0] for r in results],
        [r[1] for r in results],
    )


def wave(
    url: str,
    model: str,
    concurrency: int,
    *,
    max_tokens: int = 64,
    waves: int = 2,
    extra: dict | None = None,
) -> Wave:
    """``waves * concurrency`` requests, ``concurrency`` at a time, each ``max_tokens`` long."""
    return asyncio.run(_wave(url, model, concurrency, waves * concurrency, max_tokens, extra or {}))


def warm_up(url: str, model: str = "base") -> None:
    wave(url, model, 2, max_tokens=8, waves=1)
