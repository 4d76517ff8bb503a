"""The real stack, started once per test session: `ragtune serve` with its own vLLM engine.

The docs folder is ingested into a temporary data folder, then `ragtune serve` starts the
real vLLM server (the converted default model) on a free port and the web app on
another. Teardown stops serve with Ctrl-C and checks the engine went down with it.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import openai
import pytest

from app.models import pull_default_generator
from app.settings import load_settings
from tests.conftest import REPO

RAGTUNE = str(Path(sys.executable).with_name("ragtune"))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def port_open(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


@dataclass
class Stack:
    env: dict[str, str]
    app_url: str
    engine_url: str
    data_dir: Path
    serve: subprocess.Popen | None = None

    def ragtune(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess:
        """Run the ragtune CLI against this stack."""
        return subprocess.run(
            [RAGTUNE, *args],
            env=self.env,
            capture_output=True,
            text=True,
            timeout=timeout,
            cwd=REPO,
            check=False,
        )

    @property
    def serve_log(self) -> Path:
        return self.data_dir / "serve.log"

    def start(self, timeout_s: float = 600) -> None:
        """Start `ragtune serve` and wait until its engine answers."""
        log = self.serve_log.open("a")
        self.serve = subprocess.Popen(
            [RAGTUNE, "serve"], env=self.env, cwd=REPO, stdout=log, stderr=log
        )
        if not wait_healthy(self, timeout_s, self.serve):
            self.serve.kill()
            pytest.fail(
                f"ragtune serve did not become ready in {timeout_s:.0f} s:\n"
                f"{self.serve_log.read_text()[-3000:]}"
            )

    def stop(self) -> None:
        """Ctrl-C `ragtune serve`; its engine must go down with it."""
        self.serve.send_signal(signal.SIGINT)
        self.serve.wait(timeout=90)
        assert not port_open(int(self.env["RAGTUNE_GENERATOR__PORT"])), (
            "the vLLM engine outlived `ragtune serve`"
        )


def wait_healthy(stack: Stack, timeout_s: float, serve: subprocess.Popen | None = None) -> bool:
    """Wait until /healthz reports the generator up; False on timeout or if serve exits."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if serve is not None and serve.poll() is not None:
            return False
        try:
            if httpx.get(f"{stack.app_url}/healthz", timeout=2).json()["generator"]:
                return True
        except (httpx.HTTPError, ValueError, KeyError):
            pass
        time.sleep(2)
    return False


def make_stack(data_dir: Path, **env: str) -> Stack:
    """A stack on ``data_dir`` (docs ingested as collection ``docs``), not yet started."""
    os.environ.setdefault("RAGTUNE_SETTINGS_DIR", str(REPO))
    model_dir = pull_default_generator(load_settings().models_dir)  # no-op once pulled
    variants = data_dir.parent / "variants.yaml"
    variants.write_text(
        "variants:\n  zero-shot: {mode: zero-shot}\n"
        "  few-shot: {mode: few-shot, fewshot_count: 2}\n"
        "  rag: {mode: rag, collection: docs, k: 3}\n"
    )
    engine_port, app_port = free_port(), free_port()
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")},
        "RAGTUNE_SETTINGS_DIR": str(REPO),
        "RAGTUNE_DATA_DIR": str(data_dir),
        "RAGTUNE_GENERATOR__MODEL": str(model_dir),
        "RAGTUNE_GENERATOR__PORT": str(engine_port),
        "RAGTUNE_GENERATOR__SEED": "0",
        "RAGTUNE_UI__PORT": str(app_port),
        "RAGTUNE_VARIANTS_FILE": str(variants),
        **env,
    }
    stack = Stack(
        env, f"http://127.0.0.1:{app_port}", f"http://127.0.0.1:{engine_port}/v1", data_dir
    )
    ingest = stack.ragtune("ingest", "docs", "--collection", "docs")
    assert ingest.returncode == 0, ingest.stderr
    return stack


@pytest.fixture(scope="session")
def stack(tmp_path_factory) -> Stack:
    stack = make_stack(tmp_path_factory.mktemp("stack") / "data")
    stack.start()
    yield stack
    stack.stop()


@pytest.fixture(scope="session")
def adapter(stack) -> str:
    """A LoRA adapter in the stack's registry (test_adapters_real trains the same one)."""
    if not (stack.data_dir / "adapters" / "it-lora" / "manifest.json").exists():
        result = stack.ragtune(
            "train",
            "sft",
            "--config",
            "configs/train/sft_lora.yaml",
            "--name",
            "it-lora",
            "--max-steps",
            "2",
            "--set",
            "forgetting_check=false",
            "--set",
            "batch_size=4",
            "--json",
            timeout=900,
        )
        assert result.returncode == 0, result.stderr[-3000:]
    return "it-lora"


@pytest.fixture
def client(stack) -> openai.OpenAI:
    """The official openai client on the stack's API (no key needed on loopback)."""
    return openai.OpenAI(
        base_url=f"{stack.app_url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=300
    )
