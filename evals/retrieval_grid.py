"""The grid of retrieval tuning: budgets, the choices at one chunk size, and scoring one.

A choice is scored per question on file-level relevance, as ``ragtune eval retrieval``
scores it (``evals.retrieval_eval.score_ranking`` over ``DEPTH`` chunks), plus "in k":
whether the labelled file is among the first k chunks, the ones a RAG prompt gets.
"""

from __future__ import annotations

import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from evals.retrieval_eval import LabeledQuestion, matches, score_ranking
from evals.stats import bootstrap_ci
from indexing.collection import RetrievalChoice
from indexing.config import IndexingSettings
from indexing.embedding import Embedder
from indexing.retrieval import Retriever, make_retriever
from indexing.store import VectorStore

METRICS = ("hit@1", "hit@3", "hit@5", "mrr@10")
DEPTH = 30  # chunks retrieved per question before de-duplication to files
K_TOLERANCE = 0.01


@dataclass(frozen=True)
class Budget:
    """A grid size: chunk sizes tried besides the current one and the settings' one,
    convex weights besides the settings' one, k values, and the chunks (at the current
    size) above which a sample of the documents is re-chunked instead of all of them."""

    chunk_tokens: tuple[int, ...]
    alphas: tuple[float, ...]
    ks: tuple[int, ...]
    max_chunks: int


BUDGETS = {
    "quick": Budget((128, 192), (0.5,), (2, 3, 4, 6, 8), 1500),
    "standard": Budget((96, 128, 160, 192, 384), (0.3, 0.5, 0.9), (2, 3, 4, 5, 6, 8, 10), 5000),
}


@dataclass
class Row:
    """One choice scored on one split: per-question scores, means and 95% intervals.

    ``scores`` holds one list per metric of ``METRICS`` plus ``in_k`` (labelled file
    among the first k chunks), each with one value per question in split order.
    """

    choice: RetrievalChoice
    scores: dict[str, list[float]]
    seed: int = 0
    means: dict[str, float] = field(init=False)
    intervals: dict[str, tuple[float, float]] = field(init=False)

    def __post_init__(self) -> None:
        self.means = {m: statistics.fmean(v) for m, v in self.scores.items()}
        self.intervals = {m: bootstrap_ci(v, seed=self.seed) for m, v in self.scores.items()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (means and intervals rounded, no per-question scores)."""
        return {
            **self.choice.to_dict(),
            "label": self.choice.label(),
            **{m: round(v, 4) for m, v in self.means.items()},
            **{f"{m}_ci": [round(x, 4) for x in ci] for m, ci in self.intervals.items()},
        }


class CachedQueries:
    """The embedder with query embeddings kept: the grid asks the same questions often."""

    def __init__(self, embedder: Embedder) -> None:
        self._embedder = embedder
        self._queries: dict[str, Any] = {}

    def __getattr__(self, name: str) -> Any:
        return getattr(self._embedder, name)

    def embed_query(self, query: str) -> Any:
        """The embedder's ``embed_query``, computed once per query."""
        if query not in self._queries:
            self._queries[query] = self._embedder.embed_query(query)
        return self._queries[query]


def grid(settings: IndexingSettings, budget: Budget) -> list[tuple[str, str, float | None]]:
    """(retriever, fusion, alpha) of every row at one chunk size."""
    alphas = sorted({*budget.alphas, settings.hybrid_alpha})
    return [
        ("dense", "", None),
        ("bm25", "", None),
        *(("hybrid", "convex", alpha) for alpha in alphas),
        ("hybrid", "rrf", None),
    ]


def score(
    retriever: Retriever,
    collection: str,
    questions: list[LabeledQuestion],
    on_question: Callable[[], object] = lambda: None,
) -> tuple[dict[str, list[float]], list[int]]:
    """Per-question scores of ``METRICS`` (one list each, in question order) and the
    0-based rank of each question's first relevant chunk (``DEPTH`` when none)."""
    scores: dict[str, list[float]] = {m: [] for m in METRICS}
    ranks = []
    for item in questions:
        sources = [c.source for c in retriever.retrieve(item.question, collection, DEPTH)]
        for metric, value in score_ranking(sources, item.relevant).items():
            if metric in scores:
                scores[metric].append(value)
        hits = (i for i, s in enumerate(sources) if any(matches(s, r) for r in item.relevant))
        ranks.append(next(hits, DEPTH))
        on_question()
    return scores, ranks


def pick_k(ranks: list[int], chunk_tokens: int, budget: Budget, source_tokens: int) -> int:
    """The smallest k of ``budget.ks`` whose "in k" (share of ``ranks`` below k) is within
    ``K_TOLERANCE`` of the best among the k with k x ``chunk_tokens`` <= ``source_tokens``
    (the smallest k when none fits)."""
    fitting = [k for k in budget.ks if k * chunk_tokens <= source_tokens] or [min(budget.ks)]
    in_k = {k: statistics.fmean(r < k for r in ranks) for k in fitting}
    best = max(in_k.values())
    return min(k for k in fitting if in_k[k] >= best - K_TOLERANCE)


def retriever_for(
    choice: RetrievalChoice, store: VectorStore, embedder: Embedder, settings: IndexingSettings
) -> Retriever:
    """The retriever ``choice`` names over ``store`` (``rrf_k`` and the candidate count
    from ``settings``)."""
    return make_retriever(
        choice.retriever,
        store,
        embedder,
        fusion=choice.fusion or settings.hybrid_fusion,
        alpha=settings.hybrid_alpha if choice.alpha is None else choice.alpha,
        rrf_k=settings.rrf_k,
        candidates=settings.hybrid_candidates,
    )
