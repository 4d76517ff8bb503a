"""One collection of the vector store, as the rest of ragtune sees it.

``VectorStore.collection`` hands out a ``Collection`` (reads: counts, files, chunks,
similarity queries, the recorded embedder and chunking); ``VectorStore.writing`` hands
out a ``WritableCollection``, which adds the writes and exists only while the store holds
the collection's write lock and keeps its BM25 sidecar in step. Chroma's own collection
object never leaves this module and ``indexing.store``.

Every chunk carries its file's ``source`` path, content ``file_hash`` and the file's
``chunk_count``, so the pipeline can tell an unchanged file (all chunks present with the
current hash) from a changed or half-written one without a manifest that could drift.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import Any, NamedTuple

import numpy as np

PAGE = 5000  # records per get: one large get exceeds SQLite's limits
WRITE_BATCH = 1000  # records per upsert that Chroma accepts


@dataclass
class FileState:
    """What the store holds for one source file."""

    ids: list[str]
    versions: set[tuple[str, str]]
    expected_count: int | None

    def is_complete(self, file_hash: str, signature: str) -> bool:
        """True when every chunk of the file is stored for this content and chunking."""
        return self.versions == {(file_hash, signature)} and self.expected_count == len(self.ids)


@dataclass
class Chunks:
    """Stored chunks: three lists of equal length, one entry per chunk, in the same order."""

    ids: list[str]
    texts: list[str]
    metadatas: list[dict[str, Any]]


@dataclass(frozen=True)
class RetrievalChoice:
    """How RAG retrieves from one collection (``ragtune retrieval tune`` picks one).

    ``chunk_tokens``: the chunk size in embedder tokens; ``retriever``: dense, bm25 or
    hybrid; ``fusion``: hybrid's ``convex`` or ``rrf`` ('' for the others); ``alpha``: the
    dense weight of convex fusion, 0 to 1 (None otherwise); ``k``: chunks in a prompt.
    """

    chunk_tokens: int
    retriever: str
    fusion: str = ""
    alpha: float | None = None
    k: int = 4

    def label(self) -> str:
        """The retriever part in words, e.g. ``hybrid convex 0.70``, ``hybrid rrf``, ``bm25``."""
        if self.retriever != "hybrid":
            return self.retriever
        return "hybrid rrf" if self.fusion == "rrf" else f"hybrid convex {self.alpha:.2f}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RetrievalChoice:
        """Parse ``to_dict``'s form (unknown keys ignored); ``KeyError``/``TypeError`` if bad."""
        return cls(
            chunk_tokens=int(data["chunk_tokens"]),
            retriever=str(data["retriever"]),
            fusion=str(data.get("fusion") or ""),
            alpha=None if data.get("alpha") is None else float(data["alpha"]),
            k=int(data["k"]),
        )


class Hit(NamedTuple):
    """A chunk found by a similarity query; ``distance`` is the cosine distance (0 to 2)."""

    chunk_id: str
    text: str
    metadata: dict[str, Any]
    distance: float


