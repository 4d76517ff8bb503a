"""vLLM's OpenAI API server, with the worker's idle spin bounded
(``python -m app.generation.vllm_server``).

After every model step, vLLM's worker process keeps polling for the next step for one
second (``SpinCondition.busy_loop_s``, hard-coded to 1 s in vLLM 0.32, no setting). On a GPU
box with many cores that costs nothing. On a laptop-sized CPU machine it takes a whole core
away from everything else for that second: measured on two cores, the app's query embedding
took 340-480 ms instead of 13 ms right after an answer. ``generator.worker_spin_s``
(``RAGTUNE_WORKER_SPIN_S`` here, default 0.1 s) sets that window; ``docs/performance.md`` has
the numbers. The window is longer than the gap between two decode steps, so under load the
worker still spins from step to step; with no window at all, generation slowed to 0.2
tokens/s here (as if wake-ups were missed), so the setting refuses 0.

The window is set by wrapping ``SpinCondition.__init__`` at import time, for conditions made
in the worker process (``VllmWorker-<rank>``). vLLM starts its engine core and worker with
multiprocessing's *spawn*, which imports this module again in each child as ``__mp_main__``,
so the wrapper is in place wherever a ``SpinCondition`` is made. If a vLLM release no longer
has that class or parameter, the server runs unchanged and says so.
"""

from __future__ import annotations

import inspect
import multiprocessing
import os
import runpy
import sys

SPIN_ENV = "RAGTUNE_WORKER_SPIN_S"
# Only the worker's wait for its next step is bounded. The engine core also waits on a
# SpinCondition, for the worker's output during each step; bounding that one cost 4% of
# throughput at 32 concurrent requests (a decode step there outlasts the window).
WORKER_PROCESS_PREFIX = "VllmWorker"


def bound_worker_spin(seconds: float) -> bool:
    """Make the vLLM worker's ``SpinCondition`` spin at most ``seconds``; False if this vLLM
    has no such knob."""
    try:
        from vllm.distributed.device_communicators import shm_broadcast
    except ImportError:
        return False
    condition = getattr(shm_broadcast, "SpinCondition", None)
    if condition is None or "busy_loop_s" not in inspect.signature(condition.__init__).parameters:
        return False
    if getattr(condition.__init__, "ragtune_spin_s", None) == seconds:
        return True
    original = getattr(condition.__init__, "__wrapped__", condition.__init__)

    def init(self, *args, **kwargs) -> None:
        if multiprocessing.current_process().name.startswith(WORKER_PROCESS_PREFIX):
            kwargs["busy_loop_s"] = seconds
        original(self, *args, **kwargs)

    init.__wrapped__ = original
    init.ragtune_spin_s = seconds
    condition.__init__ = init
    return True


def _apply_from_environment() -> None:
    value = os.environ.get(SPIN_ENV)
    if value is not None and not bound_worker_spin(float(value)):
        print(
            f"ragtune: this vLLM has no SpinCondition.busy_loop_s; {SPIN_ENV} is ignored",
            file=sys.stderr,
        )


_apply_from_environment()  # also runs in the spawned engine core and worker

if __name__ == "__main__":
    # sys.modules["__main__"] stays this module, so spawned children import it (and the wrapper)
    # again.
    runpy.run_module("vllm.entrypoints.openai.api_server", run_name="__main__")
