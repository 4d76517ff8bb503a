"""Score task families on one model: items -> requests -> log-likelihoods -> acc / acc_norm.

``prepare`` reads a family's files from the benchmarks data folder, picks its few-shot
examples and applies ``limit``; ``run_benchmarks`` scores every prepared family in one
batched pass and returns a JSON-ready result that says exactly how it was computed.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from evals.benchmarks.scoring import loglikelihoods
from evals.benchmarks.tasks import BenchmarkError, Item, TaskSpec, read_items, sha256
from evals.stats import bootstrap_ci

METRIC_DEFINITIONS = {
    "acc": "1 if argmax_i loglik(choice_i | prompt) is the gold choice (ties: lowest index), "
    "else 0; mean over items (lm-eval 0.4.13 multiple_choice acc)",
    "acc_norm": "as acc with loglik(choice_i) / len(choice_i in characters, without the "
    "leading delimiter) (lm-eval 0.4.13 acc_norm)",
    "stderr": "sample standard deviation (ddof=1) / sqrt(n), as lm-eval's mean_stderr",
    "ci95": "95% percentile bootstrap interval of the mean, 2000 resamples, seed 0 "
    "(evals.stats.bootstrap_ci)",
    "loglik": "sum of float32 log-probabilities of the continuation tokens, which are "
    "encode(context + continuation) after encode(context); trailing context whitespace moves "
    "into the continuation; no chat template (lm-eval HFLM defaults)",
}


@dataclass
class PreparedTask:
    """A family ready to score: its items, each item's shots, and where they came from."""

    spec: TaskSpec
    items: list[Item]
    shots: list[list[Item]]
    num_fewshot: int
    files: dict[str, str] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    fewshot_source: str = ""


def prepare(
    spec: TaskSpec, bench_dir: Path, *, shots: int | None = None, limit: int | None = None
) -> PreparedTask:
    """Read ``spec``'s files under ``bench_dir``; ``shots`` overrides its ``num_fewshot``
    (not for ``fixed_shots`` families); ``limit`` keeps the first N items in data order.

    Raises ``BenchmarkError`` for a missing file, a family with no valid item, or more shots
    than its few-shot source holds. Malformed lines are skipped and listed in ``problems``.
    """
    items, problems, files = [], [], {}
    for name in spec.test:
        path = bench_dir / name
        found, bad = read_items(path, spec)
        items += found
        problems += bad
        files[name] = sha256(path)
    if not items:
        raise BenchmarkError(f"benchmark {spec.name!r}: no valid item in {', '.join(spec.test)}")
    k = spec.num_fewshot if shots is None or spec.fixed_shots else shots
    if k < 0:
        raise BenchmarkError(f"--shots must be 0 or more, not {k}")
    group = (lambda item: getattr(item, spec.group_by)) if spec.group_by else (lambda item: "")
    if spec.fewshot:
        path = bench_dir / spec.fewshot
        pool, bad = read_items(path, spec)
        problems += bad
        files[spec.fewshot] = sha256(path)
        source = f"first {k} rows of {spec.fewshot}" + (
            f" with the item's {spec.group_by}" if spec.group_by else ""
        )
    else:
        pool = items
        source = f"first {k} other items of the test file" + (
            f" with the item's {spec.group_by}" if spec.group_by else ""
        )
    pools: dict[str, list[Item]] = {}
    for item in pool:
        pools.setdefault(group(item), []).append(item)
    chosen = items[:limit] if limit else items
    shot_lists = []
    for item in chosen:
        candidates = [s for s in pools.get(group(item), []) if s is not item]
        if k > len(candidates):
            where = spec.fewshot or ", ".join(spec.test)
            label = f" {spec.group_by} {group(item)!r}" if spec.group_by else ""
            raise BenchmarkError(
                f"--shots {k} is more than the {len(candidates)} few-shot examples of "
                f"{spec.name}{label} ({where})"
            )
        shot_lists.append(candidates[:k])
    return PreparedTask(spec, chosen, shot_lists, k, files, problems, source if k else "none")


