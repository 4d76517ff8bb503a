"""Retrieval benchmark: quality against a plain script, ingestion speed, query latency.

Every speed figure is a ratio against a baseline measured in the same run:
- quality: dense / BM25 / hybrid (convex, RRF) against the thirty-line script a user would
  write (fixed 128-word windows, MiniLM cosine by brute force), on the shipped labeled set;
- embedding speed: each backend against the plain sentence-transformers loop (one
  ``encode`` call per chunk) on the same 128-word chunks, with hit@5 per backend;
- query latency (retrieval alone, query embedding included) at 10,000 and 100,000
  synthetic chunks (random unit vectors, text drawn from the docs' vocabulary);
- re-ingest of an unchanged corpus: embeddings computed and wall time.

Run: ``.venv/bin/python -m benchmarks.retrieval`` (``make bench``). Writes
``benchmarks/results/retrieval.json``; ``benchmarks/report.py`` renders the table.
"""

from __future__ import annotations

import json
import os
import platform
import random
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from app.components import build_embedder, build_ingest_pipeline, build_retrievers, build_store
from app.settings import load_settings
from evals.retrieval_eval import evaluate, load_dataset, score_ranking

REPO = Path(__file__).resolve().parent.parent
DATASET = REPO / "evals/datasets/retrieval_docs.jsonl"
# The files the labeled set was written against: docs/ grows, the labels do not.
CORPUS = [
    REPO / line for line in (REPO / "evals/datasets/retrieval_docs.files").read_text().split()
]
RESULTS = REPO / "benchmarks/results/retrieval.json"
BACKENDS = [("torch", "fp32"), ("onnx", "fp32"), ("onnx", "optimized"), ("onnx", "int8")]


def _settings(data_dir: Path, **overrides):
    os.environ.setdefault("RAGTUNE_SETTINGS_DIR", str(REPO))
    return load_settings(data_dir=data_dir, **overrides)


def plain_script_baseline(embedder, dataset) -> dict[str, float]:
    """The thirty-line script: 128-word windows, brute-force cosine, no structure."""
    windows, sources = [], []
    for path in CORPUS:
        words = path.read_text().split()
        for start in range(0, len(words), 128):
            windows.append(" ".join(words[start : start + 128]))
            sources.append(str(path))
    matrix = embedder.embed(windows)
    scores = []
    for item in dataset:
        similarity = matrix @ embedder.embed_query(item.question)
        ranked = [sources[i] for i in np.argsort(-similarity)[:30]]
        scores.append(score_ranking(ranked, item.relevant))
    return {m: round(statistics.fmean(s[m] for s in scores), 4) for m in scores[0]}


def quality_and_backends(work: Path, dataset, rounds: int = 3) -> dict:
    """Labeled-set metrics per retriever and per embedding backend, plus embedding speed.

    Speed is measured in interleaved rounds (plain loop, then each backend batched, again
    and again) and reported as medians, so drifting machine load hits all alike.
    """
    rng = random.Random(0)
    vocabulary = " ".join(p.read_text() for p in CORPUS).split()
    chunks = [" ".join(rng.choices(vocabulary, k=128)) for _ in range(64)]
    embedders = {}
    for backend, variant in BACKENDS:
        name = backend if backend == "torch" else f"onnx-{variant}"
        settings = _settings(work / name, embedding={"backend": backend, "onnx_variant": variant})
        embedders[name] = (settings, build_embedder(settings))
        embedders[name][1].embed(chunks[:4])  # load / export outside the timing
    rates: dict[str, list[float]] = {"plain": [], **{name: [] for name in embedders}}
    torch_model = embedders["torch"][1].model
    for _ in range(rounds):
        started = time.perf_counter()
        for chunk in chunks[:24]:
            torch_model.encode([chunk])
        rates["plain"].append(24 / (time.perf_counter() - started))
        for name, (_, embedder) in embedders.items():
            started = time.perf_counter()
            embedder.embed(chunks)
            rates[name].append(len(chunks) / (time.perf_counter() - started))
    plain_rate = statistics.median(rates["plain"])
    out: dict = {
        "plain_loop_chunks_per_s": round(plain_rate, 2),
        "plain_script": plain_script_baseline(embedders["torch"][1], dataset),
        "backends": {},
    }
    for name, (settings, embedder) in embedders.items():
        rate = statistics.median(rates[name])
        pipeline = build_ingest_pipeline(settings, embedder=embedder)
        pipeline.ingest(CORPUS, "docs", show_progress=False)
        retrievers = build_retrievers(settings, pipeline.store, embedder)
        functions = {
            kind: (lambda q, r=r: [c.source for c in r.retrieve(q, "docs", 30)])
            for kind, r in retrievers.items()
        }
        if name == "torch":
            rrf = build_retrievers(
                _settings(work / name, indexing={"hybrid_fusion": "rrf"}), pipeline.store, embedder
            )["hybrid"]
            functions["hybrid-rrf"] = lambda q, r=rrf: [c.source for c in r.retrieve(q, "docs", 30)]
        report = evaluate(dataset, functions, "docs")
        out["backends"][name] = {
            "chunks_per_s": round(rate, 2),
            "speedup_vs_plain_loop": round(rate / plain_rate, 2),
            "rounds": [round(r, 2) for r in rates[name]],
            "retrievers": report.results,
        }
    return out


