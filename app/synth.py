"""Question/answer datasets from a collection (``ragtune data synth``) or a user's file
(``import``).

Synthesis samples chunks with a seed, asks a generator per chunk for one question and a
short answer grounded in it, as JSON constrained by a JSON schema (``response_format``,
honoured by vLLM's guided decoding and by OpenAI-compatible teachers), filters the pairs
(``training.qa_filters``) and saves the kept ones as a dataset with seeded splits
(``training.qa_dataset.DatasetStore``). Requests run ``synth.concurrency`` at a time, so
the engine batches them. The writer is the configured generator, or the teacher endpoint
of the ``synth`` settings. The first request runs alone: a generator that is down or
refuses fails the command with a clear error before the rest start; later failures and
output that is not the asked-for JSON are counted as drops, never a crash.
"""

from __future__ import annotations

import json
import os
import random
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from pathlib import Path
from typing import Any

from tqdm import tqdm

from app.generation.base import GenerationParams, Generator, GeneratorError, GeneratorUnavailable
from app.settings import Settings
from indexing.bm25_tokens import Bm25Tokenizer
from indexing.errors import RagtuneError
from indexing.store import VectorStore
from training.data import DatasetError
from training.qa_dataset import (
    Dataset,
    DatasetExists,
    DatasetManifest,
    DatasetStore,
    QAPair,
    read_pairs,
)
from training.qa_filters import DROP_REASONS, Candidate, QAFilter

SCHEMA = {
    "type": "object",
    "properties": {"question": {"type": "string"}, "answer": {"type": "string"}},
    "required": ["question", "answer"],
    "additionalProperties": False,
}
RESPONSE_FORMAT = {
    "type": "json_schema",
    "json_schema": {"name": "qa_pair", "schema": SCHEMA, "strict": True},
}
SYSTEM = "You write quiz questions about a text, each with its short answer."
PROMPT = (
    'Text:\n"""\n{chunk}\n"""\n\n'
    "Write one question that this text answers, and its answer: a few words taken from the "
    "text. The question ends with a question mark and does not contain the answer. Reply "
    'with JSON: {{"question": "...", "answer": "..."}}'
)


class SynthError(RagtuneError, ValueError):
    """Synthesis cannot start or kept nothing; the message says why (with the drop counts)."""


def dataset_store(settings: Settings) -> DatasetStore:
    """The datasets folder, splitting with the near-duplicate threshold of the filters."""
    return DatasetStore(settings.datasets_dir, settings.synth.filters.near_duplicate_ratio)


def synth_generator(settings: Settings) -> tuple[Generator, dict[str, Any]]:
    """The pair writer and its description for the manifest (model, endpoint, teacher).

    A ``synth.teacher_url`` gives a client of that OpenAI-compatible endpoint (the key
    from the environment variable ``synth.api_key_env``); otherwise the configured
    generator. Raises ``SynthError`` for a teacher URL without ``synth.teacher_model``.
    """
    s = settings.synth
    if s.teacher_url:
        from app.generation.vllm_client import VLLMGenerator

        if not s.teacher_model:
            raise SynthError("synth.teacher_url is set: set synth.teacher_model too")
        key = os.environ.get(s.api_key_env) or None
        client = VLLMGenerator(
            s.teacher_url, s.teacher_model, settings.generator.request_timeout_s, api_key=key
        )
        info = {"model": s.teacher_model, "endpoint": client.base_url, "teacher": True}
        return client, info
    from app.components import build_generator, generator_url

    fake = settings.generator.mode == "fake"
    endpoint = "fake" if fake else generator_url(settings)
    info = {"model": settings.generator.model, "endpoint": endpoint, "teacher": False}
    return build_generator(settings), info


