"""Ranking metrics over a ranked list of document ids and a set of relevant ones."""

from __future__ import annotations

import math
from collections.abc import Sequence


def hit_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """1.0 when any relevant document is in the top ``k``."""
    return 1.0 if any(doc in relevant for doc in ranked[:k]) else 0.0


def mrr_at_k(ranked: Sequence[str], relevant: set[str], k: int = 10) -> float:
    """Reciprocal rank of the first relevant document in the top ``k`` (0 if none)."""
    for rank, doc in enumerate(ranked[:k], 1):
        if doc in relevant:
            return 1.0 / rank
    return 0.0


def ndcg_at_k(
    ranked: Sequence[str], relevant: set[str], k: int = 10, n_relevant: int | None = None
) -> float:
    """Normalised discounted cumulative gain with binary relevance.

    ``n_relevant`` is how many relevant documents exist (default ``len(relevant)``); the
    ideal ranking puts that many first.
    """
    dcg = sum(
        1.0 / math.log2(rank + 1) for rank, doc in enumerate(ranked[:k], 1) if doc in relevant
    )
    count = len(relevant) if n_relevant is None else n_relevant
    ideal = sum(1.0 / math.log2(rank + 1) for rank in range(1, min(count, k) + 1))
    return dcg / ideal if ideal else 0.0


def dedupe(ranked: Sequence[str]) -> list[str]:
    """Keep the first occurrence of each document (chunks of one file count once)."""
    return list(dict.fromkeys(ranked))
