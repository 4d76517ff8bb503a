"""Retrieval tuned on the user's data: a dataset's source labels are a retrieval test set.

``tune_retrieval`` compares, on the dev split, chunk sizes (the collection's documents
re-chunked into scratch collections, ``evals.rechunk``), the retrievers (dense,
BM25, hybrid with a few convex weights and with RRF) and k; picks the choice with the
best MRR@10; and reports the pick and the default on the test split with 95% bootstrap
intervals and a paired permutation test. Relevance is file-level, scored as
``ragtune eval retrieval`` scores it (``evals.retrieval_eval.score_ranking``).

k is chosen per row after the rest, since it does not change the file ranking: the
smallest k of the grid whose share of questions with the labelled file among the first k
chunks ("in k") is within ``K_TOLERANCE`` of the best, among the k that keep the prompt's
source tokens (k x chunk tokens) within the default's. ``apply_choice``
(``evals.rechunk``) re-chunks the collection to the pick's size and stores the pick on
it (``Collection.retrieval``), which RAG answers on that collection then use.
"""

from __future__ import annotations

import json
import random
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from tqdm import tqdm

from evals.rechunk import ScratchCollections, TuningError, apply_choice, plan_corpus
from evals.retrieval_eval import LabeledQuestion, load_dataset, matches
from evals.retrieval_grid import BUDGETS, CachedQueries, Row, grid, pick_k, retriever_for, score
from evals.stats import paired_permutation_p
from indexing.chunking import ChunkingConfig
from indexing.collection import RetrievalChoice
from indexing.config import IndexingSettings
from indexing.embedding import Embedder
from indexing.store import StoreError, VectorStore
from training.qa_dataset import QAPair, read_pairs

__all__ = [
    "BUDGETS",
    "RetrievalChoice",
    "TuningError",
    "TuningResult",
    "apply_choice",
    "read_labelled",
    "split_dev_test",
    "tune_retrieval",
]


@dataclass
class TuningResult:
    """What ``tune_retrieval`` found: the dev rows (grid order), the pick and the default,
    both scored on the test split, and the paired test of their MRR@10 there."""

    collection: str
    budget: str
    pick: RetrievalChoice
    default: RetrievalChoice
    rows: list[Row]
    test_pick: Row
    test_default: Row
    p_value: float
    dev_questions: int
    test_questions: int
    documents: str
    seconds: float
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "collection": self.collection,
            "budget": self.budget,
            "pick": self.pick.to_dict(),
            "default": self.default.to_dict(),
            "dev_questions": self.dev_questions,
            "test_questions": self.test_questions,
            "documents": self.documents,
            "dev": [row.to_dict() for row in self.rows],
            "test": {"pick": self.test_pick.to_dict(), "default": self.test_default.to_dict()},
            "mrr@10_p_value": round(self.p_value, 4),
            "seconds": round(self.seconds, 1),
            "notes": self.notes,
        }


def labelled(items: list[QAPair | LabeledQuestion], split: str) -> list[LabeledQuestion]:
    """``items`` as labelled questions; pairs without a source label are left out.
    Raises ``TuningError`` when none has one."""
    questions = [
        item if isinstance(item, LabeledQuestion) else LabeledQuestion(item.question, [item.source])
        for item in items
        if isinstance(item, LabeledQuestion) or item.source
    ]
    if not questions:
        raise TuningError(
            f"the {split} split has no questions with a source label ({len(items)} questions); "
            "retrieval tuning needs the file that answers each question"
        )
    return questions


def read_labelled(path: Path) -> tuple[list[LabeledQuestion | QAPair], list[str]]:
    """A labelled question file and one problem message per skipped line.

    JSONL lines ``{"question", "relevant": [paths]}`` are read as ``ragtune eval retrieval``
    reads them (``evals.retrieval_eval.load_dataset``; a bad line raises ``DatasetError``);
    anything else as question/answer pairs with a ``source`` (JSONL or CSV,
    ``training.qa_dataset.read_pairs``: bad lines are skipped and named).
    """
    if path.suffix.lower() in (".jsonl", ".json") and path.is_file():
        lines = path.read_text(encoding="utf-8-sig").splitlines()
        first = next((line for line in lines if line.strip()), "")
        try:
            if "relevant" in json.loads(first):
                return list(load_dataset(path)), []
        except (json.JSONDecodeError, TypeError):
            pass  # read_pairs names the line
    pairs, problems = read_pairs(path)
    return list(pairs), problems


def split_dev_test(items: list, seed: int = 0) -> tuple[list, list]:
    """A plain labelled file's items in a seeded random half for dev and the rest for test."""
    shuffled = list(items)
    random.Random(seed).shuffle(shuffled)
    half = (len(shuffled) + 1) // 2
    return shuffled[:half], shuffled[half:]


