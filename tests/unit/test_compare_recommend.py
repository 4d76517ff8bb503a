"""The study's recommendation rule (both branches) and the groundedness metric."""

from __future__ import annotations

import pytest

from app.compare.recommend import recommend
from evals.metrics.groundedness import cited_sentences, groundedness


def row(mean: float, low: float, high: float, train: float = 0.0, p50: float = 1.0) -> dict:
    return {
        "metrics": {"token_f1": {"mean": mean, "ci": [low, high], "n": 30}},
        "cost": {"train_seconds": train, "latency_p50_s": p50, "prompt_tokens": 100},
    }


def test_an_arm_whose_interval_lies_above_all_others_wins():
    arms = {
        "zero-shot": row(0.10, 0.05, 0.15),
        "rag": row(0.40, 0.33, 0.47),
        "lora": row(0.20, 0.12, 0.30, train=600),
    }
    result = recommend(arms, "token_f1")
    assert result["arm"] == "rag" and result["rule"] == "beats-interval"
    assert "0.400 [0.330, 0.470]" in result["reason"] and "lora" in result["reason"]


def test_when_intervals_overlap_the_cheapest_tied_arm_wins():
    arms = {
        "zero-shot": row(0.10, 0.05, 0.15),
        "rag": row(0.30, 0.22, 0.38, p50=2.0),
        "rag+lora": row(0.33, 0.25, 0.41, train=600, p50=2.1),
        "few-shot": row(0.27, 0.21, 0.33, p50=1.5),
    }
    result = recommend(arms, "token_f1")
    assert result["rule"] == "cheapest-of-tied"
    assert set(result["tied"]) == {"rag", "rag+lora", "few-shot"}
    assert result["arm"] == "few-shot"  # no training, lowest latency among the tied
    assert "rag+lora" in result["reason"] and "no training" in result["reason"]


def test_arms_without_the_metric_take_no_part_and_none_at_all_is_said():
    arms = {"zero-shot": {"metrics": {}, "cost": {}}, "rag": row(0.3, 0.2, 0.4)}
    only = recommend(arms, "token_f1")
    assert only["arm"] == "rag" and "zero-shot" in only["reason"]
    nothing = recommend({"zero-shot": {"metrics": {}}}, "groundedness")
    assert nothing["arm"] is None and nothing["rule"] == "none"


SOURCES = [
    "Green tea is steeped at 80 degrees for two minutes.",
    "The lighthouse keeper logs the fog horn every night.",
]


def test_groundedness_counts_words_supported_by_the_cited_sources():
    assert groundedness("Green tea is steeped at 80 degrees [1].", SOURCES) == 1.0
    assert groundedness("Green tea is steeped at 80 degrees [2].", SOURCES) == pytest.approx(0.0)
    assert groundedness("Green tea is steeped at 80 degrees.", SOURCES) == 0.0  # cites nothing
    half = groundedness("Green tea steeped [1]. Coffee roasted dark.", SOURCES)
    assert half == pytest.approx(3 / 6)


def test_groundedness_does_not_apply_without_sources_or_words():
    assert groundedness("Green tea.", []) is None
    assert groundedness("[1].", SOURCES) is None


def test_a_citation_at_the_end_of_a_paragraph_covers_it_and_bad_numbers_are_ignored():
    pairs = cited_sentences("Tea is green. It is steeped [1].\n\nFog horns [7].", 2)
    assert pairs[0][1] == [1] and pairs[1][1] == [1]
    assert pairs[2][1] == []
    assert groundedness("Tea is green. Steeped at 80 degrees [1].", SOURCES) == 1.0