def run_benchmarks(
    tasks: list[PreparedTask],
    model,
    tokenizer,
    *,
    describe: dict | None = None,
    batch_size: int = 16,
    on_progress: Callable[[int], None] | None = None,
    keep_samples: bool = True,
) -> dict:
    """Score every prepared family with ``model`` / ``tokenizer`` (a causal LM in eval mode).

    Returns ``{"results": {family: metrics}, "config": ..., "tasks": ..., "metrics": ...,
    "samples": {family: [per item]}}``; ``describe`` (model, adapter, ...) goes into
    ``config``. ``on_progress(n)`` receives the number of choices scored after each batch.
    """
    requests, spans = [], []
    for task in tasks:
        for item, shots in zip(task.items, task.shots):
            pairs = task.spec.requests(item, shots)
            spans.append((len(requests), len(pairs)))
            requests += pairs
    started = time.perf_counter()
    lls = loglikelihoods(model, tokenizer, requests, batch_size=batch_size, on_forward=on_progress)
    seconds = time.perf_counter() - started
    results, samples, cursor = {}, {}, 0
    for task in tasks:
        rows = []
        for item in task.items:
            first, count = spans[cursor]
            cursor += 1
            scores = lls[first : first + count]
            lengths = [len(c) for c in task.spec.choices(item)]
            rows.append(
                {
                    "id": item.where,
                    "group": getattr(item, task.spec.group_by) if task.spec.group_by else "",
                    "gold": item.answer,
                    "loglik": [round(s, 6) for s in scores],
                    "acc": int(np.argmax(scores) == item.answer),
                    "acc_norm": int(np.argmax(np.array(scores) / lengths) == item.answer),
                }
            )
        results[task.spec.name] = _summarise(rows, task.spec.metrics, bool(task.spec.group_by))
        samples[task.spec.name] = rows
    out = {
        "results": results,
        "config": {
            **(describe or {}),
            "versions": _versions(),
            "batch_size": batch_size,
            "requests": len(requests),
            "seconds": round(seconds, 1),
        },
        "tasks": {
            t.spec.name: {
                "num_fewshot": t.num_fewshot,
                "fewshot_source": t.fewshot_source,
                "items": len(t.items),
                "files_sha256": t.files,
                "skipped_lines": t.problems,
                "template": t.spec.source,
            }
            for t in tasks
        },
        "metrics": METRIC_DEFINITIONS,
    }
    if keep_samples:
        out["samples"] = samples
    return out


def _versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("ragtune", "torch", "transformers", "peft"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "not installed"
    return found


def _summarise(rows: list[dict], metrics: list[str], by_group: bool) -> dict:
    summary: dict = {"n": len(rows)}
    for metric in metrics:
        values = [r[metric] for r in rows]
        summary[metric] = round(float(np.mean(values)), 4)
        summary[f"{metric}_stderr"] = round(_stderr(values), 4)
        summary[f"{metric}_ci95"] = [round(v, 4) for v in bootstrap_ci(values)]
    if by_group:
        groups: dict[str, list[dict]] = {}
        for row in rows:
            groups.setdefault(row["group"], []).append(row)
        summary["groups"] = {
            name: {"n": len(g), **{m: round(float(np.mean([r[m] for r in g])), 4) for m in metrics}}
            for name, g in groups.items()
        }
    return summary


def _stderr(values: list[int]) -> float:
    if len(values) < 2:
        return float("nan")
    return float(np.std(values, ddof=1) / math.sqrt(len(values)))


def table(result: dict) -> str:
    """A plain-text table: one row per family with n, acc and acc_norm and their intervals."""
    lines = [f"{'task':<16} {'n':>5}  {'acc':>6}  {'95% CI':<15}  {'acc_norm':>8}  {'95% CI':<15}"]
    for name, row in result["results"].items():
        cells = []
        for metric in ("acc", "acc_norm"):
            if metric in row:
                low, high = row[f"{metric}_ci95"]
                cells += [f"{row[metric]:.4f}", f"[{low:.3f}, {high:.3f}]"]
            else:
                cells += ["-", ""]
        lines.append(
            f"{name:<16} {row['n']:>5}  {cells[0]:>6}  {cells[1]:<15}  "
            f"{cells[2]:>8}  {cells[3]:<15}"
        )
    return "\n".join(lines)
