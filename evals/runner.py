"""Batch comparison: every item of a suite answered by every variant, then scored.

Answers stream through the same chat service as the app (deltas are counted as tokens
for tokens/s). A failed answer is recorded with its error and left out of the metrics,
never scored as zero.
"""

from __future__ import annotations

import itertools
import statistics
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field

import numpy as np

from app.variants import Variant, VariantRunner
from evals.metrics.retrieval import dedupe, hit_at_k, mrr_at_k
from evals.metrics.text import bleu, exact_match, rouge, token_f1
from evals.retrieval_eval import matches
from evals.stats import bootstrap_ci, paired_permutation_p
from evals.suites import Item, Suite

QA_METRICS = (
    "rouge1",
    "rouge2",
    "rougeL",
    "bleu",
    "exact_match",
    "token_f1",
    "embedding_similarity",
    "hit@1",
    "hit@4",
    "mrr",
    "latency_s",
    "tokens_per_s",
)
CLASSIFICATION_METRICS = ("accuracy", "latency_s")


@dataclass
class ItemResult:
    """One variant's answer to one item, with its scores."""

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
    variants: list[Variant],
    runner: VariantRunner,
    *,
    embed: Callable[[list[str]], np.ndarray] | None = None,
    classifier: Callable[[str], Callable[[list[str]], list[tuple[str, float]]]] | None = None,
    on_item: Callable[[], None] | None = None,
    concurrency: int = 4,
) -> list[ItemResult]:
    """Answer and score every item with every variant.

    Up to ``concurrency`` answers are in flight at once, so a vLLM server batches them;
    results come back in (variant, item) order whatever the completion order.
    """
    from concurrent.futures import ThreadPoolExecutor

    predictors = {v.name: classifier(v.classifier) for v in variants if v.classifier and classifier}
    jobs = [
        (variant, index, item) for variant in variants for index, item in enumerate(suite.items)
    ]

    def one(job) -> ItemResult:
        from app.errors import user_error_types

        variant, index, item = job
        result = ItemResult(
            variant.name, index, item.question, reference=item.reference or (item.label or "")
        )
        try:
            if variant.name in predictors:
                started = time.perf_counter()
                label, _ = predictors[variant.name]([item.question])[0]
                result.answer = label
                result.scores = {
                    "accuracy": float(label == item.label),
                    "latency_s": time.perf_counter() - started,
                }
            else:
                _answer(runner, variant, suite, item, result, embed)
        except user_error_types() as exc:
            result.error = str(exc)
        if on_item:
            on_item()
        return result

    with ThreadPoolExecutor(max_workers=max(1, concurrency)) as pool:
        return list(pool.map(one, jobs))


def _answer(runner, variant, suite, item: Item, result: ItemResult, embed) -> None:
    question = (
        suite.prompt.format(text=item.question) if suite.kind == "classification" else item.question
    )
    started = time.perf_counter()
    turn = runner.prepare(variant, question)
    deltas = list(runner.stream(variant, turn))
    latency = time.perf_counter() - started
    result.answer = "".join(deltas).strip()
    result.sources = [
        {"source": s.source, "page": s.page, "score": s.score, "also_in": s.also_in}
        for s in turn.sources
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
        "tokens_per_s": len(deltas) / latency if latency else 0.0,
    }
    if embed is not None and result.answer:
        vectors = embed([result.answer, item.reference])
        scores["embedding_similarity"] = float(vectors[0] @ vectors[1])
    if item.relevant and turn.sources:
        ranked = dedupe(
            [name for s in turn.sources for name in (s.source, *s.also_in)]
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