class Collection:
    """Read access to one collection; obtained from ``VectorStore.collection``."""

    def __init__(self, chroma: Any) -> None:
        self._chroma = chroma

    @property
    def name(self) -> str:
        """The collection's name."""
        return self._chroma.name

    @property
    def metadata(self) -> dict[str, Any]:
        """The collection's recorded metadata (embedder, chunking, revision)."""
        return dict(self._chroma.metadata or {})

    @property
    def embedding_model(self) -> str:
        """The embedder the collection was built with ('' if not recorded)."""
        return self.metadata.get("embedding_model", "")

    @property
    def chunking(self) -> str:
        """The chunking signature recorded for the collection ('' for an old collection)."""
        return self.metadata.get("chunking", "")

    @property
    def retrieval(self) -> RetrievalChoice | None:
        """The retrieval setting stored for this collection (None: the global settings)."""
        raw = self.metadata.get("retrieval") or ""
        try:
            return RetrievalChoice.from_dict(json.loads(raw)) if raw else None
        except (ValueError, KeyError, TypeError, AttributeError):
            return None  # written by a newer or broken version: fall back to the settings

    @property
    def revision(self) -> str:
        """Changes with every write that changes chunks ('' before the first)."""
        return self.metadata.get("revision", "")

    def count(self) -> int:
        """Number of chunks."""
        return self._chroma.count()

    def chunks(self, ids: list[str] | None = None) -> Chunks:
        """Every chunk (``ids`` None, fetched in pages), or those with the given ids."""
        if ids is not None:
            got = self._chroma.get(ids=ids, include=["documents", "metadatas"])
            return Chunks(list(got["ids"]), list(got["documents"]), list(got["metadatas"]))
        got = self._get_all(["documents", "metadatas"])
        return Chunks(got["ids"], got["documents"], got["metadatas"])

    def sources(self) -> set[str]:
        """Every source path that has chunks in the collection."""
        return {m["source"] for m in self._get_all(["metadatas"])["metadatas"] if "source" in m}

    def file_counts(self) -> dict[str, int]:
        """Chunks per source path, sorted by path, for browsing a collection."""
        counts: dict[str, int] = {}
        for metadata in self._get_all(["metadatas"])["metadatas"]:
            if "source" in metadata:
                counts[metadata["source"]] = counts.get(metadata["source"], 0) + 1
        return dict(sorted(counts.items()))

    def file_state(self, source: str) -> FileState:
        """The chunks stored for ``source`` (empty when it has none)."""
        got = self._chroma.get(where={"source": source}, include=["metadatas"])
        metadatas = got["metadatas"] or []
        counts = {m.get("chunk_count") for m in metadatas}
        return FileState(
            ids=list(got["ids"]),
            versions={(m.get("file_hash"), m.get("version", "")) for m in metadatas},
            expected_count=counts.pop() if len(counts) == 1 else None,
        )

    def chunk_texts(self, source: str, limit: int = 50) -> list[str]:
        """The stored chunk texts of one file, in order (at most ``limit``)."""
        got = self._chroma.get(
            where={"source": source}, include=["documents", "metadatas"], limit=limit
        )
        pairs = sorted(zip(got["ids"], got["documents"] or []))
        return [text for _, text in pairs]

    def query(self, embedding: np.ndarray, n: int, ids: list[str] | None = None) -> list[Hit]:
        """The ``n`` chunks nearest to ``embedding`` (best first), among ``ids`` if given.

        Chroma restricts the search to ``ids`` in SQL, which caps how many it may hold
        (``indexing.retrieval.MAX_ID_FILTER``).
        """
        found = self._chroma.query(
            query_embeddings=[embedding],
            n_results=n,
            ids=ids,
            include=["documents", "metadatas", "distances"],
        )
        return [
            Hit(i, text, meta, float(distance))
            for i, text, meta, distance in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0]
            )
        ]

    def _get_all(self, include: list[str]) -> dict[str, list]:
        merged: dict[str, list] = {"ids": [], **{key: [] for key in include}}
        offset = 0
        while True:
            got = self._chroma.get(include=include, limit=PAGE, offset=offset)
            for key, values in merged.items():
                values.extend(got[key] or [])
            if len(got["ids"]) < PAGE:
                return merged
            offset += PAGE

    def _set_metadata(self, **fields: str) -> None:
        self._chroma.modify(metadata={**self.metadata, **fields})


class WritableCollection(Collection):
    """A collection open for writing; obtained from ``VectorStore.writing`` only.

    ``before_write`` runs before each write that changes chunks (the store marks the BM25
    sidecar stale there); ``changed`` tells whether any such write happened.
    """

    def __init__(self, chroma: Any, before_write: Callable[[], None]) -> None:
        super().__init__(chroma)
        self._before_write = before_write
        self.changed = False

    def set_chunking(self, signature: str) -> None:
        """Record a new chunking signature (the pipeline then re-chunks every file)."""
        self._set_metadata(chunking=signature)

    def set_retrieval(self, choice: RetrievalChoice | None) -> None:
        """Store how RAG retrieves from this collection (None: back to the global settings)."""
        self._set_metadata(retrieval=json.dumps(choice.to_dict()) if choice else "")

    def upsert(
        self,
        ids: list[str],
        texts: list[str],
        embeddings: np.ndarray,
        metadatas: list[dict[str, Any]],
    ) -> None:
        """Write chunks (equal-length lists; ``embeddings`` of shape (len(ids), dim)),
        replacing those with the same ids."""
        if not ids:
            return
        self._writing()
        for start in range(0, len(ids), WRITE_BATCH):
            end = start + WRITE_BATCH
            self._chroma.upsert(
                ids=ids[start:end],
                documents=texts[start:end],
                embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
            )

    def delete_ids(self, ids: list[str]) -> None:
        """Remove chunks by id (unknown ids are ignored)."""
        if ids:
            self._writing()
            self._chroma.delete(ids=ids)

    def new_revision(self) -> str:
        """Give the collection a new revision and return it (after writes that changed it)."""
        revision = uuid.uuid4().hex
        self._set_metadata(revision=revision)
        return revision

    def delete_file(self, source: str) -> int:
        """Remove every chunk of ``source``; returns how many there were (0: none)."""
        ids = self.file_state(source).ids
        self.delete_ids(ids)
        return len(ids)

    def _writing(self) -> None:
        self._before_write()
        self.changed = True
