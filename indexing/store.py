"""Chroma collections holding chunks, their embeddings and metadata.

The store is the single source of truth for what is ingested: every chunk carries its
file's ``source`` path, content ``file_hash`` and the file's ``chunk_count``, so the
pipeline can tell an unchanged file (all chunks present with the current hash) from a
changed or half-written one without a separate manifest that could drift.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from indexing.config import VectorStoreSettings

_NAME = re.compile(r"^[a-zA-Z0-9][a-zA-Z0-9._-]{1,61}[a-zA-Z0-9]$")


class StoreError(RuntimeError):
    """A collection problem a user can fix (unknown name, wrong embedder, bad name)."""


@dataclass
class FileState:
    """What the store holds for one source file."""

    ids: list[str]
    hashes: set[str]
    expected_count: int | None

    def is_complete(self, file_hash: str) -> bool:
        """True when every chunk of the file is stored with ``file_hash``."""
        return self.hashes == {file_hash} and self.expected_count == len(self.ids)


def validate_collection_name(name: str) -> str:
    """Return ``name`` or raise with the rule it breaks."""
    if not _NAME.match(name) or ".." in name:
        raise StoreError(
            f"invalid collection name {name!r}: use 3-63 letters, digits, '.', '_' or '-', "
            "starting and ending with a letter or digit"
        )
    return name


class VectorStore:
    """Thin layer over a Chroma client (embedded or http)."""

    def __init__(self, settings: VectorStoreSettings, path: Path) -> None:
        import chromadb
        from chromadb.config import Settings as ChromaSettings

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

    def collection(self, name: str, *, embedding_model: str, create: bool = False) -> Any:
        """The Chroma collection ``name``, refusing one built with another embedder."""
        validate_collection_name(name)
        if name not in self.collection_names():
            if not create:
                known = ", ".join(self.collection_names()) or "none yet"
                raise StoreError(
                    f"unknown collection {name!r} (known: {known}); create it with `ragtune ingest`"
                )
            return self.client.create_collection(
                name,
                metadata={"embedding_model": embedding_model},
                configuration={"hnsw": {"space": "cosine"}},
                embedding_function=None,
            )
        collection = self.client.get_collection(name, embedding_function=None)
        recorded = (collection.metadata or {}).get("embedding_model")
        if recorded and recorded != embedding_model:
            raise StoreError(
                f"collection {name!r} was embedded with {recorded!r}, but the configured "
                f"embedder is {embedding_model!r}; use that embedder or another collection"
            )
        return collection

    def delete_collection(self, name: str) -> None:
        """Remove a collection and all its chunks."""
        self.client.delete_collection(validate_collection_name(name))

    @staticmethod
    def file_state(collection: Any, source: str) -> FileState:
        """The chunks stored for ``source``."""
        got = collection.get(where={"source": source}, include=["metadatas"])
        metadatas = got["metadatas"] or []
        counts = {m.get("chunk_count") for m in metadatas}
        return FileState(
            ids=list(got["ids"]),
            hashes={m.get("file_hash") for m in metadatas},
            expected_count=counts.pop() if len(counts) == 1 else None,
        )

    @staticmethod
    def sources(collection: Any) -> set[str]:
        """Every source path that has chunks in ``collection``."""
        got = collection.get(include=["metadatas"])
        return {m["source"] for m in got["metadatas"] or [] if "source" in m}

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
