"""Retrievers: a query in, the best chunks of a collection out, with their sources."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Protocol

from indexing.embedding import Embedder
from indexing.store import StoreError, VectorStore

MAX_QUERY_CHARS = 4000


@dataclass
class RetrievedChunk:
    """A chunk returned for a query, with where it came from and how well it matched."""

    source: str
    text: str
    score: float
    page: int | None = None
    heading: str | None = None
    chunk_id: str = ""

    @property
    def file_name(self) -> str:
        """The last part of the source path."""
        return self.source.rsplit("/", 1)[-1]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class Retriever(Protocol):
    """Anything that returns the ``k`` best chunks for a query."""

    def retrieve(self, query: str, collection: str, k: int) -> list[RetrievedChunk]: ...


class DenseRetriever:
    """Cosine similarity search over the collection's embeddings in Chroma."""

    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def retrieve(self, query: str, collection: str, k: int) -> list[RetrievedChunk]:
        """Top ``k`` chunks; an empty collection is an error that says so."""
        if not query.strip():
            raise StoreError("empty question")
        chroma = self.store.collection(collection, embedding_model=self.embedder.name)
        if chroma.count() == 0:
            raise StoreError(f"collection {collection!r} is empty; ingest documents into it first")
        vector = self.embedder.embed_query(query[:MAX_QUERY_CHARS])
        found = chroma.query(
            query_embeddings=[vector],
            n_results=min(k, chroma.count()),
            include=["documents", "metadatas", "distances"],
        )
        return [
            RetrievedChunk(
                source=meta.get("source", "?"),
                text=text,
                score=round(1.0 - float(distance), 4),
                page=meta.get("page"),
                heading=meta.get("heading"),
                chunk_id=chunk_id,
            )
            for chunk_id, text, meta, distance in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0]
            )
        ]
