"""The engine launcher bounds vLLM's worker spin, in the installed vLLM and in spawned children."""

from __future__ import annotations

import multiprocessing
import subprocess
import sys

import pytest

from app.generation.engine import SERVER_MODULE, VLLMEngine
from app.generation.vllm_server import SPIN_ENV, bound_worker_spin
from app.settings import GeneratorSettings
from tests.conftest import REPO

shm_broadcast = pytest.importorskip("vllm.distributed.device_communicators.shm_broadcast")


def _spin_of_a_new_condition() -> float:
    import zmq

    condition = shm_broadcast.SpinCondition(True, zmq.Context(), "ipc:///tmp/ragtune-spin-test")
    return condition.busy_loop_s


def _report_spin(queue) -> None:
    queue.put(_spin_of_a_new_condition())


def test_the_installed_vllm_has_the_knob_and_only_the_worker_gets_the_bound(monkeypatch):
    original = shm_broadcast.SpinCondition.__init__
    this_process = multiprocessing.current_process()
    try:
        assert bound_worker_spin(0.05)
        assert _spin_of_a_new_condition() == 1  # the engine core and API server keep vLLM's spin
        monkeypatch.setattr(this_process, "name", "VllmWorker-0")
        assert _spin_of_a_new_condition() == 0.05
        assert bound_worker_spin(0.2)  # re-bounding wraps the original, not the wrapper
        assert _spin_of_a_new_condition() == 0.2
    finally:
        shm_broadcast.SpinCondition.__init__ = original


def test_a_spawned_worker_of_the_launcher_gets_the_bound_too(tmp_path):
    """vLLM's engine core and worker are spawned: a child imports the parent's main module again
    (for ``python -m app.generation.vllm_server``, the launcher itself), so the wrapper applied
    at import reaches them. Here the main module is a script importing the launcher."""
    script = (
        "import multiprocessing\n"
        f"import {SERVER_MODULE}\n"
        "from tests.unit.test_vllm_server import _report_spin\n"
        "if __name__ == '__main__':\n"
        "    context = multiprocessing.get_context('spawn')\n"
        "    queue = context.Queue()\n"
        "    worker = context.Process(target=_report_spin, args=(queue,), name='VllmWorker-0')\n"
        "    worker.start()\n"
        "    print(queue.get(timeout=240))\n"
        "    worker.join()\n"
    )
    (tmp_path / "spawner.py").write_text(script)
    env = {"PYTHONPATH": ":".join(sys.path), SPIN_ENV: "0.25"}
    result = subprocess.run(
        [sys.executable, str(tmp_path / "spawner.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().splitlines()[-1] == "0.25"


def test_the_engine_runs_the_launcher_with_the_configured_spin(tmp_path):
    engine = VLLMEngine(GeneratorSettings(), "some/model", tmp_path / "vllm.log")
    assert engine.command()[1:3] == ["-m", SERVER_MODULE]
    assert engine.environment()[SPIN_ENV] == "0.1"
    keep_vllm_default = VLLMEngine(
        GeneratorSettings(worker_spin_s=None), "some/model", tmp_path / "vllm.log"
    )
    assert SPIN_ENV not in keep_vllm_default.environment()


def test_the_model_threads_get_every_core_of_a_small_machine(tmp_path, monkeypatch):
    monkeypatch.delenv("VLLM_CPU_NUM_OF_RESERVED_CPU", raising=False)
    log = tmp_path / "vllm.log"

    def reserved(cpus: int, **settings) -> str | None:
        monkeypatch.setattr("app.generation.engine.usable_cpus", lambda: cpus)
        env = VLLMEngine(GeneratorSettings(**settings), "some/model", log).environment()
        return env.get("VLLM_CPU_NUM_OF_RESERVED_CPU")

    assert reserved(2) == "0" and reserved(1) == "0"  # vLLM would leave the model one core
    assert reserved(16) is None  # vLLM's own reserve for its scheduler
    assert reserved(16, cpu_reserved_cores=0) == "0" and reserved(2, cpu_reserved_cores=1) == "1"
    monkeypatch.setenv("VLLM_CPU_NUM_OF_RESERVED_CPU", "1")  # the user's environment wins
    assert reserved(2) == "1"
