"""kill -9 of `ragtune ingest` at random points, then a re-run, ends as a clean ingest would.

The corpus is 120 files of 40 real review sentences each (GLUE SST-2; on a machine without
``../shared/data``, the lines of the repository's own docs and datasets), so an ingest lasts
long enough to be killed while embedding, while writing Chroma and while rebuilding BM25.
Each killed run is followed by the same ingest; the collection must then hold the same
ids, texts and counts as a clean ingest, and answer queries identically.
"""

from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.components import build_embedder, build_store
from app.settings import load_settings
from indexing.retrieval import BM25Retriever, DenseRetriever
from tests.conftest import REPO
from tests.integration.conftest import RAGTUNE

pytestmark = pytest.mark.reliability
SST2 = REPO.parent / "shared" / "data" / "sst2" / "train.tsv"
QUERIES = ["a moving and funny film", "the plot is a mess", "great performances from the cast"]
KILLED_RUNS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("crash-corpus")
    if SST2.exists():
        sentences = [line.split("\t")[0] for line in SST2.read_text().splitlines()[1:4801]]
    else:
        texts = [*sorted(REPO.glob("docs/*.md")), *sorted(REPO.glob("*/datasets/*.jsonl"))]
        lines = [line for path in texts for line in path.read_text().splitlines() if len(line) > 20]
        sentences = [
            lines[i % len(lines)] for i in range(840)
        ]  # about as much text as the SST-2 sample
    per_file = len(sentences) // 120
    for index in range(120):
        part = sentences[index * per_file : (index + 1) * per_file]
        (folder / f"reviews-{index:03d}.txt").write_text("\n\n".join(part) + "\n")
    return folder


def ingest(corpus: Path, data_dir: Path) -> subprocess.Popen:
    """`ragtune ingest` in the background; its progress bar goes to ``<data_dir>.log``."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")},
        "RAGTUNE_SETTINGS_DIR": str(REPO),
        "RAGTUNE_DATA_DIR": str(data_dir),
    }
    log = data_dir.with_suffix(".log").open("w")
    return subprocess.Popen(
        [RAGTUNE, "ingest", str(corpus), "--collection", "reviews"],
        env=env,
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=log,
    )


def wait_for_writing(process: subprocess.Popen, data_dir: Path) -> float:
    """Block until the ingest shows its progress bar (files are being written); the time then."""
    log = data_dir.with_suffix(".log")
    while process.poll() is None and "ingest -> reviews" not in log.read_text(errors="replace"):
        time.sleep(0.05)
    return time.monotonic()


def snapshot(data_dir: Path) -> dict:
    """Everything that must match a clean ingest: ids, texts, metadata and query answers."""
    settings = load_settings(data_dir=data_dir)
    store, embedder = build_store(settings), build_embedder(settings)
    collection = store.collection("reviews", embedding_model=embedder.name)
    got = collection.chunks()
    records = sorted(zip(got.ids, got.texts, [m["file_hash"] for m in got.metadatas]))
    answers = {
        (kind.__name__, query): [
            c.chunk_id for c in kind(store, embedder).retrieve(query, "reviews", k=5)
        ]
        for kind in (DenseRetriever, BM25Retriever)
        for query in QUERIES
    }
    return {
        "count": collection.count(),
        "records": records,
        "lexical": sorted(store.lexical_index(collection).ids),
        "answers": answers,
    }


def test_killed_ingests_end_identical_to_a_clean_ingest(corpus, tmp_path):
    clean = ingest(corpus, tmp_path / "clean")
    writing = wait_for_writing(clean, tmp_path / "clean")
    assert clean.wait(timeout=900) == 0, (tmp_path / "clean.log").read_text()[-2000:]
    duration = time.monotonic() - writing  # from the first file to the end (BM25 rebuild included)
    expected = snapshot(tmp_path / "clean")
    assert expected["count"] >= 120
    rng = random.Random(20261123)
    for run in range(KILLED_RUNS):
        data_dir = tmp_path / f"crashed-{run}"
        delay = rng.uniform(0.05, 0.95) * duration
        for attempt in range(6):  # a warm re-run can finish sooner than the timed clean one
            victim = ingest(corpus, data_dir)
            time.sleep(max(0.0, wait_for_writing(victim, data_dir) + delay - time.monotonic()))
            victim.send_signal(signal.SIGKILL)
            if victim.wait() == -signal.SIGKILL:
                break
            shutil.rmtree(data_dir, ignore_errors=True)  # ended before the kill: again, sooner
            data_dir.with_suffix(".log").unlink(missing_ok=True)
            delay /= 2
        else:
            raise AssertionError(f"run {run}: every ingest ended before it was killed")
        print(f"run {run}: killed {delay:.1f} s into a {duration:.1f} s write phase")
        rerun = ingest(corpus, data_dir)
        assert rerun.wait(timeout=900) == 0, (
            f"run {run}: the re-run failed:\n{data_dir.with_suffix('.log').read_text()[-2000:]}"
        )
        assert snapshot(data_dir) == expected, (
            f"run {run}: the collection differs from a clean ingest"
        )
