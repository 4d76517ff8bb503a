"""The one pool of ragtune's batch answers: many calls in flight, results in input order.

Used by the eval runner (``evals.runner.run_suite``) and by ``app.batch`` (``ragtune ask
--file``, ``ragtune compare``). Concurrent requests let a vLLM server batch them; one
request at a time leaves it mostly idle. Light on purpose (no numpy, no metrics), so the
command line can read ``DEFAULT_CONCURRENCY`` without importing the runner.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

DEFAULT_CONCURRENCY = 4
"""Answers in flight at once by default (``eval run``, ``ask --file``)."""

_In = TypeVar("_In")
_Out = TypeVar("_Out")


def map_in_order(
    fn: Callable[[_In], _Out], items: Sequence[_In], *, concurrency: int = DEFAULT_CONCURRENCY
) -> Iterator[_Out]:
    """``fn`` of each item, up to ``concurrency`` calls at once, yielded in input order.

    Each result is yielded as soon as it and every earlier one are done, so a caller can
    write output while later items still run. An exception from ``fn`` is raised when its
    item's turn comes; leaving early (that exception, Ctrl-C, ``close()``) cancels the
    calls not yet started and waits for the running ones.
    """
    pool = ThreadPoolExecutor(max_workers=max(1, concurrency))
    try:
        yield from pool.map(fn, items)
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
