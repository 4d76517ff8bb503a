"""The store's collection handle, its writing protocol and the disk-size query (real Chroma)."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.config import VectorStoreSettings
from indexing.locks import CollectionBusy
from indexing.store import EmbedderMismatch, StoreError, VectorStore, chroma_disk_bytes

MODEL = "test-embedder"


@pytest.fixture
def store(tmp_path) -> VectorStore:
    return VectorStore(VectorStoreSettings(), tmp_path / "chroma", tmp_path / "indexes")


def _write(collection, source: str, texts: list[str], seed: int = 0) -> list[str]:
    vectors = np.random.default_rng(seed).normal(size=(len(texts), 8)).astype(np.float32)
    ids = [f"{source}-{i}" for i in range(len(texts))]
    metadatas = [
        {"source": source, "file_hash": "h", "version": "v", "chunk_count": len(texts)}
        for _ in texts
    ]
    collection.upsert(ids, texts, vectors, metadatas)
    return ids


def test_the_handle_reads_files_chunks_and_neighbours(store):
    with store.writing("notes", embedding_model=MODEL, create=True, chunking="c/1/0") as writer:
        ids = _write(writer, "/a.md", ["alpha one", "alpha two"])
        _write(writer, "/b.md", ["beta"], seed=1)
    notes = store.collection("notes", embedding_model=MODEL)
    assert (notes.name, notes.embedding_model, notes.chunking) == ("notes", MODEL, "c/1/0")
    assert notes.count() == 3 and notes.sources() == {"/a.md", "/b.md"}
    assert notes.file_counts() == {"/a.md": 2, "/b.md": 1}
    assert notes.chunk_texts("/a.md") == ["alpha one", "alpha two"]
    state = notes.file_state("/a.md")
    assert sorted(state.ids) == ids and state.is_complete("h", "v")
    assert sorted(notes.chunks().ids) == sorted([*ids, "/b.md-0"])
    assert notes.chunks(ids=[ids[1]]).texts == ["alpha two"]
    vector = np.random.default_rng(0).normal(size=(2, 8)).astype(np.float32)[1]
    best = notes.query(vector, 1)[0]
    assert best.chunk_id == ids[1] and best.distance == pytest.approx(0.0, abs=1e-5)
    assert [h.chunk_id for h in notes.query(vector, 3, ids=["/b.md-0"])] == ["/b.md-0"]


def test_opening_checks_name_and_embedder(store):
    with pytest.raises(StoreError, match="unknown collection 'ghost'"):
        store.collection("ghost", embedding_model=MODEL)
    with pytest.raises(StoreError, match="invalid collection name"):
        store.collection("x", embedding_model=MODEL, create=True)
    store.collection("notes", embedding_model=MODEL, create=True)
    with pytest.raises(EmbedderMismatch, match="embedded with 'test-embedder'"):
        store.collection("notes", embedding_model="other")
    assert store.collection("notes", embedding_model=None).embedding_model == MODEL


def test_writing_keeps_the_sidecar_in_step_and_bumps_the_revision(store, tmp_path):
    sidecar = tmp_path / "indexes" / "notes"
    with store.writing("notes", embedding_model=MODEL, create=True) as writer:
        assert not (sidecar / "DIRTY").exists()  # nothing written yet
        _write(writer, "/a.md", ["alpha one", "alpha two"])
        assert (sidecar / "DIRTY").exists() and writer.changed
    notes = store.collection("notes", embedding_model=MODEL)
    first = notes.revision
    assert first and not (sidecar / "DIRTY").exists()
    assert sorted(store.lexical_index(notes).ids) == sorted(notes.chunks().ids)
    stamp = (sidecar / "ids.json").stat().st_mtime_ns
    with store.writing("notes", embedding_model=MODEL) as writer:
        assert writer.delete_file("/nothing.md") == 0 and not writer.changed
    notes = store.collection("notes", embedding_model=MODEL)
    assert notes.revision == first and (sidecar / "ids.json").stat().st_mtime_ns == stamp
    with store.writing("notes", embedding_model=MODEL) as writer:
        assert writer.delete_file("/a.md") == 2
    notes = store.collection("notes", embedding_model=MODEL)
    assert notes.revision != first and notes.count() == 0
    assert store.lexical_index(notes).ids == []


def test_a_failed_write_leaves_the_sidecar_stale_until_used(store, tmp_path):
    with store.writing("notes", embedding_model=MODEL, create=True) as writer:
        _write(writer, "/a.md", ["alpha"])
    with pytest.raises(OSError), store.writing("notes", embedding_model=MODEL) as writer:
        _write(writer, "/b.md", ["beta"], seed=1)
        raise OSError("disk gone")
    assert (tmp_path / "indexes" / "notes" / "DIRTY").exists()
    notes = store.collection("notes", embedding_model=MODEL)
    assert sorted(store.lexical_index(notes).ids) == ["/a.md-0", "/b.md-0"]


def test_a_second_writer_is_refused(store):
    with (
        store.writing("notes", embedding_model=MODEL, create=True),
        pytest.raises(CollectionBusy, match="collection 'notes' is busy"),
        store.writing("notes", embedding_model=MODEL),
    ):
        pass
    with store.writing("notes", embedding_model=MODEL):  # free again
        pass


def test_deleting_a_collection_takes_its_lock(store, tmp_path):
    with store.writing("notes", embedding_model=MODEL, create=True) as writer:
        _write(writer, "/a.md", ["alpha"])
        with pytest.raises(CollectionBusy, match="collection 'notes' is busy"):
            store.delete_collection("notes")
    assert store.collection_names() == ["notes"]  # a refused delete removes nothing
    assert (tmp_path / "indexes" / "notes").exists()
    store.delete_collection("notes")
    assert store.collection_names() == [] and not (tmp_path / "indexes" / "notes").exists()
    with pytest.raises(StoreError, match="unknown collection 'notes'"):
        store.delete_collection("notes")


def test_disk_bytes_reads_chromas_tables_and_grows_with_the_collection(store, tmp_path):
    with store.writing("notes", embedding_model=MODEL, create=True) as writer:
        _write(writer, "/a.md", ["alpha " * 50])
    chroma_id = str(store._client.get_collection("notes").id)
    small = chroma_disk_bytes(tmp_path / "chroma", chroma_id)
    assert small > 0  # fails if a Chroma upgrade renames the tables this query reads
    with store.writing("notes", embedding_model=MODEL) as writer:
        _write(writer, "/b.md", ["beta " * 2000] * 5, seed=1)
    assert chroma_disk_bytes(tmp_path / "chroma", chroma_id) >= small + 5 * 10_000
    assert chroma_disk_bytes(tmp_path / "elsewhere", chroma_id) == 0  # http mode: no database
    info = store.info("notes")
    assert (info.chunks, info.files, info.embedding_model) == (6, 2, MODEL)
    assert info.size_bytes > chroma_disk_bytes(tmp_path / "chroma", chroma_id)  # + the sidecar
