"""Re-chunking a collection's documents: into scratch collections, or the collection itself.

Retrieval tuning (``evals.retrieval_tuning``) compares chunk sizes by re-chunking the
collection's documents, the files its chunks' ``source`` metadata lists (uploads
included: they are stored files too), through the normal ingest pipeline. The scratch
collections live in a store of their own in a temporary folder, so no listing of the
user's store ever shows them, and they are removed with that folder when the ``with``
block ends, also after an exception or Ctrl-C (a kill -9 leaves a ``ragtune-tune-*``
folder in the system's temporary directory). ``apply_choice`` re-chunks the collection
itself to a tuned size and stores the tuned retrieval setting on it.
"""

from __future__ import annotations

import random
import shutil
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Self

from indexing.chunking import ChunkingConfig
from indexing.collection import Collection, RetrievalChoice
from indexing.config import IndexingSettings, VectorStoreSettings
from indexing.embedding import Embedder
from indexing.errors import RagtuneError
from indexing.pipeline import IngestPipeline, IngestReport
from indexing.store import VectorStore


class TuningError(RagtuneError, ValueError):
    """Retrieval tuning cannot run on this input; the message names what is wrong."""

    label = "retrieval_tuning"


@dataclass
class Corpus:
    """The files re-chunked for tuning.

    ``files``: the chosen source paths (every labelled one, plus a seeded sample of the
    others up to the budget's chunk count); ``missing``: sources no longer on disk (they
    cannot be re-chunked); ``sampled``: True when some files of the collection are left
    out; ``chunking``: the collection's recorded chunking, whose size the grid varies.
    """

    files: list[str]
    total_files: int
    chunking: ChunkingConfig
    missing: list[str] = field(default_factory=list)
    sampled: bool = False

    def describe(self) -> str:
        """One line for the report, e.g. ``12 of 40 files (seeded sample)``."""
        text = f"{len(self.files)} of {self.total_files} files"
        if self.sampled:
            text += " (a seeded sample: every labelled file plus others up to the budget)"
        if self.missing:
            text += f"; {len(self.missing)} no longer on disk: {', '.join(self.missing[:5])}"
        return text


def plan_corpus(
    collection: Collection,
    labelled: set[str],
    default_chunking: ChunkingConfig,
    *,
    max_chunks: int,
    seed: int,
) -> Corpus:
    """Which of ``collection``'s files to re-chunk: all when they hold at most
    ``max_chunks`` chunks (at the current size), else every file in ``labelled`` and a
    seeded random sample of the rest that fits. Files missing on disk are left out."""
    counts = collection.file_counts()
    chunking = (
        ChunkingConfig.from_signature(collection.chunking)
        if collection.chunking
        else default_chunking
    )
    present = [source for source in counts if Path(source).is_file()]
    missing = sorted(set(counts) - set(present))
    chosen = [source for source in present if source in labelled]
    total = sum(counts[source] for source in chosen)
    others = sorted(set(present) - set(chosen))
    random.Random(seed).shuffle(others)
    for source in others:
        if total + counts[source] <= max_chunks:
            chosen.append(source)
            total += counts[source]
    return Corpus(
        files=sorted(chosen),
        total_files=len(counts),
        chunking=chunking,
        missing=missing,
        sampled=len(chosen) < len(present),
    )


class ScratchCollections:
    """Scratch collections of one corpus at chosen chunk sizes, in a temporary store.

    Use as a context manager; ``build(size)`` ingests the corpus at ``size`` tokens (the
    collection's strategy and overlap) and returns the scratch store and collection name.
    Raises ``TuningError`` when no file of the corpus could be ingested.
    """

    def __init__(
        self, corpus: Corpus, embedder: Embedder, settings: IndexingSettings, bm25_language: str
    ) -> None:
        self.corpus = corpus
        self.embedder = embedder
        self.settings = settings
        self.bm25_language = bm25_language
        self.folder: Path | None = None
        self.store: VectorStore | None = None
        self.notes: list[str] = []

    def __enter__(self) -> Self:
        self.folder = Path(tempfile.mkdtemp(prefix="ragtune-tune-"))
        self.store = VectorStore(
            VectorStoreSettings(mode="embedded"),
            self.folder / "chroma",
            self.folder / "indexes",
            bm25_language=self.bm25_language,
        )
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.store is not None:
            for name in self.store.collection_names():
                self.store.delete_collection(name)
        if self.folder is not None:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.store = self.folder = None

    def build(self, chunk_tokens: int) -> tuple[VectorStore, str]:
        """The corpus ingested at ``chunk_tokens``: (scratch store, collection name)."""
        if self.store is None:
            raise RuntimeError("ScratchCollections.build outside its with block")
        name = f"tune-{chunk_tokens}"
        base = self.corpus.chunking
        report = IngestPipeline(self.store, self.embedder, self.settings).ingest(
            [Path(source) for source in self.corpus.files],
            name,
            chunking=ChunkingConfig(base.strategy, chunk_tokens, base.chunk_overlap),
            show_progress=False,
        )
        failed = [f for f in report.files if f.status == "failed"]
        if failed and len(failed) == len(report.files):
            raise TuningError(
                f"re-chunking at {chunk_tokens} tokens failed for every file, e.g. "
                f"{failed[0].path}: {failed[0].reason}"
            )
        if failed:
            self.notes.append(
                f"{chunk_tokens} tokens: {len(failed)} file(s) failed to re-chunk, e.g. "
                f"{failed[0].path}: {failed[0].reason}"
            )
        return self.store, name


def apply_choice(
    store: VectorStore,
    embedder: Embedder,
    indexing_settings: IndexingSettings,
    collection: str,
    choice: RetrievalChoice | None,
    *,
    progress: bool = True,
) -> IngestReport | None:
    """Make RAG on ``collection`` use ``choice``: re-chunk the collection to its chunk size
    (through the ingest pipeline; the report is returned, None when the size is already
    right) and store it on the collection. ``choice`` None goes back to the settings
    (the chunking is kept). Raises ``TuningError`` when files to re-chunk are missing on
    disk or fail to re-chunk (the setting is then not stored), ``StoreError`` for an
    unknown collection, ``indexing.locks.CollectionBusy`` while another write runs."""
    target = store.collection(collection, embedding_model=embedder.name)
    report = None
    current = (
        ChunkingConfig.from_signature(target.chunking)
        if target.chunking
        else ChunkingConfig(indexing_settings.chunking, indexing_settings.chunk_size)
    )
    if choice is not None and choice.chunk_tokens != current.chunk_size:
        missing = sorted(s for s in target.sources() if not Path(s).is_file())
        if missing:
            raise TuningError(
                f"cannot re-chunk {collection!r}: {len(missing)} file(s) are no longer on disk "
                f"({', '.join(missing[:5])}); ingest them again or prune them first"
            )
        report = IngestPipeline(store, embedder, indexing_settings).ingest(
            [],
            collection,
            chunking=replace(current, chunk_size=choice.chunk_tokens),
            show_progress=progress,
        )
        failed = [f for f in report.files if f.status == "failed"]
        if failed:
            raise TuningError(
                f"re-chunking {collection!r} failed for {len(failed)} file(s), e.g. "
                f"{failed[0].path}: {failed[0].reason}; the retrieval setting was not stored"
            )
    with store.writing(collection, embedding_model=embedder.name) as writable:
        writable.set_retrieval(choice)
    return report
