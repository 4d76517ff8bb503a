"""Run a synchronous token stream in a worker thread, abortable from the event loop.

The generator interface is synchronous (the CLI and Gradio use it directly). The API
needs to stop a generation when the client goes away or the time is up: the worker checks
a stop flag between tokens and then closes the stream itself, which closes the HTTP
connection to vLLM, and vLLM aborts the request.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncIterator, Callable, Iterator

from indexing.errors import RagtuneError

_DONE = object()


class StreamTimeout(RagtuneError, TimeoutError):
    """The generation did not finish within the request timeout (the API answers 504)."""

    status = 504
    error_type = "timeout"
    label = "timeout"


async def abortable(start: Callable[[], Iterator[str]], timeout_s: float) -> AsyncIterator[str]:
    """Yield the deltas of ``start()``; leaving the loop early (disconnect, timeout) aborts it."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue = asyncio.Queue()
    stop = threading.Event()

    def hand_over(item) -> None:
        try:
            loop.call_soon_threadsafe(queue.put_nowait, item)
        except RuntimeError:  # the event loop is gone: nobody is listening any more
            stop.set()

    def work() -> None:
        stream = None
        try:
            stream = start()
            for delta in stream:
                if stop.is_set():
                    break
                hand_over(delta)
        except BaseException as exc:  # noqa: BLE001 (handed to the event loop, which re-raises it)
            hand_over(exc)
        finally:
            if stream is not None and hasattr(stream, "close"):
                stream.close()
            hand_over(_DONE)

    worker = threading.Thread(target=work, name="ragtune-stream", daemon=True)
    worker.start()
    deadline = loop.time() + timeout_s
    try:
        while True:
            remaining = deadline - loop.time()
            if remaining <= 0:
                raise StreamTimeout(f"no complete answer within {timeout_s:g} s")
            try:
                item = await asyncio.wait_for(queue.get(), remaining)
            except TimeoutError:
                raise StreamTimeout(f"no complete answer within {timeout_s:g} s") from None
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        stop.set()
