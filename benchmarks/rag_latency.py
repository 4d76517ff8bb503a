"""Where a RAG answer's time goes: query embedding, retrieval, prompt build, first
token, full answer.

Runs the app's own chat service (the code path of the chat tab and the API) against a
running engine, on the docs folder ingested into the benchmark data folder, for k = 2, 4
and 8 retrieved chunks. Called by ``benchmarks.serving`` while its LoRA-free engine runs.
"""

from __future__ import annotations

import statistics
import time
from pathlib import Path

from app.generation.base import GenerationParams

QUESTIONS = [
    "Which command ingests documents?",
    "How do I load a LoRA adapter into the server?",
    "What does the hybrid retriever combine?",
    "How are A/B votes turned into preference pairs?",
]


def _ms(samples: list[float]) -> dict:
    ordered = sorted(samples)
    return {
        "p50_ms": round(statistics.median(ordered) * 1000, 1),
        "p95_ms": round(ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))] * 1000, 1),
    }


def rag_breakdown(
    data_dir: Path, engine_url: str, model_dir: str, repo: Path, new_tokens: int = 64
) -> dict:
    """Per-stage latency (p50/p95 ms) for k in 2, 4, 8."""
    from app.components import (
        build_chat_service,
        build_embedder,
        build_generator,
        build_ingest_pipeline,
        build_store,
    )
    from app.prompting import build_messages
    from app.settings import load_settings

    settings = load_settings(data_dir=data_dir, generator={"url": engine_url, "model": model_dir})
    store, embedder = build_store(settings), build_embedder(settings)
    build_ingest_pipeline(settings, store=store, embedder=embedder).ingest(
        [repo / "docs"], "docs", show_progress=False
    )
    chat = build_chat_service(
        settings, generator=build_generator(settings), store=store, embedder=embedder
    )
    params = GenerationParams(
        temperature=0, max_tokens=new_tokens, seed=0, extra={"ignore_eos": True}
    )
    embedder.embed_query("warm up")
    results = {}
    for k in (2, 4, 8):
        stages: dict[str, list[float]] = {
            s: [] for s in ("embed", "retrieve", "prompt", "ttft", "answer")
        }
        for question in QUESTIONS:
            t0 = time.perf_counter()
            embedder.embed_query(question)
            t1 = time.perf_counter()
            sources = chat.retrieve(question, "docs", k)
            t2 = time.perf_counter()
            messages = build_messages(
                "rag",
                question,
                system_prompt=settings.prompting.system_prompt,
                sources=sources,
                max_source_chars=settings.prompting.max_source_chars,
            )
            t3 = time.perf_counter()
            first = None
            for _ in chat.generator.stream(messages, params=params):
                first = first or time.perf_counter()
            t4 = time.perf_counter()
            stages["embed"].append(t1 - t0)
            stages["retrieve"].append(t2 - t1)  # retrieval embeds the query again: this includes it
            stages["prompt"].append(t3 - t2)
            stages["ttft"].append((first or t4) - t3)
            stages["answer"].append(t4 - t3)
        results[str(k)] = {stage: _ms(samples) for stage, samples in stages.items()}
    return results