def tune_retrieval(
    store: VectorStore,
    embedder: Embedder,
    indexing_settings: IndexingSettings,
    collection: str,
    dev: list[QAPair | LabeledQuestion],
    test: list[QAPair | LabeledQuestion],
    *,
    budget: str = "quick",
    seed: int = 0,
    progress: bool = True,
    default_k: int = 4,
) -> TuningResult:
    """Compare chunk sizes, retrievers and k on ``dev``; score the pick and the default
    on ``test``.

    ``budget``: ``quick`` or ``standard`` (``BUDGETS``); ``seed`` fixes the document
    sample and the bootstrap; ``default_k``: the settings' ``prompting.top_k``. The
    default is the settings' retriever at the collection's current chunk size with
    ``default_k``. Raises ``TuningError`` for an unknown budget, a split without labelled
    questions, or labels naming files the collection does not hold; ``StoreError`` for a
    missing, empty or differently embedded collection.
    """
    started = time.perf_counter()
    if budget not in BUDGETS:
        raise TuningError(f"unknown budget {budget!r}; choose one of {', '.join(BUDGETS)}")
    budget_grid = BUDGETS[budget]
    dev_set, test_set = labelled(dev, "dev"), labelled(test, "test")
    target = store.collection(collection, embedding_model=embedder.name)
    if not target.count():
        raise StoreError(f"collection {collection!r} is empty; ingest documents into it first")
    sources = target.sources()
    wanted = {label for q in dev_set + test_set for label in q.relevant}
    unknown = sorted(w for w in wanted if not any(matches(s, w) for s in sources))
    if unknown:
        raise TuningError(
            f"{len(unknown)} source label(s) name files that collection {collection!r} does not "
            f"hold: {', '.join(unknown[:10])}{' ...' if len(unknown) > 10 else ''}"
        )
    s = indexing_settings
    answering = {source for source in sources if any(matches(source, w) for w in wanted)}
    corpus = plan_corpus(
        target,
        answering,
        ChunkingConfig(s.chunking, s.chunk_size, s.chunk_overlap),
        max_chunks=budget_grid.max_chunks,
        seed=seed,
    )
    current = corpus.chunking.chunk_size
    notes = []
    sizes = sorted({*budget_grid.chunk_tokens, s.chunk_size, current})
    # The live collection serves the current size when a re-chunk would hold the same files.
    use_live = not corpus.sampled and not corpus.missing
    if answering & set(corpus.missing):
        sizes, use_live = [current], True
        notes.append("labelled files are missing on disk, so only the current chunk size is tried")
    default = _default_choice(s, current, default_k)
    query_embedder = CachedQueries(embedder)
    rows_grid = grid(s, budget_grid)
    total = len(sizes) * len(rows_grid) * len(dev_set) + 2 * len(test_set)
    with (
        ScratchCollections(corpus, embedder, s, store.bm25_tokenizer.language) as scratch,
        tqdm(total=total, desc="tune retrieval", unit="query", disable=not progress) as bar,
    ):
        places: dict[int, tuple[VectorStore, str]] = {}
        rows: list[Row] = []
        for size in sizes:
            bar.set_description(f"re-chunk {size}")
            places[size] = (
                (store, collection) if size == current and use_live else scratch.build(size)
            )
            bar.set_description(f"retrieve {size}")
            for retriever_kind, fusion, alpha in rows_grid:
                choice = RetrievalChoice(size, retriever_kind, fusion, alpha, default_k)
                retriever = retriever_for(choice, places[size][0], query_embedder, s)
                scores, ranks = score(retriever, places[size][1], dev_set, bar.update)
                if choice != default:
                    choice = replace(
                        choice, k=pick_k(ranks, size, budget_grid, default_k * current)
                    )
                scores["in_k"] = [float(r < choice.k) for r in ranks]
                rows.append(Row(choice, scores, seed))
        pick = max(rows, key=lambda r: (r.means["mrr@10"], r.choice == default)).choice
        if pick == default:
            bar.total -= len(test_set)
        bar.set_description("test split")
        test_rows = []
        for choice in (pick, default) if pick != default else (pick,):
            place_store, name = places[choice.chunk_tokens]
            retriever = retriever_for(choice, place_store, query_embedder, s)
            scores, ranks = score(retriever, name, test_set, bar.update)
            scores["in_k"] = [float(r < choice.k) for r in ranks]
            test_rows.append(Row(choice, scores, seed))
        test_rows.append(test_rows[-1])  # the default's row when the pick is the default
        notes.extend(scratch.notes)
    p_value = paired_permutation_p(test_rows[0].scores["mrr@10"], test_rows[1].scores["mrr@10"])
    return TuningResult(
        collection=collection,
        budget=budget,
        pick=pick,
        default=default,
        rows=rows,
        test_pick=test_rows[0],
        test_default=test_rows[1],
        p_value=p_value,
        dev_questions=len(dev_set),
        test_questions=len(test_set),
        documents=corpus.describe(),
        seconds=time.perf_counter() - started,
        notes=notes,
    )


def _default_choice(s: IndexingSettings, chunk_tokens: int, k: int) -> RetrievalChoice:
    """The settings' retrieval at ``chunk_tokens``."""
    hybrid = s.retriever == "hybrid"
    return RetrievalChoice(
        chunk_tokens,
        s.retriever,
        s.hybrid_fusion if hybrid else "",
        s.hybrid_alpha if hybrid and s.hybrid_fusion == "convex" else None,
        k,
    )
