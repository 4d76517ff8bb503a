"""Question/answer datasets from a collection (``data synth``) or a user's file (``data import``).

Synthesis samples chunks with a seed, has the pair writer (``app.synth_writer``) write one
question and short answer per chunk, filters the pairs (``training.qa_filters``), counts
every drop by reason and saves the kept ones as a dataset with seeded splits
(``training.qa_dataset.DatasetStore``). Nothing is written unless a pair is kept.
"""

from __future__ import annotations

import random
import time
from collections import Counter
from pathlib import Path
from typing import Any

from app.generation.base import Generator
from app.settings import Settings
from app.synth_writer import (
    SynthError,
    described,
    generate_all,
    parse_pair,
    synth_generator,
    writer_info,
)
from indexing.bm25_tokens import Bm25Tokenizer
from indexing.store import VectorStore
from training.data import DatasetError
from training.qa_dataset import (
    Dataset,
    DatasetManifest,
    DatasetStore,
    QAPair,
    read_pairs,
)
from training.qa_filters import DROP_REASONS, Candidate, QAFilter

__all__ = ["SynthError", "dataset_store", "import_dataset", "synth_generator", "synthesize_dataset"]


def dataset_store(settings: Settings) -> DatasetStore:
    """The datasets folder, splitting with the near-duplicate threshold of the filters."""
    return DatasetStore(settings.datasets_dir, settings.synth.filters.near_duplicate_ratio)


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
    ``generator_info`` describes the writer in the manifest (default: ``writer_info``).
    Chunks are sampled without repetition until each eligible one was used, then again.
    Returns the dataset and the counts: ``generated`` (= ``n``), ``kept``,
    ``dropped`` by reason (``DROP_REASONS``), the split sizes, ``keep_rate``, ``seconds``.
    Raises ``DatasetExists`` (name taken, unless ``overwrite``), ``StoreError`` (no such
    collection), ``SynthError`` (no usable chunk, nothing kept) and ``GeneratorError``
    when the first request fails, all before any dataset is written.
    """
    started = time.monotonic()
    datasets = dataset_store(settings)
    if n < 1:
        raise SynthError(f"--n must be at least 1, not {n}")
    datasets.check_free(name, overwrite)
    chunks = _sample_chunks(settings, store, collection, n, seed)
    info = generator_info or writer_info(settings)
    outputs = generate_all(settings, generator, info, [c[1] for c in chunks], seed, progress)
    dropped: Counter = Counter()
    rejects: list[dict[str, Any]] = []  # dropped.jsonl: what was dropped and why
    candidates, origins = [], []
    for (chunk_id, text, source), output in zip(chunks, outputs):
        if isinstance(output, Exception) or (pair := parse_pair(output)) is None:
            why = "generator_error" if isinstance(output, Exception) else "malformed"
            dropped[why] += 1
            rejects.append({"reason": why, "output": str(output)[:500], "source": source})
        else:
            candidates.append(Candidate(pair[0], pair[1], text))
            origins.append((chunk_id, text, source))
    tokenizer = Bm25Tokenizer(settings.indexing.bm25_language)
    verdicts = QAFilter(settings.synth.filters, embedder, tokenizer).judge(candidates)
    pairs = []
    for candidate, (chunk_id, text, source), why in zip(candidates, origins, verdicts):
        question, answer = candidate.question, candidate.answer
        if why is None:
            pairs.append(QAPair(question, answer, source=source, chunk_id=chunk_id, chunk=text))
        else:
            dropped[why] += 1
            rejects.append(
                {"reason": why, "question": question, "answer": answer, "source": source}
                | {"chunk_id": chunk_id}
            )
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
        generator={**info, **described(settings)},
        filters={
            **settings.synth.filters.model_dump(),
            "min_chunk_words": settings.synth.min_chunk_words,
        },
        counts=counts,
    )
    dataset = datasets.save(manifest, pairs, overwrite=overwrite, dropped=rejects)
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
