"""Chroma collections holding chunks, their embeddings and metadata.

The store is the single source of truth for what is ingested: every chunk carries its
file's ``source`` path, content ``file_hash`` and the file's ``chunk_count``, so the
pipeline can tell an unchanged file (all chunks present with the current hash) from a
changed or half-written one without a separate manifest that could drift.
"""

from __future__ import annotations

import re
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexing.bm25_tokens import Bm25Tokenizer
from indexing.config import VectorStoreSettings
from indexing.errors import Conflict, RagtuneError
from indexing.lexical import LexicalIndex

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")


class StoreError(RagtuneError, RuntimeError):
    """A collection problem a user can fix (unknown name, wrong embedder, bad name)."""

    label = "store"


class EmbedderMismatch(Conflict, StoreError):
    """A collection was built with another embedding model than the configured one."""

    label = "embedder_mismatch"


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
class CollectionInfo:
    """What ``ragtune collections show`` reports."""

    name: str
    chunks: int
    files: int
    embedding_model: str
    chunking: str
    size_bytes: int

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return dict(vars(self))


def validate_collection_name(name: str) -> str:
    """Return ``name`` or raise with the rule it breaks."""
    if not _NAME.match(name) or ".." in name:
        raise StoreError(
            f"invalid collection name {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


class VectorStore:
    """Thin layer over a Chroma client (embedded or http), with the BM25 sidecars.

    ``bm25_language`` (``indexing.bm25_language``) picks the sidecars' stemmer and stop
    words; raises ``ValueError`` naming the setting when it is unknown.
    """

    def __init__(
        self,
        settings: VectorStoreSettings,
        path: Path,
        index_root: Path,
        bm25_language: str = "english",
    ) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

        self.path = path
        self.index_root = index_root
        self.bm25_tokenizer = Bm25Tokenizer(bm25_language)
        self._lexical: dict[str, tuple[float, LexicalIndex]] = {}
        chroma_settings = ChromaSettings(anonymized_telemetry=False)
        if settings.mode == "http":
            self.client = chromadb.HttpClient(
                host=settings.host, port=settings.port, settings=chroma_settings
            )
        else:
            path.mkdir(parents=True, exist_ok=True)
            self.client = chromadb.PersistentClient(path=str(path), settings=chroma_settings)

    def collection_names(self) -> list[str]:
        """Names of all collections."""
        return sorted(c if isinstance(c, str) else c.name for c in self.client.list_collections())

    def collection(
        self, name: str, *, embedding_model: str, create: bool = False, chunking: str = ""
    ) -> Any:
        """The Chroma collection ``name``, refusing one built with another embedder."""
        from chromadb.errors import NotFoundError

        validate_collection_name(name)
        try:
            collection = self.client.get_collection(name, embedding_function=None)
        except (NotFoundError, ValueError):
            if not create:
                known = ", ".join(self.collection_names()) or "none yet"
                raise StoreError(
                    f"unknown collection {name!r} (known: {known}); create it with `ragtune ingest`"
                ) from None
            return self.client.create_collection(
                name,
                metadata={"embedding_model": embedding_model, "chunking": chunking},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        recorded = (collection.metadata or {}).get("embedding_model")
        if recorded and recorded != embedding_model:
            raise EmbedderMismatch(
                f"collection {name!r} was embedded with {recorded!r}, but the configured "
                f"embedder is {embedding_model!r}; use that embedder or another collection"
            )
        return collection

    def delete_collection(self, name: str) -> None:
        """Remove a collection, all its chunks and its BM25 sidecar."""
        if validate_collection_name(name) not in self.collection_names():
            raise StoreError(f"unknown collection {name!r}")
        self.client.delete_collection(name)
        shutil.rmtree(self.index_root / name, ignore_errors=True)
        self._lexical.pop(name, None)

    @staticmethod
    def chunking_of(collection: Any) -> str:
        """The chunking signature recorded for a collection."""
        return (collection.metadata or {}).get("chunking", "")

    @staticmethod
    def set_chunking(collection: Any, signature: str) -> None:
        """Record a new chunking signature (the pipeline re-chunks every file)."""
        collection.modify(metadata={**(collection.metadata or {}), "chunking": signature})

    def lexical_index(self, collection: Any) -> LexicalIndex:
        """The collection's BM25 sidecar, rebuilt from Chroma when missing, dirty or built
        with another tokenizer (``bm25_language`` changed, or an older tokenizing scheme)."""
        index = LexicalIndex(self.index_root / collection.name, self.bm25_tokenizer)
        # Another app instance may have changed a shared (http) Chroma: its revision tells.
        revision = (collection.metadata or {}).get("revision", "")
        if not index.is_usable(self.bm25_tokenizer) or index.revision() != revision:
            self.rebuild_lexical(collection)
        stamp = (index.folder / "ids.json").stat().st_mtime
        cached = self._lexical.get(collection.name)
        if cached and cached[0] == stamp:
            return cached[1]
        index.load()
        self._lexical[collection.name] = (stamp, index)
        return index

    def mark_changing(self, collection: Any) -> bool:
        """Flag the sidecar as stale before Chroma is written; True if it was clean."""
        index = LexicalIndex(self.index_root / collection.name)
        was_clean = index.is_usable()
        index.mark_dirty()
        return was_clean

    def mark_settled(self, collection: Any) -> None:
        """Clear the stale flag after a run that changed nothing."""
        LexicalIndex(self.index_root / collection.name).dirty_marker.unlink(missing_ok=True)

    def rebuild_lexical(self, collection: Any, bump: bool = False) -> None:
        """Rebuild the BM25 sidecar from everything the collection holds.

        ``bump`` (after a changing ingest) gives the collection a new revision, so sidecars
        of other app instances sharing an http Chroma notice and rebuild too.
        """
        got = get_all(collection, ["documents", "metadatas"])
        index = LexicalIndex(self.index_root / collection.name, self.bm25_tokenizer)
        revision = (collection.metadata or {}).get("revision", "")
        if bump:
            revision = uuid.uuid4().hex
            collection.modify(metadata={**(collection.metadata or {}), "revision": revision})
        index.rebuild(list(got["ids"]), list(got["documents"]), list(got["metadatas"]), revision)
        self._lexical.pop(collection.name, None)

    def info(self, name: str) -> CollectionInfo:
        """Counts, models and size of a collection."""
        if validate_collection_name(name) not in self.collection_names():
            raise StoreError(f"unknown collection {name!r}")
        collection = self.client.get_collection(name, embedding_function=None)
        metadata = collection.metadata or {}
        size = self._vector_bytes(str(collection.id)) + _folder_size(self.index_root / name)
        return CollectionInfo(
            name=name,
            chunks=collection.count(),
            files=len(self.sources(collection)),
            embedding_model=metadata.get("embedding_model", "?"),
            chunking=metadata.get("chunking", "?"),
            size_bytes=size,
        )

    def _vector_bytes(self, collection_id: str) -> int:
        """Bytes of the collection's vector segment (embedded mode) plus its SQLite rows."""
        database = self.path / "chroma.sqlite3"
        if not database.exists():
            return 0
        import sqlite3

        with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
            segments = [
                row[0]
                for row in db.execute(
                    "SELECT id FROM segments WHERE collection = ?", (collection_id,)
                )
            ]
            text_bytes = db.execute(
                "SELECT COALESCE(SUM(LENGTH(string_value)), 0) FROM embedding_metadata "
                "WHERE id IN (SELECT e.id FROM embeddings e JOIN segments s ON e.segment_id = s.id "
                "WHERE s.collection = ?)",
                (collection_id,),
            ).fetchone()[0]
        return int(text_bytes) + sum(_folder_size(self.path / segment) for segment in segments)

    @staticmethod
    def file_state(collection: Any, source: str) -> FileState:
        """The chunks stored for ``source``."""
        got = collection.get(where={"source": source}, include=["metadatas"])
        metadatas = got["metadatas"] or []
        counts = {m.get("chunk_count") for m in metadatas}
        return FileState(
            ids=list(got["ids"]),
            versions={(m.get("file_hash"), m.get("version", "")) for m in metadatas},
            expected_count=counts.pop() if len(counts) == 1 else None,
        )

    @staticmethod
    def sources(collection: Any) -> set[str]:
        """Every source path that has chunks in ``collection``."""
        got = get_all(collection, ["metadatas"])
        return {m["source"] for m in got["metadatas"] or [] if "source" in m}

    @staticmethod
    def file_counts(collection: Any) -> dict[str, int]:
        """Chunks per source path, for browsing a collection."""
        counts: dict[str, int] = {}
        for metadata in get_all(collection, ["metadatas"])["metadatas"] or []:
            if "source" in metadata:
                counts[metadata["source"]] = counts.get(metadata["source"], 0) + 1
        return dict(sorted(counts.items()))

    @staticmethod
    def chunk_texts(collection: Any, source: str, limit: int = 50) -> list[str]:
        """The stored chunk texts of one file, in order."""
        got = collection.get(
            where={"source": source}, include=["documents", "metadatas"], limit=limit
        )
        pairs = sorted(zip(got["ids"], got["documents"] or []))
        return [text for _, text in pairs]

    @staticmethod
    def upsert(
        collection: Any,
        ids: list[str],
        texts: list[str],
        embeddings: np.ndarray,
        metadatas: list[dict[str, Any]],
        batch: int = 1000,
    ) -> None:
        """Write chunks in batches that Chroma accepts."""
        for start in range(0, len(ids), batch):
            end = start + batch
            collection.upsert(
                ids=ids[start:end],
                documents=texts[start:end],
                embeddings=embeddings[start:end],
                metadatas=metadatas[start:end],
            )

    @staticmethod
    def delete_ids(collection: Any, ids: list[str]) -> None:
        """Remove chunks by id."""
        if ids:
            collection.delete(ids=ids)


def get_all(collection: Any, include: list[str], page: int = 5000) -> dict[str, list]:
    """Every record of a collection, fetched in pages (one large get exceeds SQLite's limits)."""
    merged: dict[str, list] = {"ids": [], **{key: [] for key in include}}
    offset = 0
    while True:
        got = collection.get(include=include, limit=page, offset=offset)
        for key, values in merged.items():
            values.extend(got[key] or [])
        if len(got["ids"]) < page:
            return merged
        offset += page


def _folder_size(folder: Path) -> int:
    if not folder.exists():
        return 0
    return sum(f.stat().st_size for f in folder.rglob("*") if f.is_file())
