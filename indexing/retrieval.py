"""Retrievers: a query in, the best chunks of a collection out, with their sources.

Three kinds share one interface: ``dense`` (embedding cosine search in Chroma), ``bm25``
(the lexical sidecar) and ``hybrid`` (both, fused by a convex score combination or RRF). Metadata
filters apply to all three through the sidecar's metadata snapshot.

Every query is normalised like ingested text (``indexing.normalize``: NFKC, invisible
characters), so a question typed with ligatures, full-width forms or no-break spaces
matches. Chunks holding the same text (within a file or across copies of a file; equal
after NFKC and whitespace folding) take one place in the results: the best-ranked one is
returned and the other files holding it are listed in ``also_in``. Each retriever fetches
more hits until it has ``k`` different texts or the collection runs out.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, replace
from typing import Any, Literal, NamedTuple, Protocol

import numpy as np

from indexing.collection import Collection
from indexing.embedding import Embedder
from indexing.lexical import LexicalIndex, MetadataFilter
from indexing.normalize import normalize_text
from indexing.store import StoreError, VectorStore

MAX_QUERY_CHARS = 4000
MAX_ID_FILTER = 2000
FETCH_GROWTH = 4  # each retry fetches this many times more hits
RetrieverKind = Literal["dense", "bm25", "hybrid"]
RETRIEVER_KINDS: tuple[RetrieverKind, ...] = ("dense", "bm25", "hybrid")


@dataclass
class RetrievedChunk:
    """A chunk returned for a query, with where it came from and how well it matched.

    ``also_in`` lists the other source paths that hold the same text (sorted; the chunk
    itself stands for all of them in the results).
    """

    source: str
    text: str
    score: float
    page: int | None = None
    heading: str | None = None
    chunk_id: str = ""
    also_in: list[str] = field(default_factory=list)

    @property
    def file_name(self) -> str:
        """The last part of the source path."""
        return self.source.rsplit("/", 1)[-1]

    @property
    def also_in_names(self) -> list[str]:
        """File names (last path part) of ``also_in``."""
        return [path.rsplit("/", 1)[-1] for path in self.also_in]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)


class Retriever(Protocol):
    """Anything that returns the ``k`` best chunks for a query."""

    def retrieve(
        self, query: str, collection: str, k: int, flt: MetadataFilter | None = None
    ) -> list[RetrievedChunk]: ...


class _Scope(NamedTuple):
    """One query against one collection: the normalised query, the indexes, the filter."""

    query: str
    collection: Collection
    lexical: LexicalIndex
    mask: np.ndarray | None


def _chunk(chunk_id: str, text: str, meta: dict[str, Any], score: float) -> RetrievedChunk:
    return RetrievedChunk(
        source=meta.get("source", "?"),
        text=text,
        score=round(score, 4),
        page=meta.get("page"),
        heading=meta.get("heading"),
        chunk_id=chunk_id,
    )


def _distinct(scope: _Scope, chunks: list[RetrievedChunk]) -> list[RetrievedChunk]:
    """``chunks`` with each text once (the first, best-ranked), ``also_in`` filled in."""
    seen: set[str] = set()
    kept = []
    for chunk in chunks:
        key = scope.lexical.key_of(chunk.chunk_id, chunk.text)
        if key not in seen:
            seen.add(key)
            chunk.also_in = scope.lexical.also_in(key, chunk.source, scope.mask)
            kept.append(chunk)
    return kept


class _Base:
    def __init__(self, store: VectorStore, embedder: Embedder) -> None:
        self.store = store
        self.embedder = embedder

    def _open(self, query: str, collection: str, flt: MetadataFilter | None) -> _Scope:
        """Validate and normalise the query, open the collection and apply the filter."""
        if len(query) > MAX_QUERY_CHARS:
            raise StoreError(
                f"the question is {len(query):,} characters long; the limit is "
                f"{MAX_QUERY_CHARS:,} (shorten it, or ingest the long text as a document)"
            )
        query = normalize_text(query)
        if not query.strip():
            raise StoreError("empty question")
        opened = self.store.collection(collection, embedding_model=self.embedder.name)
        lexical = self.store.lexical_index(opened)
        if not lexical.ids:
            raise StoreError(f"collection {collection!r} is empty; ingest documents into it first")
        mask = lexical.allowed(flt)
        if mask is not None and not mask.any():
            raise StoreError(f"no chunks of {collection!r} match the filter ({flt.describe()})")
        return _Scope(query, opened, lexical, mask)

    @staticmethod
    def _first_fetch(scope: _Scope, want: int, distinct: int) -> int:
        """Hits to ask for first: ``want``, twice that when the allowed chunks repeat texts."""
        allowed = len(scope.lexical.ids) if scope.mask is None else int(scope.mask.sum())
        return want if distinct == allowed else 2 * want

    def _dense(self, scope: _Scope, n: int) -> list[RetrievedChunk]:
        lexical, mask = scope.lexical, scope.mask
        allowed = None if mask is None else [i for i, m in zip(lexical.ids, mask) if m]
        # Chroma restricts a search to given ids in SQL, which caps the list's length; a
        # larger allowed set is searched unrestricted with over-fetching, then filtered.
        restrict = allowed if allowed is not None and len(allowed) <= MAX_ID_FILTER else None
        keep = set(allowed) if allowed is not None and restrict is None else None
        pool = len(restrict) if restrict is not None else len(lexical.ids)
        distinct = lexical.distinct(mask)
        want = min(n, distinct)
        fetch = self._first_fetch(scope, want, distinct) * (20 if keep is not None else 1)
        embedding = self.embedder.embed_query(scope.query)
        while True:
            fetch = min(fetch, pool)
            hits = scope.collection.query(embedding, fetch, ids=restrict)
            chunks = _distinct(
                scope,
                [
                    _chunk(i, text, meta, 1.0 - float(distance))
                    for i, text, meta, distance in hits
                    if keep is None or i in keep
                ],
            )
            if len(chunks) >= want or fetch >= pool:
                return chunks[:want]
            fetch *= FETCH_GROWTH

    def _bm25(self, scope: _Scope, n: int) -> list[RetrievedChunk]:
        lexical = scope.lexical
        distinct = lexical.distinct(scope.mask)
        want = min(n, distinct)
        fetch = self._first_fetch(scope, want, distinct)
        while True:
            hits = lexical.search(scope.query, fetch, scope.mask)
            best: dict[str, tuple[str, float]] = {}
            for chunk_id, score in hits:
                best.setdefault(lexical.key_of(chunk_id), (chunk_id, score))
            if len(best) >= want or len(hits) < fetch or fetch >= len(lexical.ids):
                break
            fetch *= FETCH_GROWTH
        hits = list(best.values())[:want]
        if not hits:
            return []
        got = scope.collection.chunks(ids=[i for i, _ in hits])
        by_id = {i: (t, m) for i, t, m in zip(got.ids, got.texts, got.metadatas)}
        return _distinct(scope, [_chunk(i, *by_id[i], score) for i, score in hits if i in by_id])


class DenseRetriever(_Base):
    """Cosine similarity search over the collection's embeddings in Chroma."""

    def retrieve(self, query, collection, k, flt=None) -> list[RetrievedChunk]:
        """Top ``k`` chunks (different texts) by embedding similarity."""
        return self._dense(self._open(query, collection, flt), k)


