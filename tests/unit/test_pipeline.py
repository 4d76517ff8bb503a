"""The ingest pipeline on a real Chroma store with the real embedder."""

from __future__ import annotations

import shutil

import pytest

from app.components import build_ingest_pipeline, build_store
from indexing.retrieval import DenseRetriever
from indexing.store import StoreError
from tests.helpers import make_pdf, write_bad_inputs


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "llamas.md").write_text("# Llamas\n\nLlamas live in the Andes and carry loads.\n")
    (folder / "tea.txt").write_text("Green tea is steeped at 80 degrees for two minutes.\n")
    (folder / "page.html").write_text("<h1>Kites</h1><p>Kites fly best in steady wind.</p>")
    make_pdf(folder / "volcano.pdf", ["Volcanoes erupt molten rock.", "Lava cools into basalt."])
    return folder


@pytest.fixture
def pipeline(make_settings, embedder):
    settings = make_settings()
    return build_ingest_pipeline(settings, embedder=embedder)


def test_ingest_then_reingest_computes_zero_embeddings(pipeline, corpus):
    first = pipeline.ingest([corpus], "notes", show_progress=False)
    assert first.summary()["added"] == 4 and first.embedded >= 5
    again = pipeline.ingest([corpus], "notes", show_progress=False)
    assert again.summary() == {
        "added": 0,
        "updated": 0,
        "skipped": 4,
        "failed": 0,
        "pruned": 0,
        "embedded_chunks": 0,
    }


def test_changed_file_replaces_its_chunks_and_prune_removes_gone_files(pipeline, corpus):
    pipeline.ingest([corpus], "notes", show_progress=False)
    (corpus / "tea.txt").write_text("Black tea is steeped at 95 degrees for four minutes.\n")
    (corpus / "volcano.pdf").unlink()
    report = pipeline.ingest([corpus], "notes", prune=True, show_progress=False)
    assert report.count("updated") == 1 and report.count("pruned") == 1
    collection = pipeline.store.collection("notes", embedding_model=pipeline.embedder.name)
    texts = collection.chunks().texts
    assert not any("Green tea" in t for t in texts)
    assert any("Black tea" in t for t in texts)
    assert not any("Volcanoes" in t for t in texts)


def test_chunks_carry_source_page_heading_and_hash(pipeline, corpus):
    pipeline.ingest([corpus], "notes", show_progress=False)
    collection = pipeline.store.collection("notes", embedding_model=pipeline.embedder.name)
    metas = collection.chunks().metadatas
    pdf = [m for m in metas if m["file_name"] == "volcano.pdf"]
    assert sorted(m["page"] for m in pdf) == [1, 2]
    assert any(m.get("heading") == "Llamas" for m in metas)
    assert all(len(m["file_hash"]) == 64 and m["source"].startswith("/") for m in metas)


def test_bad_inputs_fail_alone_and_leave_the_collection_as_it_was(pipeline, corpus, tmp_path):
    pipeline.ingest([corpus], "notes", show_progress=False)
    collection = pipeline.store.collection("notes", embedding_model=pipeline.embedder.name)
    before = sorted(collection.chunks().ids)
    bad = write_bad_inputs(corpus / "bad")
    (corpus / "tea.txt").write_bytes(b"\xff\xfe broken now")  # a good file turns bad
    report = pipeline.ingest([corpus, tmp_path / "missing-folder"], "notes", show_progress=False)
    failed = {r.path.rsplit("/", 1)[-1]: r.reason for r in report.files if r.status == "failed"}
    assert set(failed) == {p.name for p in bad.values()} | {"tea.txt", "missing-folder"}
    assert "not UTF-8" in failed["tea.txt"] and "no such file" in failed["missing-folder"]
    assert report.count("skipped") == 3
    assert sorted(collection.chunks().ids) == before  # the old tea chunks are kept


def test_retrieval_finds_the_right_file_and_refuses_unknown_or_empty(pipeline, corpus):
    pipeline.ingest([corpus], "notes", show_progress=False)
    retriever = DenseRetriever(pipeline.store, pipeline.embedder)
    top = retriever.retrieve("At what temperature should green tea be brewed?", "notes", 2)
    assert top[0].file_name == "tea.txt" and 0 < top[0].score <= 1
    with pytest.raises(StoreError, match="unknown collection 'nope'"):
        retriever.retrieve("anything", "nope", 2)
    pipeline.store.collection("empty-one", embedding_model=pipeline.embedder.name, create=True)
    with pytest.raises(StoreError, match="is empty"):
        retriever.retrieve("anything", "empty-one", 2)


def test_collection_refuses_another_embedder(make_settings, pipeline, corpus):
    pipeline.ingest([corpus], "notes", show_progress=False)
    with pytest.raises(StoreError, match="embedded with 'all-MiniLM-L6-v2'"):
        pipeline.store.collection("notes", embedding_model="other-model")


def test_store_persists_across_clients(make_settings, embedder, corpus):
    settings = make_settings()
    build_ingest_pipeline(settings, embedder=embedder).ingest(
        [corpus], "notes", show_progress=False
    )
    reopened = DenseRetriever(build_store(settings), embedder)
    assert reopened.retrieve("lava basalt", "notes", 1)[0].page == 2


def test_copy_of_a_file_elsewhere_is_a_separate_source(pipeline, corpus, tmp_path):
    pipeline.ingest([corpus], "notes", show_progress=False)
    other = tmp_path / "other"
    shutil.copytree(corpus, other)
    report = pipeline.ingest([other], "notes", show_progress=False)
    assert report.count("added") == 4


def test_a_second_ingest_into_a_busy_collection_is_refused_clearly(
    make_settings, embedder, tmp_path
):
    from app.components import build_ingest_pipeline
    from indexing.locks import CollectionBusy, collection_lock

    note = tmp_path / "note.md"
    note.write_text("# Note\n\nKites fly in steady wind.\n")
    pipeline = build_ingest_pipeline(make_settings(), embedder=embedder)
    with (
        collection_lock(pipeline.store.index_root / ".locks", "notes"),  # as another process would
        pytest.raises(
            CollectionBusy, match=r"collection 'notes' is busy: an ingest is already running \(pid"
        ),
    ):
        pipeline.ingest([note], "notes", show_progress=False)
    assert pipeline.ingest([note], "notes", show_progress=False).count("added") == 1  # free again