def synthesize_dataset(
    settings: Settings,
    generator: Generator,
    store: VectorStore,
    embedder,
    *,
    collection: str,
    n: int,
    name: str,
    seed: int = 0,
    progress: bool = True,
    generator_info: dict[str, Any] | None = None,
    overwrite: bool = False,
) -> tuple[Dataset, dict[str, Any]]:
    """Write ``n`` pairs from chunks of ``collection``, filter them, save dataset ``name``.

    ``embedder`` (``indexing.embedding.Embedder``) serves the similarity filter;
    ``generator_info`` describes the writer in the manifest (``synth_generator`` gives
    it). Chunks are sampled without repetition until each eligible one was used, then
    again. Returns the dataset and the counts: ``generated`` (= ``n``), ``kept``,
    ``dropped`` by reason (``DROP_REASONS``), the split sizes, ``keep_rate``, ``seconds``.
    Raises ``DatasetExists`` (name taken, unless ``overwrite``), ``StoreError`` (no such
    collection), ``SynthError`` (no usable chunk, nothing kept) and ``GeneratorError``
    when the first request fails, all before any dataset is written.
    """
    started = time.monotonic()
    datasets = dataset_store(settings)
    if n < 1:
        raise SynthError(f"--n must be at least 1, not {n}")
    if datasets.exists(name) and not overwrite:
        raise DatasetExists(f"dataset {name!r} exists; pick another name or delete it first")
    chunks = _sample_chunks(settings, store, collection, n, seed)
    info = generator_info or {"model": "?", "endpoint": "?"}
    outputs = _generate(settings, generator, info, [c[1] for c in chunks], seed, progress)
    dropped: Counter = Counter()
    candidates, origins = [], []
    for (chunk_id, text, source), output in zip(chunks, outputs):
        if isinstance(output, Exception):
            dropped["generator_error"] += 1
        elif (pair := _parse(output)) is None:
            dropped["malformed"] += 1
        else:
            candidates.append(Candidate(pair[0], pair[1], text))
            origins.append((chunk_id, text, source))
    tokenizer = Bm25Tokenizer(settings.indexing.bm25_language)
    kept_at, filtered = QAFilter(settings.synth.filters, embedder, tokenizer).apply(candidates)
    dropped.update(filtered)
    pairs = []
    for i in kept_at:
        chunk_id, text, source = origins[i]
        question, answer = candidates[i].question, candidates[i].answer
        pairs.append(QAPair(question, answer, source=source, chunk_id=chunk_id, chunk=text))
    counts = {
        "generated": n,
        "kept": len(pairs),
        "dropped": {reason: dropped.get(reason, 0) for reason in DROP_REASONS},
        "chunks_sampled": len({c[0] for c in chunks}),
    }
    if not pairs:
        errors = [str(o) for o in outputs if isinstance(o, Exception)][:1]
        raise SynthError(
            f"no pair of {n} was kept, so no dataset was written; dropped: "
            + ", ".join(f"{k} {v}" for k, v in counts["dropped"].items() if v)
            + (f" (first error: {errors[0]})" if errors else "")
        )
    manifest = DatasetManifest(
        name=name,
        collection=collection,
        origin="synth",
        seed=seed,
        generator={**info, **_sampling(settings), "response_format": "json_schema"},
        filters={
            **settings.synth.filters.model_dump(),
            "min_chunk_words": settings.synth.min_chunk_words,
        },
        counts=counts,
    )
    dataset = datasets.save(manifest, pairs, overwrite=overwrite)
    seconds = round(time.monotonic() - started, 1)
    return dataset, {**dataset.manifest.counts, "keep_rate": len(pairs) / n, "seconds": seconds}


def import_dataset(
    settings: Settings,
    path: Path,
    *,
    name: str,
    collection: str = "",
    seed: int = 0,
    overwrite: bool = False,
) -> tuple[Dataset, list[str]]:
    """Save the pairs of a user's JSONL or CSV file as dataset ``name`` with seeded splits.

    Returns the dataset and one problem per skipped line (file and line named). Raises
    ``DatasetError`` when the file is unreadable or has no valid pair, ``DatasetExists``
    when the name is taken (unless ``overwrite``).
    """
    pairs, problems = read_pairs(path)
    if not pairs:
        shown = "; ".join(problems[:3]) or "the file has no lines"
        raise DatasetError(f"{path}: no valid question/answer pair ({shown})")
    manifest = DatasetManifest(
        name=name,
        collection=collection,
        origin="import",
        seed=seed,
        source_file=str(path),
        counts={"imported": len(pairs), "skipped_lines": len(problems), "kept": len(pairs)},
    )
    return dataset_store(settings).save(manifest, pairs, overwrite=overwrite), problems


