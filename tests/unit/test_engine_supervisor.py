"""The engine supervisor restarts a dead engine process, a bounded number of times."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

from app.generation.engine import EngineSupervisor
from app.settings import GeneratorSettings
from tests.helpers import wait_for


class SleepEngine:
    """Stands in for VLLMEngine: its 'server' is a sleep process."""

    def __init__(self) -> None:
        self.settings = GeneratorSettings(startup_timeout_s=5)
        self.log_path = Path("vllm.log")
        self.process: subprocess.Popen | None = None
        self.starts = 0

    def start(self) -> None:
        self.process = subprocess.Popen(["sleep", "60"])
        self.starts += 1

    def wait_healthy(self) -> None:
        pass


def test_a_killed_engine_is_restarted_until_the_limit():
    engine, messages = SleepEngine(), []
    engine.start()
    supervisor = EngineSupervisor(
        engine, max_restarts=1, report=messages.append, poll_s=0.05
    ).start()
    engine.process.kill()
    assert wait_for(lambda: engine.starts == 2 and "ready again" in " ".join(messages))
    assert "restarting it (restart 1 of at most 1" in messages[0]
    engine.process.kill()
    assert wait_for(lambda: "not restarting it again" in messages[-1])
    assert engine.starts == 2
    supervisor.stop()


def test_a_stopped_supervisor_leaves_a_deliberate_shutdown_alone():
    engine, messages = SleepEngine(), []
    engine.start()
    supervisor = EngineSupervisor(
        engine, max_restarts=3, report=messages.append, poll_s=0.05
    ).start()
    supervisor.stop()
    engine.process.kill()
    time.sleep(0.3)
    assert engine.starts == 1 and not messages