def latency_at_scale(work: Path, sizes=(10_000, 100_000), queries: int = 60) -> dict:
    """p50/p95 retrieval latency per retriever on synthetic collections."""
    settings = _settings(work / "scale")
    store = build_store(settings)
    embedder = build_embedder(settings)
    rng = np.random.default_rng(0)
    words = " ".join(p.read_text() for p in CORPUS).split()
    questions = [q.question for q in load_dataset(DATASET)][:queries]
    results, have = {}, 0
    for size in sizes:
        started = time.perf_counter()
        # Leaving the writing context rebuilds the BM25 sidecar (part of the build time).
        with store.writing("synthetic", embedding_model=embedder.name, create=True) as collection:
            while have < size:
                n = min(5000, size - have)
                vectors = rng.normal(size=(n, 384)).astype(np.float32)
                vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
                texts = [" ".join(rng.choice(words, 60)) for _ in range(n)]
                ids = [f"s{have + i}" for i in range(n)]
                metas = [
                    {"source": f"/synthetic/doc{(have + i) // 10}.md", "file_type": "md"}
                    for i in range(n)
                ]
                collection.upsert(ids, texts, vectors, metas)
                have += n
        build_s = time.perf_counter() - started
        retrievers = build_retrievers(settings, store, embedder)
        row = {"chunks": size, "build_s": round(build_s, 1)}
        for kind, retriever in retrievers.items():
            retriever.retrieve(questions[0], "synthetic", 5)
            times = []
            for question in questions:
                t0 = time.perf_counter()
                retriever.retrieve(question, "synthetic", 5)
                times.append((time.perf_counter() - t0) * 1000)
            times.sort()
            row[kind] = {
                "p50_ms": round(statistics.median(times), 1),
                "p95_ms": round(times[int(0.95 * (len(times) - 1))], 1),
            }
        results[str(size)] = row
    return results


def reingest(work: Path, files: int = 500) -> dict:
    """Ingest a 500-file corpus, then again unchanged: embeddings and wall time."""
    corpus = work / "corpus"
    corpus.mkdir(parents=True, exist_ok=True)
    rng = random.Random(1)
    words = " ".join(p.read_text() for p in CORPUS).split()
    for i in range(files):
        (corpus / f"note{i:04d}.txt").write_text(" ".join(rng.choices(words, k=128)) + "\n")
    settings = _settings(work / "reingest")
    pipeline = build_ingest_pipeline(settings)
    started = time.perf_counter()
    first = pipeline.ingest([corpus], "notes", show_progress=False)
    first_s = time.perf_counter() - started
    started = time.perf_counter()
    again = pipeline.ingest([corpus], "notes", show_progress=False)
    again_s = time.perf_counter() - started
    return {
        "files": files,
        "first": {
            "embedded": first.embedded,
            "seconds": round(first_s, 1),
            "chunks_per_s": round(first.embedded / first_s, 2),
        },
        "unchanged": {"embedded": again.embedded, "seconds": round(again_s, 2)},
        "unchanged_speedup": round(first_s / again_s, 1),
    }


def main() -> None:
    """Run every part and write the JSON results."""
    dataset = load_dataset(DATASET)
    with tempfile.TemporaryDirectory(prefix="ragtune-bench-") as tmp:
        work = Path(tmp)
        results = {
            "machine": {
                "cpus": os.cpu_count(),
                "processor": platform.processor() or platform.machine(),
            },
            "dataset": {"path": str(DATASET.relative_to(REPO)), "questions": len(dataset)},
            "quality": quality_and_backends(work, dataset),
            "reingest": reingest(work),
            "latency": latency_at_scale(work),
        }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