def _sample_chunks(
    settings: Settings, store: VectorStore, collection: str, n: int, seed: int
) -> list[tuple[str, str, str]]:
    """``n`` (chunk id, text, source) of the collection's chunks with enough words, seeded."""
    handle = store.collection(collection, embedding_model=None)
    every = handle.chunks()
    least = settings.synth.min_chunk_words
    eligible = sorted(
        (cid, text, (meta or {}).get("source", ""))
        for cid, text, meta in zip(every.ids, every.texts, every.metadatas)
        if len((text or "").split()) >= least
    )
    if not eligible:
        if not every.ids:
            raise SynthError(f"collection {collection!r} is empty; ingest documents into it first")
        raise SynthError(
            f"no chunk of collection {collection!r} has {least} words or more "
            "(synth.min_chunk_words)"
        )
    rng = random.Random(seed)
    picked: list[tuple[str, str, str]] = []
    while len(picked) < n:
        picked.extend(rng.sample(eligible, len(eligible)))
    return picked[:n]


def _sampling(settings: Settings) -> dict[str, Any]:
    return {"temperature": settings.synth.temperature, "max_tokens": settings.synth.max_tokens}


def _generate(
    settings: Settings,
    generator: Generator,
    info: dict[str, Any],
    chunks: list[str],
    seed: int,
    progress: bool,
) -> list[str | Exception]:
    """The generator's raw text for each chunk, in order, or the exception its request raised.

    The first request runs alone and a failure of it is raised (a clear error before the
    work starts); the others run ``synth.concurrency`` at a time.
    """
    sampling = _sampling(settings)

    def ask(index: int) -> str:
        messages = [
            {"role": "system", "content": SYSTEM},
            {"role": "user", "content": PROMPT.format(chunk=chunks[index])},
        ]
        params = GenerationParams(seed=seed * 1_000_003 + index, **sampling)
        stream = generator.complete_stream(
            messages, params=params, fields={"response_format": RESPONSE_FORMAT}
        )
        return "".join(
            (choice.get("delta") or {}).get("content") or ""
            for chunk in stream
            for choice in chunk.get("choices") or []
            if choice.get("index", 0) == 0
        )

    outputs: list[str | Exception] = [""] * len(chunks)
    where = f"{info.get('model')} at {info.get('endpoint')}"
    try:
        outputs[0] = ask(0)
    except GeneratorUnavailable as exc:
        raise GeneratorUnavailable(f"the pair writer ({where}) is not available: {exc}") from None
    except GeneratorError as exc:
        raise SynthError(f"the pair writer ({where}) failed the first request: {exc}") from None
    bar = tqdm(total=len(chunks), initial=1, desc="synth", unit="pair", disable=not progress)
    pool = ThreadPoolExecutor(max_workers=settings.synth.concurrency)
    try:
        futures = {pool.submit(ask, i): i for i in range(1, len(chunks))}
        for future in as_completed(futures):
            try:
                outputs[futures[future]] = future.result()
            except GeneratorError as exc:
                outputs[futures[future]] = exc
            bar.update()
    finally:
        pool.shutdown(wait=False, cancel_futures=True)  # Ctrl-C: queued requests never start
        bar.close()
    return outputs


def _parse(text: str) -> tuple[str, str] | None:
    """(question, answer) from the writer's JSON, or None when it is not that.

    Text around the outermost braces (a code fence from a teacher without guided
    decoding) is ignored.
    """
    start, end = text.find("{"), text.rfind("}")
    try:
        data = json.loads(text[start : end + 1]) if start >= 0 else None
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    question, answer = data.get("question"), data.get("answer")
    if not (isinstance(question, str) and isinstance(answer, str)):
        return None
    if not question.strip() or not answer.strip():
        return None
    return question.strip(), answer.strip()