class BM25Retriever(_Base):
    """BM25 over the collection's chunks (tokenised by ``indexing.bm25_tokens``)."""

    def retrieve(self, query, collection, k, flt=None) -> list[RetrievedChunk]:
        """Top ``k`` chunks (different texts) by BM25 score; chunks sharing no term
        are not returned."""
        return self._bm25(self._open(query, collection, flt), k)


class HybridRetriever(_Base):
    """Dense and BM25 candidates fused into one ranking.

    ``convex`` (default) min-max normalises each retriever's scores over its candidates and
    ranks by ``alpha * dense + (1 - alpha) * bm25`` (Bruch et al., 2023, found this beats
    RRF once alpha is set); ``rrf`` sums 1 / (rrf_k + rank) (Cormack et al., 2009) and needs
    no tuning. A chunk missing from one list gets 0 from it. Chunks are fused by their text,
    so two copies of one text found by different retrievers count as one.
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
        """Top ``k`` chunks (different texts) by fused score (the score shown is the fused one)."""
        scope = self._open(query, collection, flt)
        n = max(self.candidates, k)
        rankings = (self._dense(scope, n), self._bm25(scope, n))
        weights = (self.alpha, 1.0 - self.alpha)
        fused: dict[str, float] = {}
        chunks: dict[str, RetrievedChunk] = {}
        for weight, ranking in zip(weights, rankings):
            for chunk, value in zip(ranking, self._contributions(ranking)):
                key = scope.lexical.key_of(chunk.chunk_id, chunk.text)
                chunks.setdefault(key, chunk)
                fused[key] = fused.get(key, 0.0) + (
                    weight * value if self.fusion == "convex" else value
                )
        best = sorted(fused, key=fused.get, reverse=True)[:k]
        return [replace(chunks[key], score=round(fused[key], 5)) for key in best]

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
