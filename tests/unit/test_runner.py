"""The eval runner's seam: candidates answer through plain callables, errors are recorded."""

from __future__ import annotations

import pytest

from app.variants import Variant, VariantRunner
from evals.runner import Candidate, SourcedAnswer, run_suite, summarise
from evals.suites import Item, Suite
from indexing.errors import RagtuneError
from indexing.retrieval import RetrievedChunk

QA = Suite(
    "mini",
    "qa",
    [
        Item("How hot for green tea?", "80 degrees", ["docs/tea.md"]),
        Item("How long to steep?", "two minutes", ["docs/tea.md"]),
    ],
)


def tea_expert(question: str) -> SourcedAnswer:
    chunk = RetrievedChunk("/corpus/docs/tea.md", "Green tea: 80 degrees.", 0.9)
    text = " 80 degrees \n" if "hot" in question else "two minutes"
    return SourcedAnswer(text, [chunk], tokens=3)


class Refused(RagtuneError):
    """A user-fixable failure, as the chat service raises them."""


def refuser(question: str) -> SourcedAnswer:
    raise Refused(f"cannot answer {question!r}")


def test_answers_are_scored_in_candidate_then_item_order():
    results = run_suite(
        QA, [Candidate("expert", answer=tea_expert), Candidate("again", answer=tea_expert)]
    )
    assert [(r.variant, r.index) for r in results] == [
        ("expert", 0),
        ("expert", 1),
        ("again", 0),
        ("again", 1),
    ]
    first = results[0]
    assert first.answer == "80 degrees" and first.scores["exact_match"] == 1.0
    assert first.scores["hit@1"] == 1.0 and first.scores["tokens_per_s"] > 0
    assert first.sources == [
        {"source": "/corpus/docs/tea.md", "page": None, "score": 0.9, "also_in": []}
    ]


def test_a_ragtune_error_is_recorded_and_left_out_of_the_metrics():
    results = run_suite(
        QA, [Candidate("expert", answer=tea_expert), Candidate("refuser", answer=refuser)]
    )
    failed = [r for r in results if r.variant == "refuser"]
    assert all(r.error.startswith("cannot answer") and not r.scores for r in failed)
    table = summarise(results, ("exact_match",))["variants"]
    assert table["refuser"] == {"errors": 2, "metrics": {}}
    assert table["expert"]["metrics"]["exact_match"]["n"] == 2


def test_any_other_error_is_a_bug_and_propagates():
    def broken(question: str) -> SourcedAnswer:
        raise KeyError("bug")

    with pytest.raises(KeyError):
        run_suite(QA, [Candidate("broken", answer=broken)])


def test_classification_uses_the_prompt_for_chat_and_the_text_for_classifiers():
    suite = Suite(
        "sentiment",
        "classification",
        [Item("great film", label="positive"), Item("dull film", label="negative")],
        prompt="Sentiment of: {text}",
        labels={"positive": "positive", "negative": "negative"},
    )
    asked = []

    def chat(question: str) -> SourcedAnswer:
        asked.append(question)
        return SourcedAnswer("It is positive.")

    def predict(texts: list[str]) -> list[tuple[str, float]]:
        return [("positive" if "great" in t else "negative", 0.9) for t in texts]

    results = run_suite(
        suite, [Candidate("chat", answer=chat), Candidate("clf", predict=predict)], concurrency=1
    )
    assert sorted(asked) == ["Sentiment of: dull film", "Sentiment of: great film"]
    assert [r.scores["accuracy"] for r in results] == [1.0, 0.0, 1.0, 1.0]


def test_a_candidate_needs_a_way_to_answer():
    with pytest.raises(ValueError, match="needs an answer or a predict"):
        Candidate("nothing")


def test_variants_become_candidates_in_order():
    variants = [Variant("rag", mode="rag"), Variant("clf", classifier="sst2")]
    loaded = []

    def classifier(name: str):
        loaded.append(name)
        return lambda texts: [("positive", 1.0) for _ in texts]

    with_classifier = VariantRunner(chat=None).candidates(variants, classifier)
    assert [c.name for c in with_classifier] == ["rag", "clf"] and loaded == ["sst2"]
    assert with_classifier[0].answer is not None and with_classifier[1].predict is not None
    without = VariantRunner(chat=None).candidates(variants)
    assert all(c.answer is not None and c.predict is None for c in without)
