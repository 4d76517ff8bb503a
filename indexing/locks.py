"""One writer per collection: an exclusive, non-blocking file lock held for a whole ingest.

Two ingests into one collection (two terminals, the CLI and the web app) would otherwise
interleave their writes and their BM25 rebuilds. The second one is refused at once with
a clear "collection busy" message. The lock is an ``flock`` on a file beside the BM25
sidecar, so the operating system releases it when a process dies, even by kill -9.
``VectorStore.writing`` takes it; nothing else should.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from indexing.store import StoreError, validate_collection_name


class CollectionBusy(StoreError):
    """Another process is writing to the collection."""


@contextmanager
def collection_lock(folder: Path, collection: str) -> Iterator[None]:
    """Hold the write lock of ``collection`` (lock files live in ``folder``)."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{validate_collection_name(collection)}.lock"
    handle = path.open("a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            raise CollectionBusy(
                f"collection {collection!r} is busy: an ingest is already running ({holder}); "
                "try again when it has finished"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()}")
        handle.flush()
        yield
    finally:
        handle.close()
