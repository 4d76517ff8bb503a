"""Retrieval evaluation: a labeled question set, every retriever, the ranking metrics.

Dataset lines are ``{"question": ..., "relevant": [source paths]}``; a path matches a
retrieved chunk's source when it is equal or a suffix at a folder boundary, so labels
can be written relative to the checkout (``docs/ingestion.md``).
"""

from __future__ import annotations

import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from evals.metrics.retrieval import dedupe, hit_at_k, mrr_at_k, ndcg_at_k
from training.data import DatasetError, read_jsonl

METRICS = ("hit@1", "hit@3", "hit@5", "mrr@10", "ndcg@10")


@dataclass
class LabeledQuestion:
    """A question with the documents that answer it."""

    question: str
    relevant: list[str]


@dataclass
class RetrievalReport:
    """Mean metrics per retriever, plus latency."""

    collection: str
    questions: int
    results: dict[str, dict[str, float]] = field(default_factory=dict)

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {
            "collection": self.collection,
            "questions": self.questions,
            "retrievers": self.results,
        }

    def table(self) -> str:
        """A plain-text table, one row per retriever."""
        header = f"{'retriever':<10}" + "".join(f"{m:>9}" for m in METRICS) + f"{'p50 ms':>9}"
        rows = [header, "-" * len(header)]
        for name, values in self.results.items():
            rows.append(
                f"{name:<10}"
                + "".join(f"{values[m]:>9.3f}" for m in METRICS)
                + f"{values['latency_p50_ms']:>9.1f}"
            )
        return "\n".join(rows)


def load_dataset(path: Path) -> list[LabeledQuestion]:
    """Read a labeled set; a malformed line raises ``DatasetError`` naming its number."""
    questions = []
    for number, record in read_jsonl(path):
        try:
            question, relevant = record["question"], record["relevant"]
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            if (
                not isinstance(relevant, list)
                or not relevant
                or not all(isinstance(r, str) for r in relevant)
            ):
                raise ValueError("'relevant' must be a non-empty list of source paths")
        except (KeyError, TypeError, ValueError) as exc:
            raise DatasetError(f"{path}, line {number}: {exc.__class__.__name__}: {exc}") from None
        questions.append(LabeledQuestion(question, relevant))
    if not questions:
        raise DatasetError(f"{path}: no questions")
    return questions


def matches(source: str, label: str) -> bool:
    """True when a retrieved source is the labeled path."""
    label = label.lstrip("./")
    return source == label or source.endswith("/" + label)


def score_ranking(sources: list[str], relevant: list[str]) -> dict[str, float]:
    """All metrics for one question, given the retrieved sources in rank order."""
    ranked = dedupe(sources)
    hits = {s for s in ranked if any(matches(s, label) for label in relevant)}
    return {
        "hit@1": hit_at_k(ranked, hits, 1),
        "hit@3": hit_at_k(ranked, hits, 3),
        "hit@5": hit_at_k(ranked, hits, 5),
        "mrr@10": mrr_at_k(ranked, hits, 10),
        "ndcg@10": ndcg_at_k(ranked, hits, 10, n_relevant=max(len(relevant), len(hits))),
    }


def evaluate(
    dataset: list[LabeledQuestion],
    retrieve: dict[str, Callable[[str], list[str]]],
    collection: str,
    on_question: Callable[[], None] | None = None,
) -> RetrievalReport:
    """Mean metrics of each named retrieve function (question -> ranked sources)."""
    report = RetrievalReport(collection, len(dataset))
    for name, function in retrieve.items():
        scores: dict[str, list[float]] = {m: [] for m in METRICS}
        latencies = []
        for item in dataset:
            started = time.perf_counter()
            sources = function(item.question)
            latencies.append((time.perf_counter() - started) * 1000)
            for metric, value in score_ranking(sources, item.relevant).items():
                scores[metric].append(value)
            if on_question:
                on_question()
        report.results[name] = {m: round(statistics.fmean(v), 4) for m, v in scores.items()}
        report.results[name]["latency_p50_ms"] = round(statistics.median(latencies), 2)
    return report
