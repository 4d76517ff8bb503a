"""kill -9 of `ragtune ingest` at random points, then a re-run, ends as a clean ingest would.

The corpus is 120 files of 40 real review sentences each (GLUE SST-2), so an ingest lasts long
enough to be killed while embedding, while writing Chroma and while rebuilding BM25.
Each killed run is followed by the same ingest; the collection must then hold the same
ids, texts and counts as a clean ingest, and answer queries identically.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import time
from pathlib import Path

import pytest

from app.components import build_embedder, build_store
from app.settings import load_settings
from indexing.retrieval import BM25Retriever, DenseRetriever
from indexing.store import get_all
from tests.conftest import REPO
from tests.integration.conftest import RAGTUNE

pytestmark = pytest.mark.reliability
SST2 = REPO.parent / "shared" / "data" / "sst2" / "train.tsv"
QUERIES = ["a moving and funny film", "the plot is a mess", "great performances from the cast"]
KILLED_RUNS = 4


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    if not SST2.exists():
        pytest.skip(f"{SST2} is not on this machine")
    folder = tmp_path_factory.mktemp("sst2-corpus")
    sentences = [line.split("\t")[0] for line in SST2.read_text().splitlines()[1:4801]]
    for index in range(120):
        (folder / f"reviews-{index:03d}.txt").write_text("\n\n".join(sentences[index * 40:(index + 1) * 40]) + "\n")
    return folder


def ingest(corpus: Path, data_dir: Path) -> subprocess.Popen:
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("RAGTUNE_")},
           "RAGTUNE_SETTINGS_DIR": str(REPO), "RAGTUNE_DATA_DIR": str(data_dir)}  # fmt: skip
    return subprocess.Popen([RAGTUNE, "ingest", str(corpus), "--collection", "reviews", "--json"], env=env,
                            cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True)  # fmt: skip


def snapshot(data_dir: Path) -> dict:
    """Everything that must match a clean ingest: ids, texts, metadata and query answers."""
    settings = load_settings(data_dir=data_dir)
    store, embedder = build_store(settings), build_embedder(settings)
    collection = store.collection("reviews", embedding_model=embedder.name)
    got = get_all(collection, ["documents", "metadatas"])
    records = sorted(zip(got["ids"], got["documents"], [m["file_hash"] for m in got["metadatas"]]))
    answers = {
        (kind.__name__, query): [c.chunk_id for c in kind(store, embedder).retrieve(query, "reviews", k=5)]
        for kind in (DenseRetriever, BM25Retriever)
        for query in QUERIES
    }
    return {"count": collection.count(), "records": records, "lexical": sorted(store.lexical_index(collection).ids),
            "answers": answers}  # fmt: skip


def test_killed_ingests_end_identical_to_a_clean_ingest(corpus, tmp_path):
    started = time.monotonic()
    clean = ingest(corpus, tmp_path / "clean")
    out, err = clean.communicate(timeout=900)
    assert clean.returncode == 0, err[-2000:]
    duration = time.monotonic() - started
    expected = snapshot(tmp_path / "clean")
    assert expected["count"] >= 120
    rng = random.Random(20261123)
    data_dir = tmp_path / "crashed"
    for run in range(KILLED_RUNS):
        victim = ingest(corpus, data_dir)
        delay = rng.uniform(0.2, 1.0) * duration
        try:
            victim.wait(timeout=delay)
        except subprocess.TimeoutExpired:
            victim.send_signal(signal.SIGKILL)
            victim.wait()
        print(f"run {run}: killed after {delay:.1f} s of a {duration:.1f} s ingest (exit {victim.returncode})")
        rerun = ingest(corpus, data_dir)
        _, err = rerun.communicate(timeout=900)
        assert rerun.returncode == 0, f"run {run}: the re-run after kill -9 failed:\n{err[-2000:]}"
        assert snapshot(data_dir) == expected, f"run {run}: the collection differs from a clean ingest"
