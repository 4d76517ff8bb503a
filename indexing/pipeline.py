"""Ingest files into a collection: read -> chunk -> embed -> store, skipping unchanged files.

Idempotent by construction: chunk ids derive from the source path, content hash and
position, and a file whose stored chunks are complete for its current hash is skipped
before anything is read or embedded. A changed file has its new chunks written first and
its old ones deleted after, so an interrupted run never loses the previous version.
A file that fails is reported with its reason and leaves the collection as it was.
A file read only in part carries notices saying what was left out, and paths the folder
walk passed over (symlinked folders, dangling links, ...) are listed in the report.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from tqdm import tqdm

from indexing.chunking import ChunkingConfig, chunk_documents
from indexing.collection import WritableCollection
from indexing.config import IndexingSettings
from indexing.discovery import Discovery, PathNote, discover
from indexing.embedding import Embedder
from indexing.readers import FileRejected, check_file, extract_file
from indexing.store import StoreError, VectorStore

Status = Literal["added", "updated", "skipped", "failed", "pruned"]


@dataclass
class FileResult:
    """The outcome for one file; ``notices`` say what part of it was not indexed."""

    path: str
    status: Status
    chunks: int = 0
    reason: str = ""
    notices: list[str] = field(default_factory=list)


@dataclass
class IngestReport:
    """Everything an ingest run did, file by file, and the paths the folder walk passed over."""

    collection: str
    files: list[FileResult] = field(default_factory=list)
    embedded: int = 0
    chunking: str = ""
    notices: list[str] = field(default_factory=list)
    passed_over: list[PathNote] = field(default_factory=list)

    def count(self, status: Status) -> int:
        """How many files ended with ``status``."""
        return sum(1 for f in self.files if f.status == status)

    def summary(self) -> dict[str, int]:
        """Counts per status plus the number of embeddings computed."""
        counts = {s: self.count(s) for s in ("added", "updated", "skipped", "failed", "pruned")}
        return {**counts, "embedded_chunks": self.embedded}

    def to_dict(self) -> dict:
        """JSON-ready form for ``--json``."""
        return {
            "collection": self.collection,
            "chunking": self.chunking,
            "notices": self.notices,
            "summary": self.summary(),
            "files": [vars(f) for f in self.files],
            "passed_over": [vars(p) for p in self.passed_over],
        }


def file_hash(path: Path) -> str:
    """SHA-256 of the file's bytes."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class IngestPipeline:
    """Ingests files into collections of one store with one embedder."""

    def __init__(self, store: VectorStore, embedder: Embedder, settings: IndexingSettings) -> None:
        self.store = store
        self.embedder = embedder
        self.settings = settings

    def default_chunking(self) -> ChunkingConfig:
        """The chunking that new collections get from the settings."""
        s = self.settings
        return ChunkingConfig(s.chunking, s.chunk_size, s.chunk_overlap)

    def ingest(
        self,
        paths: list[Path],
        collection_name: str,
        *,
        prune: bool = False,
        tags: list[str] | None = None,
        chunking: ChunkingConfig | None = None,
        show_progress: bool = True,
        on_file: Callable[[int, int, FileResult], None] | None = None,
    ) -> IngestReport:
        """Ingest ``paths`` into ``collection_name`` (created if needed).

        ``chunking`` None keeps the collection's recorded chunking (the settings' for a new
        collection); a different one re-chunks every file of the collection, so a
        collection never mixes two strategies. Raises ``StoreError`` for a bad name or a
        collection of another embedder, ``indexing.locks.CollectionBusy`` while another
        ingest writes to it.
        """
        requested = chunking or self.default_chunking()
        with self.store.writing(
            collection_name,
            embedding_model=self.embedder.name,
            create=True,
            chunking=requested.signature(),
        ) as collection:
            return self._ingest(
                collection,
                paths,
                requested,
                rechunk=chunking is not None,
                prune=prune,
                tags=tags,
                show_progress=show_progress,
                on_file=on_file,
            )

    def _ingest(
        self,
        collection: WritableCollection,
        paths: list[Path],
        requested: ChunkingConfig,
        *,
        rechunk: bool,
        prune: bool,
        tags: list[str] | None,
        show_progress: bool,
        on_file: Callable[[int, int, FileResult], None] | None,
    ) -> IngestReport:
        report = IngestReport(collection.name)
        recorded = collection.chunking
        if not recorded:  # a collection from before chunking was recorded
            recorded = requested.signature()
            collection.set_chunking(recorded)
        found = discover(paths, self.settings.extensions)
        files = found.files
        if rechunk and recorded != requested.signature():
            previous = sorted(collection.sources())
            report.notices.append(
                f"re-chunking collection {collection.name!r}: {recorded} -> "
                f"{requested.signature()} ({len(previous)} stored files)"
            )
            collection.set_chunking(requested.signature())
            recorded = requested.signature()
            files = list(dict.fromkeys([*files, *(Path(p) for p in previous)]))
        report.chunking = recorded
        config = ChunkingConfig.from_signature(recorded)
        tag_field = ",".join(["", *sorted(set(tags or [])), ""]) if tags else ""
        report.files.extend(FileResult(n.path, "failed", reason=n.reason) for n in found.failed)
        report.passed_over = found.passed_over
        embedded_before = self.embedder.embedded_count
        bar = tqdm(
            files, desc=f"ingest -> {collection.name}", unit="file", disable=not show_progress
        )
        for index, path in enumerate(bar, 1):
            result = self._ingest_file(collection, path, config, tag_field)
            report.files.append(result)
            if on_file:
                on_file(index, len(files), result)
        if prune:
            report.files.extend(self._prune(collection, found, {str(f) for f in files}))
        report.embedded = self.embedder.embedded_count - embedded_before
        return report

    def _ingest_file(
        self, collection: WritableCollection, path: Path, config: ChunkingConfig, tags: str
    ) -> FileResult:
        source = str(path)
        version = f"{config.signature()}|{tags}"
        try:
            if path.suffix.lower() not in {e.lower() for e in self.settings.extensions}:
                supported = " ".join(self.settings.extensions)
                raise FileRejected(f"unsupported file type {path.suffix or '(none)'} ({supported})")
            check_file(path, max_file_mb=self.settings.max_file_mb)
            digest = file_hash(path)
            state = collection.file_state(source)
            if state.is_complete(digest, version):
                return FileResult(source, "skipped", chunks=len(state.ids))
            extraction = extract_file(path, max_file_mb=self.settings.max_file_mb)
            chunks = chunk_documents(extraction.documents, config, tokenizer=self.embedder.tokenize)
            if not chunks:
                raise FileRejected("no text content after chunking")
            ids = [_chunk_id(source, digest, i) for i in range(len(chunks))]
            metadatas = [
                {
                    **chunk.metadata,
                    "source": source,
                    "file_name": path.name,
                    "file_hash": digest,
                    "version": version,
                    "tags": tags,
                    "chunk_index": i,
                    "chunk_count": len(chunks),
                }
                for i, chunk in enumerate(chunks)
            ]
            texts = [chunk.text for chunk in chunks]
            embeddings = self.embedder.embed(texts)
            collection.upsert(ids, texts, embeddings, metadatas)
            collection.delete_ids([i for i in state.ids if i not in set(ids)])
            status = "updated" if state.ids else "added"
            return FileResult(source, status, chunks=len(chunks), notices=extraction.notices)
        except FileRejected as exc:
            return FileResult(source, "failed", reason=str(exc))
        except OSError as exc:
            return FileResult(source, "failed", reason=f"cannot read: {exc.strerror or exc}")

    def remove_file(self, collection_name: str, source: str) -> int:
        """Delete one file's chunks from a collection (both indexes); returns how many.

        Raises ``StoreError`` when the collection has no chunks of ``source``.
        """
        with self.store.writing(collection_name, embedding_model=self.embedder.name) as collection:
            removed = collection.delete_file(source)
            if not removed:
                raise StoreError(f"collection {collection_name!r} has no file {source!r}")
            return removed

    def _prune(
        self, collection: WritableCollection, found: Discovery, seen: set[str]
    ) -> list[FileResult]:
        folders = [str(f) + os.sep for f in found.walked_folders]
        unknown = [str(u) + os.sep for u in found.unlisted_folders]  # its files may still exist
        results = []
        for source in sorted(collection.sources()):
            if source in seen or not any(source.startswith(f) for f in folders):
                continue
            if any(source.startswith(u) for u in unknown):
                continue
            results.append(FileResult(source, "pruned", chunks=collection.delete_file(source)))
        return results


def _chunk_id(source: str, digest: str, index: int) -> str:
    return f"{hashlib.sha1(source.encode()).hexdigest()[:16]}-{digest[:16]}-{index:05d}"
