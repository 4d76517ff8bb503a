"""Batch comparison: every item of a suite answered by every candidate, then scored.

A candidate is a name with a way of answering: an ``Answerer`` (question ->
``SourcedAnswer``) or a classifier's ``Predictor``. The runner knows nothing of how an
answer is made; the app turns each variant into a candidate
(``app.variants.VariantRunner.candidates``), streaming through the same chat service as
the app. A failed answer (a ``RagtuneError``) is recorded with its error and left out of
the metrics, never scored as zero.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from evals.concurrency import DEFAULT_CONCURRENCY, map_in_order
from evals.metrics.groundedness import groundedness
from evals.metrics.retrieval import dedupe, hit_at_k, mrr_at_k
from evals.metrics.text import bleu, exact_match, rouge, token_f1
from evals.retrieval_eval import matches
from evals.stats import bootstrap_ci, paired_permutation_p
from evals.suites import Item, Suite
from indexing.errors import RagtuneError

if TYPE_CHECKING:
    from indexing.retrieval import RetrievedChunk

QA_METRICS = (
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "exact_match",
    "token_f1",
    "embedding_similarity",
    "groundedness",
    "hit@1",
    "hit@4",
    "mrr",
    "latency_s",
    "tokens_per_s",
)
CLASSIFICATION_METRICS = ("accuracy", "latency_s")


@dataclass(frozen=True)
class SourcedAnswer:
    """An answer with the sources it was given.

    ``text``: the whole answer as generated (the runner strips it); ``sources``: the
    retrieved chunks in prompt order (empty outside RAG); ``tokens``: pieces streamed,
    the numerator of tokens/s (0 when the answer did not stream).
    """

    text: str
    sources: list[RetrievedChunk] = field(default_factory=list)
    tokens: int = 0


Answerer = Callable[[str], SourcedAnswer]
"""question -> its answer with sources; raises a ``RagtuneError`` the user can fix."""

Predictor = Callable[[list[str]], list[tuple[str, float]]]
"""texts -> (label, probability) for each text, in order."""


@dataclass(frozen=True)
class Candidate:
    """One named way of answering a suite: a chat ``answer`` or a classifier's ``predict``.

    With ``predict`` set the item text goes to the classifier as is and ``answer`` is not
    used. Raises ``ValueError`` when neither is set.
    """

    name: str
    answer: Answerer | None = None
    predict: Predictor | None = None

    def __post_init__(self) -> None:
        if self.answer is None and self.predict is None:
            raise ValueError(f"candidate {self.name!r} needs an answer or a predict function")


@dataclass
class ItemResult:
    """One candidate's answer to one item, with its scores (``variant``: the candidate's name)."""

    variant: str
    index: int
    question: str
    answer: str = ""
    reference: str = ""
    sources: list[dict] = field(default_factory=list)
    scores: dict[str, float] = field(default_factory=dict)
    error: str = ""

    def to_dict(self) -> dict:
        """JSONL record."""
        return asdict(self)


def parse_label(answer: str, labels: dict[str, str]) -> str | None:
    """The label whose name appears first in the answer (None if none does)."""
    text = answer.lower()
    found = [(text.find(name.lower()), key) for key, name in labels.items() if name.lower() in text]
    return min(found)[1] if found else None


def run_suite(
    suite: Suite,
    candidates: list[Candidate],
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    on_item: Callable[[], None] | None = None,
    concurrency: int = DEFAULT_CONCURRENCY,
) -> list[ItemResult]:
    """Answer and score every item with every candidate.

    Up to ``concurrency`` answers are in flight at once, so a vLLM server batches them;
    results come back in (candidate, item) order whatever the completion order.
    ``embed`` (texts -> unit vectors, one row each) adds ``embedding_similarity``;
    ``on_item`` is called once per finished answer. An answer that raises a
    ``RagtuneError`` becomes an ``ItemResult`` with ``error`` set; other exceptions
    propagate.
    """
    jobs = [
        (candidate, index, item)
        for candidate in candidates
        for index, item in enumerate(suite.items)
    ]

    def one(job: tuple[Candidate, int, Item]) -> ItemResult:
        candidate, index, item = job
        result = ItemResult(
            candidate.name, index, item.question, reference=item.reference or (item.label or "")
        )
        try:
            if candidate.predict is not None:
                started = time.perf_counter()
                label, _ = candidate.predict([item.question])[0]
                result.answer = label
                result.scores = {
                    "accuracy": float(label == item.label),
                    "latency_s": time.perf_counter() - started,
                }
            else:
                _answer(candidate.answer, suite, item, result, embed)
        except RagtuneError as exc:
            result.error = str(exc)
        if on_item:
            on_item()
        return result

    return list(map_in_order(one, jobs, concurrency=concurrency))


def _answer(
    answer: Answerer,
    suite: Suite,
    item: Item,
    result: ItemResult,
    embed: Callable[[list[str]], np.ndarray] | None,
) -> None:
    question = (
        suite.prompt.format(text=item.question) if suite.kind == "classification" else item.question
    )
    started = time.perf_counter()
    answered = answer(question)
    latency = time.perf_counter() - started
    result.answer = answered.text.strip()
    result.sources = [
        {"source": s.source, "page": s.page, "score": s.score, "also_in": s.also_in}
        for s in answered.sources
    ]
    if suite.kind == "classification":
        predicted = parse_label(result.answer, suite.labels)
        result.scores = {"accuracy": float(predicted == item.label), "latency_s": latency}
        return
    scores = {
        **rouge(result.answer, item.reference),
        "bleu": bleu(result.answer, item.reference),
        "exact_match": exact_match(result.answer, item.reference),
        "token_f1": token_f1(result.answer, item.reference),
        "latency_s": latency,
        "tokens_per_s": answered.tokens / latency if latency else 0.0,
    }
    if embed is not None and result.answer:
        vectors = embed([result.answer, item.reference])
        scores["embedding_similarity"] = float(vectors[0] @ vectors[1])
    grounded = groundedness(result.answer, [s.text for s in answered.sources])
    if grounded is not None:
        scores["groundedness"] = grounded
    if item.relevant and answered.sources:
        ranked = dedupe(
            [name for s in answered.sources for name in (s.source, *s.also_in)]
        )  # a shared text's files
        hits = {s for s in ranked if any(matches(s, label) for label in item.relevant)}
        scores.update(
            {
                "hit@1": hit_at_k(ranked, hits, 1),
                "hit@4": hit_at_k(ranked, hits, 4),
                "mrr": mrr_at_k(ranked, hits, 10),
            }
        )
    result.scores = scores


def summarise(results: list[ItemResult], metrics: tuple[str, ...]) -> dict:
    """Per variant and metric: mean, 95% bootstrap interval, n; plus pairwise p-values.

    Pairwise tests use only items that both variants answered and scored.
    """
    variants = list(dict.fromkeys(r.variant for r in results))
    table: dict = {}
    for variant in variants:
        rows = [r for r in results if r.variant == variant]
        table[variant] = {"errors": sum(1 for r in rows if r.error), "metrics": {}}
        for metric in metrics:
            values = [r.scores[metric] for r in rows if not r.error and metric in r.scores]
            if values:
                low, high = bootstrap_ci(values)
                table[variant]["metrics"][metric] = {
                    "mean": statistics.fmean(values),
                    "ci": [low, high],
                    "n": len(values),
                }
    pairs = {}
    for a, b in itertools.combinations(variants, 2):
        by_index = {(r.variant, r.index): r for r in results if not r.error}
        for metric in metrics:
            shared = [
                i
                for (v, i) in by_index
                if v == a
                and (b, i) in by_index
                and metric in by_index[(a, i)].scores
                and metric in by_index[(b, i)].scores
            ]
            if len(shared) >= 2:
                pa = [by_index[(a, i)].scores[metric] for i in shared]
                pb = [by_index[(b, i)].scores[metric] for i in shared]
                pairs.setdefault(f"{a} vs {b}", {})[metric] = {
                    "diff": statistics.fmean(pa) - statistics.fmean(pb),
                    "p": paired_permutation_p(pa, pb),
                    "n": len(shared),
                }
    return {"variants": table, "pairs": pairs}
