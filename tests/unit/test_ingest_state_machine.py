"""Hypothesis drives ingest / update / delete / prune / remove over one collection.

After every step the store must match a plain model of what was ingested: one set of
chunks per ingested file and no other, no duplicate chunk ids, the BM25 sidecar and
Chroma holding the same chunk ids, and every file's chunk text retrievable by dense and
BM25 search. Runs on the real embedder and a real (embedded) Chroma.
"""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from app.components import build_ingest_pipeline
from app.settings import load_settings
from indexing.pipeline import file_hash
from indexing.retrieval import BM25Retriever, DenseRetriever
from indexing.store import StoreError

COLLECTION = "fuzz"
NAMES = ["alpha.txt", "beta.md", "gamma.txt", "delta.md"]
WORDS = [
    "river",
    "mountain",
    "lantern",
    "copper",
    "violin",
    "orchard",
    "glacier",
    "harbor",
    "meadow",
    "falcon",
    "quartz",
    "saffron",
    "thunder",
    "willow",
    "ember",
    "canyon",
    "pepper",
    "marble",
    "comet",
    "tundra",
    "lagoon",
    "cedar",
]
documents = st.lists(st.sampled_from(WORDS), min_size=3, max_size=120).map(
    lambda words: " ".join(words) + ".\n"
)


@pytest.fixture(scope="module", autouse=True)
def _isolated_settings(embedder):
    """The machine below builds its own settings; give it the shared embedder."""
    IngestMachine.embedder = embedder


class IngestMachine(RuleBasedStateMachine):
    """A folder of files, a collection, and the model of what the collection should hold."""

    embedder = None

    def __init__(self) -> None:
        super().__init__()
        self.root = Path(tempfile.mkdtemp(prefix="ragtune-fuzz-"))
        self.folder = self.root / "docs"
        self.folder.mkdir()
        config = load_settings(
            data_dir=self.root / "data", indexing={"chunk_size": 32, "chunk_overlap": 4}
        )
        self.pipeline = build_ingest_pipeline(config, embedder=self.embedder)
        self.store = self.pipeline.store
        self.on_disk: dict[str, str] = {}
        self.ingested: dict[str, str] = {}  # source path -> the text it was ingested with

    def teardown(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)

    def source(self, name: str) -> str:
        return str(self.folder / name)

    @rule(name=st.sampled_from(NAMES), text=documents)
    def write_file(self, name: str, text: str) -> None:
        (self.folder / name).write_text(text)
        self.on_disk[self.source(name)] = text

    @precondition(lambda self: self.on_disk)
    @rule(data=st.data())
    def delete_file_on_disk(self, data) -> None:
        source = data.draw(st.sampled_from(sorted(self.on_disk)))
        Path(source).unlink()
        del self.on_disk[source]

    @precondition(lambda self: set(self.on_disk) & set(self.ingested))
    @rule(data=st.data(), text=documents)
    def update_ingested_file(self, data, text: str) -> None:
        """Change a file that is in the collection and ingest again: its old chunks must go."""
        source = data.draw(st.sampled_from(sorted(set(self.on_disk) & set(self.ingested))))
        self.write_file(Path(source).name, text)
        self.ingest(prune=False)

    @rule(prune=st.booleans())
    def ingest(self, prune: bool) -> None:
        report = self.pipeline.ingest([self.folder], COLLECTION, prune=prune, show_progress=False)
        assert report.count("failed") == 0, report.to_dict()
        self.ingested.update(self.on_disk)
        if prune:
            self.ingested = {s: t for s, t in self.ingested.items() if s in self.on_disk}

    @rule(name=st.sampled_from(NAMES))
    def remove_file(self, name: str) -> None:
        source = self.source(name)
        if source in self.ingested:
            assert self.pipeline.remove_file(COLLECTION, source) > 0
            del self.ingested[source]
        elif COLLECTION in self.store.collection_names():
            with pytest.raises(StoreError, match="has no file"):
                self.pipeline.remove_file(COLLECTION, source)

    @invariant()
    def store_matches_the_model(self) -> None:
        if COLLECTION not in self.store.collection_names():
            assert not self.ingested
            return
        collection = self.store.collection(COLLECTION, embedding_model=self.embedder.name)
        got = collection.chunks()
        ids = list(got.ids)
        assert len(ids) == len(set(ids)) == collection.count(), "duplicate chunk ids"
        assert collection.sources() == set(self.ingested)
        for source, text in self.ingested.items():
            state = collection.file_state(source)
            path = self.root / "expected"
            path.write_text(text)
            assert state.versions and {h for h, _ in state.versions} == {file_hash(path)}, source
            assert state.expected_count == len(state.ids), f"{source}: chunk count does not match"
        lexical = self.store.lexical_index(collection)
        assert sorted(lexical.ids) == sorted(ids), "BM25 and dense indexes disagree on membership"
        by_source: dict[str, str] = {}
        for text, meta in zip(got.texts, got.metadatas):
            by_source.setdefault(meta["source"], text)
        for source, text in by_source.items():
            for retriever in (
                DenseRetriever(self.store, self.embedder),
                BM25Retriever(self.store, self.embedder),
            ):
                found = retriever.retrieve(text, COLLECTION, k=len(ids))
                assert text in [c.text for c in found], (
                    f"{type(retriever).__name__} misses a chunk of {source}"
                )


IngestMachine.TestCase.settings = settings(
    max_examples=20,
    stateful_step_count=10,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
TestIngestStateMachine = IngestMachine.TestCase
