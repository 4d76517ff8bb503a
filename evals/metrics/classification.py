"""Classification metrics over label lists."""

from __future__ import annotations


def accuracy(truth: list, predicted: list) -> float:
    """Share of positions where the labels agree."""
    if len(truth) != len(predicted):
        raise ValueError("truth and predictions differ in length")
    return sum(t == p for t, p in zip(truth, predicted)) / len(truth) if truth else 0.0


def macro_f1(truth: list, predicted: list) -> float:
    """Unweighted mean of per-class F1 over the classes present in either list."""
    classes = sorted(set(truth) | set(predicted), key=str)
    scores = []
    for label in classes:
        tp = sum(t == label and p == label for t, p in zip(truth, predicted))
        fp = sum(t != label and p == label for t, p in zip(truth, predicted))
        fn = sum(t == label and p != label for t, p in zip(truth, predicted))
        scores.append(2 * tp / (2 * tp + fp + fn) if tp else 0.0)
    return sum(scores) / len(scores) if scores else 0.0
