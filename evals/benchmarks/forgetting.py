"""Forgetting on benchmarks: the base model and a tuned adapter on the same items, paired.

``benchmark_forgetting`` prepares the task families once, scores the base model (or reads
its per-item results from the cache) and then the adapter, one model in memory at a time,
and reports per family and metric: base, tuned, delta (tuned - base), a 95% bootstrap
interval of the paired per-item differences and a paired test's p-value. The result goes
into the adapter's manifest as ``metrics["benchmark_forgetting"]``, where a later check
replaces the families it scores and keeps the others.

The base model's per-item results are cached as one JSON file per family under
``cache_dir`` (``Settings.bench_base_cache_dir``), keyed by everything that decides them,
so that checking several adapters of one base scores the base once.
"""

from __future__ import annotations

import gc
import hashlib
import json
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from evals.benchmarks.models import check_base, load_scoring_model
from evals.benchmarks.runner import PreparedTask, prepare, run_benchmarks
from evals.benchmarks.tasks import BenchmarkError, TaskSpec, parse_tasks
from evals.stats import bootstrap_ci
from training.methods import SCORING_KINDS
from training.registry import AdapterRegistry

METRIC_KEY = "benchmark_forgetting"
METHOD = (
    "Each family's first `limit` items (data order; None: all) scored by log-likelihood "
    "for the base model and the adapter (ragtune eval bench, acc / acc_norm as lm-eval "
    "0.4.13); delta = tuned - base; delta_ci95 = 95% percentile bootstrap interval of the "
    "mean of the paired per-item differences (2000 resamples, seed 0, "
    "evals.stats.bootstrap_ci); p = McNemar's exact test, two-sided (scipy.stats.binomtest "
    "on the discordant items: base right / tuned wrong vs base wrong / tuned right, p = 0.5)."
)


def check_request(
    tasks: str, limit: int | None, bench_dir: Path, *, shots: int | None = None
) -> list[PreparedTask]:
    """Parse and prepare ``tasks`` (comma-separated) without loading any model.

    Raises ``BenchmarkError`` for an unknown task, ``limit`` < 1, a missing benchmarks
    folder or data file, a malformed line in one (named by file and line: the result goes
    into the manifest, so it is refused rather than skipped as `eval bench` skips it), or
    more shots than a few-shot source holds.
    """
    if limit is not None and limit < 1:
        raise BenchmarkError(f"--bench-limit / --limit must be 1 or more, not {limit}")
    specs: list[TaskSpec] = parse_tasks(tasks)
    if not bench_dir.is_dir():
        raise BenchmarkError(
            f"benchmarks folder {bench_dir} not found (set benchmarks_dir in settings.yaml or "
            "RAGTUNE_BENCHMARKS_DIR to the folder of the benchmark data README)"
        )
    prepared = [prepare(spec, bench_dir, shots=shots, limit=limit) for spec in specs]
    problems = [problem for task in prepared for problem in task.problems]
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise BenchmarkError("malformed benchmark line: " + "; ".join(problems[:3]) + more)
    return prepared


def check_adapter(registry: AdapterRegistry, adapter: str, base: str) -> None:
    """Refuse an unknown adapter (``RegistryError``), a scoring-only one, one trained on
    another base or a base folder that is gone (``BenchmarkError``)."""
    manifest = registry.get(adapter)
    if manifest.kind in SCORING_KINDS:
        raise BenchmarkError(
            "no benchmark forgetting check for a scoring-only adapter: "
            + SCORING_KINDS[manifest.kind].format(name=adapter)
        )
    check_base(adapter, manifest.base_model, base)
    if Path(base).is_absolute() and not Path(base).exists():
        raise BenchmarkError(f"base model folder {base} of adapter {adapter!r} not found")


