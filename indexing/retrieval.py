"""Retrievers: a query in, the best chunks of a collection out, with their sources.

Three kinds share one interface: ``dense`` (embedding cosine search in Chroma), ``bm25``
(the lexical sidecar) and ``hybrid`` (both, fused by a convex score combination or RRF). Metadata
filters apply to all three through the sidecar's metadata snapshot.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal, Protocol

from indexing.embedding import Embedder
from indexing.lexical import MetadataFilter
from indexing.store import StoreError, VectorStore

MAX_QUERY_CHARS = 4000
MAX_ID_FILTER = 2000
RetrieverKind = Literal["dense", "bm25", "hybrid"]
RETRIEVER_KINDS: tuple[RetrieverKind, ...] = ("dense", "bm25", "hybrid")


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

    def retrieve(
        self, query: str, collection: str, k: int, flt: MetadataFilter | None = None
    ) -> list[RetrievedChunk]: ...


def _chunk(chunk_id: str, text: str, meta: dict[str, Any], score: float) -> RetrievedChunk:
    return RetrievedChunk(
        source=meta.get("source", "?"),
        text=text,
        score=round(score, 4),
        page=meta.get("page"),
        heading=meta.get("heading"),
        chunk_id=chunk_id,
    )


class _Base:
    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def _open(self, query: str, collection: str, flt: MetadataFilter | None):
        """Validate the query, open the collection and apply the filter."""
        if not query.strip():
            raise StoreError("empty question")
        if len(query) > MAX_QUERY_CHARS:
            raise StoreError(
                f"the question is {len(query):,} characters long; the limit is "
                f"{MAX_QUERY_CHARS:,} (shorten it, or ingest the long text as a document)"
            )
        chroma = self.store.collection(collection, embedding_model=self.embedder.name)
        lexical = self.store.lexical_index(chroma)
        if not lexical.ids:
            raise StoreError(f"collection {collection!r} is empty; ingest documents into it first")
        mask = lexical.allowed(flt)
        if mask is not None and not mask.any():
            raise StoreError(f"no chunks of {collection!r} match the filter ({flt.describe()})")
        return chroma, lexical, mask

    def _dense(self, chroma, lexical, mask, query: str, n: int) -> list[RetrievedChunk]:
        allowed = None if mask is None else [i for i, m in zip(lexical.ids, mask) if m]
        # Chroma restricts a search to given ids in SQL, which caps the list's length; a
        # larger allowed set is searched unrestricted with over-fetching, then filtered.
        restrict = allowed if allowed is not None and len(allowed) <= MAX_ID_FILTER else None
        total = len(lexical.ids)
        want = min(n, len(allowed) if allowed is not None else total)
        fetch = want if allowed is None or restrict is not None else min(total, want * 20)
        found = chroma.query(
            query_embeddings=[self.embedder.embed_query(query)],
            n_results=fetch,
            ids=restrict,
            include=["documents", "metadatas", "distances"],
        )
        keep = set(allowed) if allowed is not None and restrict is None else None
        chunks = [
            _chunk(i, text, meta, 1.0 - float(distance))
            for i, text, meta, distance in zip(
                found["ids"][0], found["documents"][0], found["metadatas"][0], found["distances"][0]
            )
            if keep is None or i in keep
        ]
        return chunks[:want]

    @staticmethod
    def _bm25(chroma, lexical, mask, query: str, n: int) -> list[RetrievedChunk]:
        hits = lexical.search(query, n, mask)
        if not hits:
            return []
        got = chroma.get(ids=[i for i, _ in hits], include=["documents", "metadatas"])
        by_id = {i: (t, m) for i, t, m in zip(got["ids"], got["documents"], got["metadatas"])}
        return [_chunk(i, *by_id[i], score) for i, score in hits if i in by_id]


class DenseRetriever(_Base):
    """Cosine similarity search over the collection's embeddings in Chroma."""

    def retrieve(self, query, collection, k, flt=None) -> list[RetrievedChunk]:
        """Top ``k`` chunks by embedding similarity."""
        return self._dense(*self._open(query, collection, flt), query, k)


class BM25Retriever(_Base):
    """BM25 over the collection's chunks (stemmed, English stop words removed)."""

    def retrieve(self, query, collection, k, flt=None) -> list[RetrievedChunk]:
        """Top ``k`` chunks by BM25 score (chunks sharing no term are not returned)."""
        return self._bm25(*self._open(query, collection, flt), query, k)


class HybridRetriever(_Base):
    """Dense and BM25 candidates fused into one ranking.

    ``convex`` (default) min-max normalises each retriever's scores over its candidates and
    ranks by ``alpha * dense + (1 - alpha) * bm25`` (Bruch et al., 2023, found this beats
    RRF once alpha is set); ``rrf`` sums 1 / (rrf_k + rank) (Cormack et al., 2009) and needs
    no tuning. A chunk missing from one list gets 0 from it.
    """

    def __init__(
        self,
        store: VectorStore,
        embedder: Embedder,
        *,
        fusion: str = "convex",
        alpha: float = 0.7,
        rrf_k: int = 60,
        candidates: int = 20,
    ) -> None:
        super().__init__(store, embedder)
        self.fusion = fusion
        self.alpha = alpha
        self.rrf_k = rrf_k
        self.candidates = candidates

    def retrieve(self, query, collection, k, flt=None) -> list[RetrievedChunk]:
        """Top ``k`` chunks by fused score (the score shown is the fused one)."""
        opened = self._open(query, collection, flt)
        n = max(self.candidates, k)
        rankings = (self._dense(*opened, query, n), self._bm25(*opened, query, n))
        weights = (self.alpha, 1.0 - self.alpha)
        fused: dict[str, float] = {}
        chunks: dict[str, RetrievedChunk] = {}
        for weight, ranking in zip(weights, rankings):
            for chunk, value in zip(ranking, self._contributions(ranking)):
                chunks.setdefault(chunk.chunk_id, chunk)
                fused[chunk.chunk_id] = fused.get(chunk.chunk_id, 0.0) + (
                    weight * value if self.fusion == "convex" else value
                )
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [RetrievedChunk(**{**chunks[i].to_dict(), "score": round(fused[i], 5)}) for i in best]

    def _contributions(self, ranking: list[RetrievedChunk]) -> list[float]:
        if self.fusion == "rrf":
            return [1.0 / (self.rrf_k + rank) for rank in range(1, len(ranking) + 1)]
        scores = [c.score for c in ranking]
        low, high = (min(scores), max(scores)) if scores else (0.0, 0.0)
        return [(s - low) / (high - low) if high > low else 1.0 for s in scores]


def make_retriever(kind: str, store: VectorStore, embedder: Embedder, **hybrid: Any) -> Retriever:
    """The retriever named ``kind``; ``hybrid`` holds HybridRetriever's fusion options."""
    if kind == "dense":
        return DenseRetriever(store, embedder)
    if kind == "bm25":
        return BM25Retriever(store, embedder)
    if kind == "hybrid":
        return HybridRetriever(store, embedder, **hybrid)
    raise StoreError(f"unknown retriever {kind!r}; choose one of {', '.join(RETRIEVER_KINDS)}")
