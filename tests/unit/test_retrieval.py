"""Dense, BM25 and hybrid retrieval, filters, the BM25 sidecar's consistency, persistence."""

from __future__ import annotations

import pytest

from app.components import build_embedder, build_ingest_pipeline, build_retrievers, build_store
from indexing.chunking import ChunkingConfig
from indexing.lexical import LexicalIndex, MetadataFilter
from indexing.store import StoreError
from tests.helpers import make_pdf


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    (folder / "guides").mkdir(parents=True)
    (folder / "guides" / "tea.md").write_text(
        "# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n"
    )
    (folder / "guides" / "kites.md").write_text(
        "# Kites\n\nKites fly best in steady wind on open beaches.\n"
    )
    (folder / "errors.txt").write_text("Error E4711 means the flux capacitor is misaligned.\n")
    make_pdf(folder / "volcano.pdf", ["Volcanoes erupt molten rock.", "Lava cools into basalt."])
    return folder


@pytest.fixture
def setup(make_settings, embedder, corpus, store_mode):
    settings = make_settings(vector_store=store_mode)
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    pipeline.ingest([corpus / "guides"], "notes", tags=["guide"], show_progress=False)
    pipeline.ingest([corpus / "errors.txt", corpus / "volcano.pdf"], "notes", show_progress=False)
    retrievers = build_retrievers(settings, pipeline.store, embedder)
    return settings, pipeline, retrievers


def _chroma_ids(pipeline, name="notes"):
    collection = pipeline.store.collection(name, embedding_model=pipeline.embedder.name)
    return collection, set(collection.chunks().ids)


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_each_retriever_finds_the_answer(setup, kind):
    _, _, retrievers = setup
    top = retrievers[kind].retrieve("what does error E4711 mean", "notes", 2)
    assert top[0].file_name == "errors.txt" and top[0].score > 0


def test_bm25_finds_exact_codes_dense_finds_paraphrases(setup):
    _, _, retrievers = setup
    assert retrievers["bm25"].retrieve("E4711", "notes", 1)[0].file_name == "errors.txt"
    top = retrievers["dense"].retrieve("how warm should the water be for brewing?", "notes", 1)
    assert top[0].file_name == "tea.md"


@pytest.mark.parametrize("kind", ["dense", "bm25", "hybrid"])
def test_filters_by_source_type_and_tag(setup, kind):
    _, _, retrievers = setup
    retriever = retrievers[kind]
    by_type = retriever.retrieve(
        "lava rock wind tea", "notes", 5, MetadataFilter(file_types=["pdf"])
    )
    assert by_type and {c.file_name for c in by_type} == {"volcano.pdf"}
    by_tag = retriever.retrieve("lava rock wind tea", "notes", 5, MetadataFilter(tags=["guide"]))
    assert by_tag and {c.file_name for c in by_tag} <= {"tea.md", "kites.md"}
    by_glob = retriever.retrieve(
        "tea kites", "notes", 5, MetadataFilter(source_glob="guides/k*.md")
    )
    assert by_glob and {c.file_name for c in by_glob} == {"kites.md"}


def test_bad_queries_and_filters_are_clear(setup):
    _, _, retrievers = setup
    with pytest.raises(StoreError, match="no chunks of 'notes' match the filter"):
        retrievers["hybrid"].retrieve("tea", "notes", 3, MetadataFilter(tags=["nope"]))
    with pytest.raises(StoreError, match="20,000 characters long"):
        retrievers["dense"].retrieve("x" * 20_000, "notes", 3)
    with pytest.raises(StoreError, match="unknown collection 'ghost'"):
        retrievers["bm25"].retrieve("tea", "ghost", 3)


def test_bm25_sidecar_tracks_ingest_update_and_prune(setup, corpus):
    _, pipeline, retrievers = setup
    collection, ids = _chroma_ids(pipeline)
    assert set(pipeline.store.lexical_index(collection).ids) == ids
    (corpus / "guides" / "tea.md").write_text("# Tea\n\nOolong tea likes 90 degree water.\n")
    (corpus / "guides" / "kites.md").unlink()
    pipeline.ingest([corpus / "guides"], "notes", tags=["guide"], prune=True, show_progress=False)
    collection, ids = _chroma_ids(pipeline)
    assert set(pipeline.store.lexical_index(collection).ids) == ids
    assert retrievers["bm25"].retrieve("oolong", "notes", 1)[0].file_name == "tea.md"
    assert all(
        c.file_name != "kites.md" for c in retrievers["bm25"].retrieve("kites wind", "notes", 5)
    )


def test_a_dirty_sidecar_is_rebuilt_on_use(setup):
    _, pipeline, retrievers = setup
    collection, ids = _chroma_ids(pipeline)
    LexicalIndex(pipeline.store.index_root / "notes").mark_dirty()  # as after a crash
    assert retrievers["bm25"].retrieve("E4711", "notes", 1)[0].file_name == "errors.txt"
    assert set(pipeline.store.lexical_index(collection).ids) == ids


def test_results_survive_a_restart(setup, make_settings, embedder):
    settings, _, retrievers = setup
    before = {
        k: [c.chunk_id for c in r.retrieve("tea and lava", "notes", 4)]
        for k, r in retrievers.items()
    }
    reopened = build_retrievers(settings, build_store(settings), build_embedder(settings))
    after = {
        k: [c.chunk_id for c in r.retrieve("tea and lava", "notes", 4)] for k, r in reopened.items()
    }
    assert before == after


def test_changing_the_strategy_rechunks_the_collection(setup, corpus):
    _, pipeline, _ = setup
    collection, _ = _chroma_ids(pipeline)
    assert collection.chunking == "structure/256/32"
    report = pipeline.ingest(
        [corpus / "errors.txt"],
        "notes",
        chunking=ChunkingConfig("sentence", 64, 8),
        show_progress=False,
    )
    assert report.notices and "re-chunking collection 'notes'" in report.notices[0]
    assert report.count("updated") == 4  # every stored file, not only the one named
    collection, _ = _chroma_ids(pipeline)
    versions = {m["version"].split("|")[0] for m in collection.chunks().metadatas}
    assert versions == {"sentence/64/8"} and collection.chunking == "sentence/64/8"
    again = pipeline.ingest([corpus / "errors.txt"], "notes", show_progress=False)
    assert again.count("skipped") == 1 and not again.notices  # the recorded strategy is kept


def test_app_instances_sharing_a_chroma_server_keep_their_bm25_in_step(
    make_settings, embedder, corpus, chroma_server, tmp_path, store_mode
):
    if store_mode["mode"] != "http":
        pytest.skip("only http mode has several instances on one store")
    first = make_settings(vector_store=store_mode, data_dir=tmp_path / "first")
    second = make_settings(vector_store=store_mode, data_dir=tmp_path / "second")
    build_ingest_pipeline(first, embedder=embedder).ingest(
        [corpus / "guides"], "shared", show_progress=False
    )
    reader = build_retrievers(second, build_store(second), embedder)["bm25"]
    assert reader.retrieve("steady wind beaches", "shared", 1)[0].source.endswith("kites.md")
    build_ingest_pipeline(first, embedder=embedder).ingest(
        [corpus / "errors.txt"], "shared", show_progress=False
    )
    found = reader.retrieve(
        "E4711 flux capacitor", "shared", 1
    )  # the second instance's sidecar was stale
    assert found and found[0].source.endswith("errors.txt")