def benchmark_forgetting(
    base: str,
    *,
    registry: AdapterRegistry,
    adapter: str,
    tasks: str,
    limit: int | None,
    bench_dir: Path,
    shots: int | None = None,
    cache_dir: Path | None = None,
    batch_size: int = 16,
    save: bool = True,
    on_total: Callable[[int], object] | None = None,
    on_progress: Callable[[int], object] | None = None,
) -> dict:
    """Base versus ``adapter`` on the benchmark ``tasks``; stored in its manifest if ``save``.

    ``base`` is the base model's folder or hub id (the adapter must have been trained on
    it). ``limit`` keeps each family's first N items (None: all). ``on_total(n)`` is called
    once with the number of choices to score, ``on_progress(n)`` after each batch.

    Returns ``{"method", "results": {family: {"n", "num_fewshot", "limit", "checked", metric:
    {"base", "tuned", "delta", "delta_ci95", "p", "base_right_tuned_wrong",
    "base_wrong_tuned_right"}}}, "config": {...}}``. Raises ``BenchmarkError`` /
    ``RegistryError`` on bad input before any model is loaded; the manifest is written only
    after both models are scored.
    """
    started = time.perf_counter()
    prepared = check_request(tasks, limit, bench_dir, shots=shots)
    check_adapter(registry, adapter, base)
    keys = {t.spec.name: cache_key(base, t, limit) for t in prepared}
    cached = {name: _read_cache(cache_dir, key) for name, key in keys.items()}
    missing = [t for t in prepared if cached[t.spec.name] is None]
    if on_total:
        on_total(sum(_choices(t) for t in missing) + sum(_choices(t) for t in prepared))
    seconds = {"base": 0.0, "tuned": 0.0}
    base_rows = {name: c["samples"] for name, c in cached.items() if c is not None}
    if missing:
        result, seconds["base"] = _score(base, None, None, missing, batch_size, on_progress)
        for task in missing:
            name = task.spec.name
            base_rows[name] = _slim(result["samples"][name])
            _write_cache(cache_dir, keys[name], base_rows[name])
    tuned, seconds["tuned"] = _score(base, registry, adapter, prepared, batch_size, on_progress)
    results, now = {}, time.strftime("%Y-%m-%dT%H:%M:%S%z")
    for task in prepared:
        name = task.spec.name
        results[name] = compare(base_rows[name], _slim(tuned["samples"][name]), task.spec.metrics)
        results[name].update(num_fewshot=task.num_fewshot, limit=limit, checked=now)
    out = {
        "method": METHOD,
        "results": results,
        "config": {
            "base_model": base,
            "adapter": adapter,
            "adapter_kind": tuned["config"].get("adapter_kind"),
            "merged_for_scoring": tuned["config"].get("merged", False),
            "tasks": [t.spec.name for t in prepared],
            "limit": limit,
            "shots": shots,
            "benchmarks_dir": str(bench_dir),
            "files_sha256": {t.spec.name: t.files for t in prepared},
            "base_from_cache": [t.spec.name for t in prepared if cached[t.spec.name]],
            "batch_size": batch_size,
            "versions": tuned["config"]["versions"],
            "seconds": {
                "base": round(seconds["base"], 1),
                "tuned": round(seconds["tuned"], 1),
                "total": round(time.perf_counter() - started, 1),
            },
            "created": now,
        },
    }
    if save:
        registry.update_metrics(adapter, METRIC_KEY, merged(registry, adapter, out))
    return out


def merged(registry: AdapterRegistry, adapter: str, result: dict) -> dict:
    """``result`` with the families of the adapter's earlier check that it did not score
    (each family row carries its own ``limit`` and ``checked`` time; ``config`` and
    ``method`` are the latest run's)."""
    earlier = registry.get(adapter).metrics.get(METRIC_KEY) or {}
    kept = {k: v for k, v in earlier.get("results", {}).items() if k not in result["results"]}
    return {**result, "results": {**kept, **result["results"]}}


