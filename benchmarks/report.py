"""Render benchmarks/results/*.json into the tables of docs/performance.md.

Each benchmark owns a section between ``<!-- bench:NAME -->`` and ``<!-- /bench:NAME -->``
markers; everything outside the markers is hand-written and left alone.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PERFORMANCE = REPO / "docs/performance.md"


def retrieval_section(results: dict) -> str:
    """Markdown tables for benchmarks/results/retrieval.json."""
    quality = results["quality"]
    lines = [
        (
            f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['processor']}). "
            f"Labeled set: `{results['dataset']['path']}` ({results['dataset']['questions']} "
            "questions). Reproduce: `make bench` (or `.venv/bin/python -m "
            "benchmarks.retrieval`)."
        ),
        "",
        "| retrieval (torch embedder) | hit@1 | hit@3 | hit@5 | MRR@10 | nDCG@10 |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    plain = quality["plain_script"]
    lines.append(
        f"| plain script (128-word windows + cosine) | {plain['hit@1']:.3f} | {plain['hit@3']:.3f} "
        f"| {plain['hit@5']:.3f} | {plain['mrr@10']:.3f} | {plain['ndcg@10']:.3f} |"
    )
    for name, row in quality["backends"]["torch"]["retrievers"].items():
        lines.append(
            f"| {name} | {row['hit@1']:.3f} | {row['hit@3']:.3f} | {row['hit@5']:.3f} "
            f"| {row['mrr@10']:.3f} | {row['ndcg@10']:.3f} |"
        )
    lines += [
        "",
        (
            f"Embedding 128-word chunks; the plain loop (one `encode` per chunk) ran at "
            f"{quality['plain_loop_chunks_per_s']} chunks/s in the same run."
        ),
        "",
        (
            "| embedding backend | chunks/s | x plain loop | dense hit@5 | hybrid hit@5 | "
            "hybrid MRR@10 |"
        ),
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for name, row in quality["backends"].items():
        r = row["retrievers"]
        lines.append(
            f"| {name} | {row['chunks_per_s']} | {row['speedup_vs_plain_loop']}x | "
            f"{r['dense']['hit@5']:.3f} | {r['hybrid']['hit@5']:.3f} | "
            f"{r['hybrid']['mrr@10']:.3f} |"
        )
    re_ = results["reingest"]
    lines += [
        "",
        (
            f"Ingest of {re_['files']} files: {re_['first']['embedded']} chunks embedded in "
            f"{re_['first']['seconds']} s ({re_['first']['chunks_per_s']} chunks/s end to end); "
            f"re-ingest unchanged: {re_['unchanged']['embedded']} embeddings, "
            f"{re_['unchanged']['seconds']} s ({re_['unchanged_speedup']}x faster)."
        ),
        "",
        "| chunks | dense p50 / p95 ms | bm25 p50 / p95 ms | hybrid p50 / p95 ms | build s |",
        "| --- | --- | --- | --- | --- |",
    ]
    for size, row in results["latency"].items():
        cells = " | ".join(
            f"{row[k]['p50_ms']} / {row[k]['p95_ms']}" for k in ("dense", "bm25", "hybrid")
        )
        lines.append(f"| {int(size):,} | {cells} | {row['build_s']} |")
    return "\n".join(lines)


def _rlhf_section(results: dict) -> str:
    from benchmarks.rlhf import rlhf_section

    return rlhf_section(results)


def _serving_section(results: dict) -> str:
    from benchmarks.serving import serving_section

    return serving_section(results)


def _training_section(results: dict) -> str:
    from benchmarks.training_speed import training_section

    return training_section(results)


def _worker_spin_section(results: dict) -> str:
    from benchmarks.worker_spin import worker_spin_section

    return worker_spin_section(results)


def _ask_concurrency_section(results: dict) -> str:
    from benchmarks.ask_concurrency import ask_concurrency_section

    return ask_concurrency_section(results)


def _engine_cores_section(results: dict) -> str:
    from benchmarks.engine_cores import engine_cores_section

    return engine_cores_section(results)


def _compare_stages_section(results: dict) -> str:
    from benchmarks.compare_stages import compare_stages_section

    return compare_stages_section(results)


def _methods_table_section(results: dict) -> str:
    from benchmarks.methods_table import methods_table_section

    return methods_table_section(results)


# benchmark name -> (document holding its section, renderer)
SECTIONS = {
    "retrieval": (PERFORMANCE, retrieval_section),
    "serving": (PERFORMANCE, _serving_section),
    "training": (PERFORMANCE, _training_section),
    "worker_spin": (PERFORMANCE, _worker_spin_section),
    "engine_cores": (PERFORMANCE, _engine_cores_section),
    "ask_concurrency": (PERFORMANCE, _ask_concurrency_section),
    "rlhf": (REPO / "docs/rlhf.md", _rlhf_section),
    "compare_stages": (REPO / "docs/compare.md", _compare_stages_section),
    "methods_table": (REPO / "docs/methods.md", _methods_table_section),
}


def render() -> None:
    """Replace each benchmark's section with tables from its latest results."""
    for name, (document, render_section) in SECTIONS.items():
        path = REPO / "benchmarks/results" / f"{name}.json"
        if not path.exists() or not document.exists():
            continue
        body = render_section(json.loads(path.read_text()))
        pattern = re.compile(rf"(<!-- bench:{name} -->\n).*?(\n<!-- /bench:{name} -->)", re.DOTALL)
        document.write_text(
            pattern.sub(lambda m, body=body: m.group(1) + body + m.group(2), document.read_text())
        )


if __name__ == "__main__":
    render()
