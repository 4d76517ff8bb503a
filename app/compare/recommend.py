"""The recommendation, written from the numbers.

Rule: take the arm with the highest mean on the primary metric. If its 95% interval lies
wholly above every other arm's interval, it wins: it beats the rest beyond the interval.
Otherwise the arms whose intervals overlap the best arm's are tied with it, and the
cheapest of them is recommended: the least training time first (no adapter: 0 s), then
the lower median answer latency, then fewer prompt tokens. Arms that failed, or have no
score on the metric (groundedness needs sources), take no part, and the reason says so.
"""

from __future__ import annotations

import math
from typing import Any


def _fmt(cell: dict[str, Any]) -> str:
    return f"{cell['mean']:.3f} [{cell['ci'][0]:.3f}, {cell['ci'][1]:.3f}]"


def cost_key(row: dict[str, Any]) -> tuple[float, float, float]:
    """Sort key of an arm's cost: (training seconds, p50 latency, prompt tokens)."""
    cost = row.get("cost", {})

    def number(value: Any) -> float:
        return math.inf if value is None else float(value)

    return (
        number(cost.get("train_seconds") or 0.0),
        number(cost.get("latency_p50_s")),
        number(cost.get("prompt_tokens")),
    )


def _cost_words(row: dict[str, Any]) -> str:
    cost = row.get("cost", {})
    train = cost.get("train_seconds") or 0
    parts = [f"{train:.0f} s of training" if train else "no training"]
    if cost.get("latency_p50_s") is not None:
        parts.append(f"p50 latency {cost['latency_p50_s']:.2f} s")
    if cost.get("prompt_tokens") is not None:
        parts.append(f"{cost['prompt_tokens']:.0f} prompt tokens per answer")
    return ", ".join(parts)


def recommend(arms: dict[str, dict[str, Any]], metric: str) -> dict[str, Any]:
    """The recommended arm on ``metric`` with the reason, from the report's arm rows.

    Returns ``{"arm", "rule", "metric", "reason", "tied"}``; ``rule`` is ``beats-interval``,
    ``cheapest-of-tied`` or ``none`` (``arm`` None: no arm has a score on the metric).
    """
    scored = {n: r for n, r in arms.items() if metric in r.get("metrics", {})}
    left_out = [n for n in arms if n not in scored]
    note = (
        f" Not compared (failed, or no {metric} score): {', '.join(left_out)}." if left_out else ""
    )
    if not scored:
        return {
            "arm": None,
            "rule": "none",
            "metric": metric,
            "tied": [],
            "reason": f"No arm has a {metric} score, so none can be recommended.{note}",
        }
    cells = {n: r["metrics"][metric] for n, r in scored.items()}
    best = max(cells, key=lambda n: cells[n]["mean"])
    others = [n for n in cells if n != best]
    low = cells[best]["ci"][0]
    tied = [best] + [n for n in others if cells[n]["ci"][1] >= low]
    if others and len(tied) == 1:
        runner_up = max(others, key=lambda n: cells[n]["mean"])
        return {
            "arm": best,
            "rule": "beats-interval",
            "metric": metric,
            "tied": [best],
            "reason": f"{best} has the highest {metric}, {_fmt(cells[best])} (mean [95% CI]), "
            f"and its interval lies above every other arm's; the next best, {runner_up}, has "
            f"{_fmt(cells[runner_up])}. Cost of {best}: {_cost_words(scored[best])}.{note}",
        }
    if not others:
        return {
            "arm": best,
            "rule": "only-arm",
            "metric": metric,
            "tied": [best],
            "reason": f"{best} is the only arm with a {metric} score, {_fmt(cells[best])}.{note}",
        }
    cheapest = min(tied, key=lambda n: cost_key(scored[n]))
    listed = ", ".join(f"{n} {_fmt(cells[n])}" for n in tied)
    return {
        "arm": cheapest,
        "rule": "cheapest-of-tied",
        "metric": metric,
        "tied": tied,
        "reason": f"No arm beats the rest on {metric} beyond the 95% interval: the intervals "
        f"of {listed} overlap that of the best mean ({best}). Of these tied arms {cheapest} "
        f"is the cheapest: {_cost_words(scored[cheapest])}.{note}",
    }