def compare(base: list[dict], tuned: list[dict], metrics: list[str]) -> dict:
    """Paired comparison of per-item rows (``id`` plus 0/1 per metric) of one family.

    Raises ``BenchmarkError`` if the two lists are not the same items in the same order.
    """
    if [r["id"] for r in base] != [r["id"] for r in tuned]:
        raise BenchmarkError("base and tuned results are not the same items; clear the cache")
    from scipy.stats import binomtest

    out: dict = {"n": len(base)}
    for metric in metrics:
        b = np.array([r[metric] for r in base], dtype=float)
        t = np.array([r[metric] for r in tuned], dtype=float)
        diffs = t - b
        lost, gained = int(np.sum(diffs < 0)), int(np.sum(diffs > 0))
        p = binomtest(gained, lost + gained, 0.5).pvalue if lost + gained else 1.0
        out[metric] = {
            "base": round(float(b.mean()), 4),
            "tuned": round(float(t.mean()), 4),
            "delta": round(float(diffs.mean()), 4),
            "delta_ci95": [round(v, 4) for v in bootstrap_ci(diffs.tolist())],
            "p": round(float(p), 4),
            "base_right_tuned_wrong": lost,
            "base_wrong_tuned_right": gained,
        }
    return out


def delta_cells(row: dict) -> list[tuple[str, str]]:
    """``(metric, "+0.010 [-0.020, +0.040]")`` for one family's row of a result (acc, then
    acc_norm when present): the delta and its 95% interval, in the one format the CLI, the
    Adapters tab and the methods table show."""
    cells = []
    for metric in ("acc", "acc_norm"):
        if metric in row:
            m = row[metric]
            low, high = m["delta_ci95"]
            cells.append((metric, f"{m['delta']:+.3f} [{low:+.3f}, {high:+.3f}]"))
    return cells


def cache_key(base: str, task: PreparedTask, limit: int | None) -> dict:
    """What decides the base model's per-item results of one family."""
    return {
        "base_model": str(Path(base).resolve()) if Path(base).exists() else base,
        "weights": _fingerprint(base),
        "task": task.spec.name,
        "template_sha256": hashlib.sha256(task.spec.source.encode()).hexdigest(),
        "limit": limit,
        "shots": task.num_fewshot,
        "files_sha256": task.files,
        "ragtune": _ragtune_version(),
    }


def _ragtune_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("ragtune")
    except PackageNotFoundError:
        return "not installed"


def _fingerprint(base: str) -> list:
    """Size and mtime of a local model's weight files (a changed folder misses the cache)."""
    folder = Path(base)
    if not folder.is_dir():
        return []
    return [
        [p.name, p.stat().st_size, p.stat().st_mtime_ns]
        for p in sorted(folder.glob("*"))
        if p.suffix in {".safetensors", ".bin"}
    ]


def _cache_file(cache_dir: Path, key: dict) -> Path:
    digest = hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()[:32]
    return cache_dir / f"{key['task']}-{digest}.json"


def _read_cache(cache_dir: Path | None, key: dict) -> dict | None:
    if cache_dir is None:
        return None
    path = _cache_file(cache_dir, key)
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None
    return data if data.get("key") == key else None


def _write_cache(cache_dir: Path | None, key: dict, rows: list[dict]) -> None:
    if cache_dir is None:
        return
    cache_dir.mkdir(parents=True, exist_ok=True)
    path = _cache_file(cache_dir, key)
    partial = path.with_suffix(f".{os.getpid()}.partial")
    partial.write_text(json.dumps({"key": key, "samples": rows}))
    os.replace(partial, path)


def _slim(rows: list[dict]) -> list[dict]:
    return [{k: r[k] for k in ("id", "acc", "acc_norm")} for r in rows]


def _choices(task: PreparedTask) -> int:
    return sum(len(task.spec.choices(item)) for item in task.items)


def _score(base, registry, adapter, prepared, batch_size, on_progress) -> tuple[dict, float]:
    """Load one model, score ``prepared``, free it; (result, seconds including loading)."""
    started = time.perf_counter()
    model, tokenizer, describe = load_scoring_model(base, registry=registry, adapter=adapter)
    try:
        result = run_benchmarks(
            prepared,
            model,
            tokenizer,
            describe=describe,
            batch_size=batch_size,
            on_progress=on_progress,
        )
    finally:
        del model
        gc.collect()
    return result, time.perf_counter() - started
