"""The numbers of a study's report, from its stage results: quality, cost, forgetting.

Quality: each metric's mean with a 95% percentile-bootstrap interval per arm
(``evals.runner.summarise``) and a paired sign-flip permutation test of every arm
against the best arm on the items both answered. Cost: training wall time, peak memory
and adapter size from the adapter's manifest; answer latency p50/p95, prompt tokens per
answer and streamed tokens per second from the answers. Forgetting: the paired change of
each adapter's scores against the base model on the general suite, with a bootstrap
interval of the mean difference (plus ``training/forgetting.py``'s perplexity change
when the budget ran it).
"""

from __future__ import annotations

import statistics
from typing import Any

import numpy as np

from app.compare.arms import Arm, Trained
from app.compare.study import Study
from evals.runner import ItemResult, summarise
from evals.stats import bootstrap_ci

QUALITY = ("rougeL", "token_f1", "embedding_similarity", "groundedness", "hit@1", "hit@4", "mrr")
FORGETTING = ("token_f1", "rougeL", "embedding_similarity")


def _results(stage_result: dict[str, Any]) -> list[ItemResult]:
    return [ItemResult(**r) for r in stage_result.get("results", [])]


def _round(value: float | None, digits: int = 4) -> float | None:
    return None if value is None else round(float(value), digits)


def cost(study: Study, arm: Arm, answers: list[ItemResult], prompt_tokens: list[int]) -> dict:
    """One arm's cost: training (0 without an adapter) and answering."""
    ok = [r for r in answers if not r.error]
    latencies = [r.scores["latency_s"] for r in ok if "latency_s" in r.scores]
    speeds = [r.scores["tokens_per_s"] for r in ok if r.scores.get("tokens_per_s")]
    out: dict[str, Any] = {
        "train_seconds": 0.0,
        "peak_memory_mb": None,
        "adapter_mb": 0.0,
        "latency_p50_s": _round(np.percentile(latencies, 50)) if latencies else None,
        "latency_p95_s": _round(np.percentile(latencies, 95)) if latencies else None,
        "prompt_tokens": _round(statistics.fmean(prompt_tokens), 1) if prompt_tokens else None,
        "tokens_per_s": _round(statistics.fmean(speeds), 2) if speeds else None,
    }
    trained = study.result(arm.trained.stage) if arm.trained else None
    if trained:
        metrics = trained["manifest"].get("metrics", {})
        out["train_seconds"] = metrics.get("train_seconds")
        out["peak_memory_mb"] = metrics.get("peak_memory_mb")
        out["adapter_mb"] = round(trained["adapter_bytes"] / 1e6, 2)
    return out


def forgetting(study: Study, trained: Trained) -> dict[str, Any] | None:
    """``trained``'s change on the general suite against the base: per metric the mean
    paired difference (adapter - base), its 95% bootstrap interval and n; None when either
    side did not finish."""
    base, tuned = study.result("forgetting-base"), study.result(f"forgetting-{trained.key}")
    if not base or not tuned:
        return None
    by_index = {r.index: r for r in _results(base) if not r.error}
    out: dict[str, Any] = {"metrics": {}}
    for metric in FORGETTING:
        diffs = [
            r.scores[metric] - by_index[r.index].scores[metric]
            for r in _results(tuned)
            if not r.error and r.index in by_index
            if metric in r.scores and metric in by_index[r.index].scores
        ]
        if diffs:
            low, high = bootstrap_ci(diffs)
            out["metrics"][metric] = {
                "delta": statistics.fmean(diffs),
                "ci": [low, high],
                "n": len(diffs),
            }
    train = study.result(trained.stage) or {}
    check = train.get("manifest", {}).get("metrics", {}).get("forgetting")
    if check:
        out["perplexity_check"] = check.get("delta", {})
    return out


def quality(study: Study, arms: list[Arm], primary: str) -> dict[str, Any]:
    """Per arm: status, metrics (mean, ci, n), errors, cost; the best arm on ``primary``
    and each arm's paired test against it."""
    state = study.state().stages
    results: list[ItemResult] = []
    rows: dict[str, Any] = {}
    for arm in arms:
        done = study.result(arm.stage)
        entry = state.get(arm.stage)
        if done is None:
            why = entry.error if entry and entry.error else "not run"
            rows[arm.name] = {"status": "failed", "error": why, "description": arm.description}
            continue
        answers = _results(done)
        results += answers
        rows[arm.name] = {
            "status": "ok",
            "description": arm.description,
            "variant": done.get("variant", {}),
            "errors": sum(1 for r in answers if r.error),
            "n": len(answers),
            "cost": cost(study, arm, answers, done.get("prompt_tokens", [])),
        }
    summary = summarise(results, QUALITY) if results else {"variants": {}, "pairs": {}}
    for name, cell in summary["variants"].items():
        rows[name]["metrics"] = cell["metrics"]
    scored = {n: r["metrics"][primary] for n, r in rows.items() if primary in r.get("metrics", {})}
    best = max(scored, key=lambda n: scored[n]["mean"]) if scored else None
    for name, row in rows.items():
        if best is None or name == best or row["status"] != "ok":
            continue
        row["vs_best"] = {}
        for pair, sign in ((f"{name} vs {best}", 1), (f"{best} vs {name}", -1)):
            for metric, cell in summary["pairs"].get(pair, {}).items():
                if metric in QUALITY:
                    row["vs_best"][metric] = {**cell, "diff": sign * cell["diff"]}
    return {"arms": rows, "best": best}
