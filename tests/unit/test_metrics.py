"""Metrics and statistics against hand-computed values."""

from __future__ import annotations

import pytest

from evals.metrics.classification import accuracy, macro_f1
from evals.metrics.text import bleu, exact_match, normalize, rouge, token_f1
from evals.runner import ItemResult, parse_label, summarise
from evals.stats import bootstrap_ci, paired_permutation_p


def test_squad_normalisation_exact_match_and_f1():
    assert normalize("The  Cat, sat!") == "cat sat"
    assert exact_match("the cat sat.", "Cat sat") == 1.0 and exact_match("a dog", "cat") == 0.0
    # prediction "cat sat down" vs reference "the cat sat on mat": common {cat, sat} = 2
    # precision 2/3, recall 2/4 (cat sat on mat) -> F1 = 2*(2/3)*(1/2)/((2/3)+(1/2)) = 4/7
    assert token_f1("cat sat down", "the cat sat on mat") == pytest.approx(4 / 7)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0


def test_rouge_and_bleu():
    scores = rouge("the cat sat", "the cat sat on the mat")
    # unigrams: prediction 3 all matched; reference 6 -> P 1, R 0.5, F 2/3
    assert scores["rouge1"] == pytest.approx(2 / 3)
    # bigrams: prediction {the cat, cat sat} both in reference (5 bigrams) -> P 1, R 2/5, F 4/7
    assert scores["rouge2"] == pytest.approx(4 / 7)
    assert scores["rougeL"] == pytest.approx(2 / 3)
    assert bleu("the cat sat on the mat", "the cat sat on the mat") == pytest.approx(100.0)
    assert bleu("completely different words here", "the cat sat on the mat") < 10


def test_classification_metrics():
    truth, predicted = [1, 1, 0, 0], [1, 0, 0, 0]
    assert accuracy(truth, predicted) == 0.75
    # class 1: tp 1 fp 0 fn 1 -> F1 2/3; class 0: tp 2 fp 1 fn 0 -> F1 4/5; mean 11/15
    assert macro_f1(truth, predicted) == pytest.approx(11 / 15)


def test_bootstrap_and_permutation():
    assert bootstrap_ci([0.5] * 10) == (0.5, 0.5)
    low, high = bootstrap_ci([0, 1] * 50)
    assert low < 0.5 < high and high - low < 0.25
    assert paired_permutation_p([1, 0, 1], [1, 0, 1]) == 1.0
    assert paired_permutation_p([1.0] * 30, [0.0] * 30) < 0.001


def test_parse_label_takes_the_first_label_named():
    labels = {"0": "negative", "1": "positive"}
    assert parse_label("Positive. Not negative at all.", labels) == "1"
    assert parse_label("It's negative, not positive", labels) == "0"
    assert parse_label("no idea", labels) is None


def test_summarise_skips_failed_answers_and_pairs_items():
    results = [
        ItemResult("a", 0, "q0", scores={"token_f1": 1.0}),
        ItemResult("a", 1, "q1", scores={"token_f1": 0.5}),
        ItemResult("b", 0, "q0", scores={"token_f1": 0.0}),
        ItemResult("b", 1, "q1", error="server down"),
    ]
    summary = summarise(results, ("token_f1",))
    assert summary["variants"]["a"]["metrics"]["token_f1"]["mean"] == 0.75
    assert (
        summary["variants"]["b"]["metrics"]["token_f1"]["n"] == 1
        and summary["variants"]["b"]["errors"] == 1
    )
    assert "a vs b" not in summary["pairs"]  # only one shared item: no test
