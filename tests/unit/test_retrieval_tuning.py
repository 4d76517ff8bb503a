"""Retrieval tuning on tiny inputs: the grid, the pick by MRR@10, intervals, applying the
pick (RAG then uses it), scratch collections removed (also after an error), bad input."""

from __future__ import annotations

import json
import re
import tempfile
import zlib

import numpy as np
import pytest
from typer.testing import CliRunner

from app.components import build_chat_service, build_ingest_pipeline
from evals.rechunk import plan_corpus
from evals.retrieval_eval import LabeledQuestion
from evals.retrieval_grid import BUDGETS, Budget
from evals.retrieval_tuning import (
    RetrievalChoice,
    TuningError,
    apply_choice,
    read_labelled,
    split_dev_test,
    tune_retrieval,
)
from indexing.chunking import ChunkingConfig
from indexing.retrieval import HybridRetriever
from training.qa_dataset import QAPair

TOPICS = {
    "tea.md": ("tea", "kettle", "steeping", "oolong", "leaves", "teapot"),
    "kites.md": ("kite", "wind", "string", "beach", "tail", "spool"),
    "volcano.md": ("volcano", "lava", "magma", "basalt", "crater", "eruption"),
    "bees.md": ("bee", "hive", "honey", "pollen", "queen", "nectar"),
    "trains.md": ("train", "rail", "locomotive", "station", "timetable", "carriage"),
    "violin.md": ("violin", "bow", "rosin", "bridge", "fiddle", "strings"),
}


class HashEmbedder:
    """A fake embedder: hashed bag of words (256 dims), words as tokens; no model."""

    name = model_id = "fake-hash-embedder"

    def __init__(self) -> None:
        self.embedded_count = 0

    def tokenize(self, text: str) -> list[int]:
        return [zlib.crc32(w.encode()) for w in re.findall(r"\w+|[^\w\s]", text)]

    def embed(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        out = np.zeros((len(texts), 256), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"[a-z0-9]+", text.lower()):
                out[row, zlib.crc32(word.encode()) % 256] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        self.embedded_count += len(texts)
        return out / np.where(norms == 0, 1.0, norms)

    def embed_query(self, query: str) -> np.ndarray:
        return self.embed([query])[0]


def _text(words: tuple[str, ...]) -> str:
    sentences = [
        f"The {a} and the {b} are discussed in section {i} with care about {c}."
        for i, (a, b, c) in enumerate(zip(words * 3, words[1:] * 3 + words[:1], words[2:] * 4))
    ]
    return f"# {words[0].title()}\n\n" + " ".join(sentences) + "\n"


@pytest.fixture
def world(tmp_path, make_settings, monkeypatch):
    """Settings (fake generator, 96-token chunks), a small quick budget, a collection
    'notes' of six topic files, and one dev and one test question per file."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path / "tmp"))
    (tmp_path / "tmp").mkdir()
    monkeypatch.setitem(BUDGETS, "quick", Budget((48,), (0.5,), (2, 3, 4, 6), 1000))
    folder = tmp_path / "corpus"
    folder.mkdir()
    for name, words in TOPICS.items():
        (folder / name).write_text(_text(words))
    settings = make_settings(generator={"mode": "fake"}, indexing={"chunk_size": 96})
    embedder = HashEmbedder()
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    pipeline.ingest([folder], "notes", show_progress=False)
    dev = [
        QAPair(f"what about the {w[1]} and {w[3]}?", "", f"corpus/{n}") for n, w in TOPICS.items()
    ]
    test = [QAPair(f"tell me of {w[4]} {w[5]}", "", f"corpus/{n}") for n, w in TOPICS.items()]
    return settings, pipeline.store, embedder, dev, test


def _tune(world, **kwargs):
    settings, store, embedder, dev, test = world
    args = {"dev": dev, "test": test, "progress": False} | kwargs
    return tune_retrieval(store, embedder, settings.indexing, "notes", **args)


def _leftovers(tmp_path) -> list:
    return list((tmp_path / "tmp").glob("ragtune-tune-*"))


def test_grid_rows_intervals_and_test_split(world, tmp_path):
    result = _tune(world)
    sizes = {row.choice.chunk_tokens for row in result.rows}
    labels = [row.choice.label() for row in result.rows if row.choice.chunk_tokens == 96]
    assert sizes == {48, 96}
    assert labels == ["dense", "bm25", "hybrid convex 0.50", "hybrid convex 0.70", "hybrid rrf"]
    assert result.default == RetrievalChoice(96, "hybrid", "convex", 0.7, 4)
    assert result.default in [row.choice for row in result.rows]
    for row in [*result.rows, result.test_pick, result.test_default]:
        for metric in ("hit@1", "hit@3", "hit@5", "mrr@10", "in_k"):
            low, high = row.intervals[metric]
            assert low <= row.means[metric] <= high
        assert row.choice.k in (2, 3, 4, 6)
    assert result.rows[0].means["mrr@10"] > 0.5  # the fake embedder finds the topics
    assert 0 <= result.p_value <= 1 and result.dev_questions == result.test_questions == 6
    assert json.dumps(result.to_dict())  # JSON-ready
    assert not _leftovers(tmp_path)


def test_pick_is_the_best_mrr_on_dev(world, monkeypatch):
    import evals.retrieval_tuning as tuning

    real_score = tuning.score

    def favour_bm25_at_48(retriever, collection, questions, on_question):
        scores, ranks = real_score(retriever, collection, questions, on_question)
        if collection == "tune-48" and type(retriever).__name__ == "BM25Retriever":
            scores["mrr@10"] = [1.0] * len(questions)
        else:
            scores["mrr@10"] = [0.5] * len(questions)
        return scores, ranks

    monkeypatch.setattr(tuning, "score", favour_bm25_at_48)
    result = _tune(world)
    assert (result.pick.chunk_tokens, result.pick.retriever) == (48, "bm25")
    assert result.test_pick.choice == result.pick and result.test_default.choice == result.default


def test_ties_keep_the_default(world, monkeypatch):
    import evals.retrieval_tuning as tuning

    def flat(retriever, collection, questions, on_question):
        ones = [1.0] * len(questions)
        return {m: ones for m in ("hit@1", "hit@3", "hit@5", "mrr@10")}, [0] * len(questions)

    monkeypatch.setattr(tuning, "score", flat)
    result = _tune(world)
    assert result.pick == result.default and result.p_value == 1.0


def test_apply_changes_what_rag_uses(world):
    settings, store, embedder, _dev, _ = world
    chat = build_chat_service(settings, store=store, embedder=embedder)
    assert len(chat.retrieve("kite wind", "notes")) == 4  # the settings' top_k
    report = apply_choice(
        store, embedder, settings.indexing, "notes", RetrievalChoice(48, "bm25", "", None, 2)
    )
    assert report is not None and report.count("failed") == 0
    notes = store.collection("notes", embedding_model=embedder.name)
    assert notes.chunking == "structure/48/32" and notes.retrieval.k == 2
    assert store.info("notes").retrieval == "bm25, k=2 (tuned)"
    calls = []
    bm25 = chat.retrievers["bm25"]
    chat.retrievers["bm25"] = type(
        "Spy", (), {"retrieve": lambda self, *a: calls.append(a) or bm25.retrieve(*a)}
    )()
    assert len(chat.retrieve("kite wind", "notes")) == 2 and calls[-1][2] == 2
    turn = chat.prepare("kite wind", mode="rag", collection="notes")  # the API's call
    assert len(turn.sources) == 2 and len(calls) == 2
    assert len(chat.retrieve("kite wind", "notes", 3, retriever="dense")) == 3  # a request's own
    assert len(calls) == 2

    from app.variants import Variant, VariantRunner

    answer = VariantRunner(chat).answer(Variant("r", mode="rag", collection="notes"), "kite wind")
    assert len(answer.sources) == 2 and len(calls) == 3

    apply_choice(
        store, embedder, settings.indexing, "notes", RetrievalChoice(48, "hybrid", "rrf", None, 3)
    )
    tuned = store.tuned_retrieval("notes")
    hybrid = chat._retriever("hybrid", tuned)
    assert isinstance(hybrid, HybridRetriever) and hybrid.fusion == "rrf"
    assert len(chat.retrieve("kite wind", "notes")) == 3
    apply_choice(store, embedder, settings.indexing, "notes", None)  # back to the settings
    assert store.tuned_retrieval("notes") is None and len(chat.retrieve("kite", "notes")) == 4


def test_scratch_collections_removed_after_an_error(world, tmp_path, monkeypatch):
    import evals.retrieval_tuning as tuning

    _settings, store, *_ = world

    def boom(*args):
        assert len(_leftovers(tmp_path)) == 1  # the scratch store exists while tuning runs
        raise RuntimeError("boom")

    monkeypatch.setattr(tuning, "score", boom)
    with pytest.raises(RuntimeError, match="boom"):
        _tune(world)
    assert not _leftovers(tmp_path) and store.collection_names() == ["notes"]


def test_bad_input_is_named(world):
    settings, store, embedder, dev, test = world
    with pytest.raises(TuningError, match="dev split has no questions with a source label"):
        _tune(world, dev=[])
    with pytest.raises(TuningError, match="dev split"):
        _tune(world, dev=[QAPair("a question", "an answer")])
    with pytest.raises(TuningError, match=r"1 source label.*'notes'.*corpus/ghost\.md"):
        _tune(world, test=[*test, QAPair("q", "a", "corpus/ghost.md")])
    with pytest.raises(TuningError, match="unknown budget 'huge'"):
        _tune(world, budget="huge")
    from indexing.store import StoreError

    with pytest.raises(StoreError, match="unknown collection 'ghost'"):
        tune_retrieval(store, embedder, settings.indexing, "ghost", dev, test, progress=False)


def test_large_collections_are_sampled_with_every_labelled_file(world, monkeypatch):
    _settings, store, embedder, dev, test = world
    notes = store.collection("notes", embedding_model=embedder.name)
    counts = notes.file_counts()
    labelled = {s for s in counts if s.endswith("tea.md")}
    corpus = plan_corpus(
        notes, labelled, ChunkingConfig(), max_chunks=counts[next(iter(labelled))], seed=0
    )
    assert corpus.sampled and corpus.files == sorted(labelled) and "sample" in corpus.describe()
    monkeypatch.setitem(BUDGETS, "quick", Budget((48,), (0.5,), (2, 4), 3))
    result = _tune(world, dev=dev[:1], test=test[:1])
    assert "sample" in result.documents and result.rows[0].means["hit@5"] == 1.0


def test_labelled_files_and_split(tmp_path):
    relevant = tmp_path / "set.jsonl"
    relevant.write_text(
        '{"question": "q1", "relevant": ["docs/a.md", "docs/b.md"]}\n'
        '{"question": "q2", "relevant": ["docs/c.md"]}\n'
    )
    items, problems = read_labelled(relevant)
    assert items[0] == LabeledQuestion("q1", ["docs/a.md", "docs/b.md"]) and not problems
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("question,answer,source\nq1,a1,docs/a.md\n,a2,docs/b.md\nq3,a3,docs/c.md\n")
    items, problems = read_labelled(pairs)
    assert [p.source for p in items] == ["docs/a.md", "docs/c.md"] and "line 3" in problems[0]
    dev, test = split_dev_test(list(range(7)), seed=1)
    assert (dev, test) == split_dev_test(list(range(7)), seed=1)
    assert len(dev) == 4 and sorted(dev + test) == list(range(7))


def test_cli_tunes_prints_the_table_and_applies(world, tmp_path, monkeypatch):
    import app.components
    from app.cli.main import cli

    settings, _store, embedder, dev, _test = world
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(settings.data_dir))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    monkeypatch.setenv("RAGTUNE_INDEXING__CHUNK_SIZE", "96")
    monkeypatch.setattr(app.components, "build_embedder", lambda settings: embedder)
    data = tmp_path / "labels.jsonl"
    data.write_text(
        "".join(json.dumps({"question": p.question, "relevant": [p.source]}) + "\n" for p in dev)
    )
    runner = CliRunner()
    shown = runner.invoke(cli, ["retrieval", "tune", "-c", "notes", "--data", str(data)])
    assert shown.exit_code == 0, shown.output
    assert re.search(r"^ \* ", shown.output, re.MULTILINE) and "default" in shown.output
    assert "test split" in shown.output and "not applied; to apply the pick:" in shown.output
    command = shown.output.rsplit("ragtune ", 1)[1].split()
    applied = runner.invoke(cli, command)
    assert applied.exit_code == 0, applied.output
    listed = runner.invoke(cli, ["retrieval", "show", "-c", "notes", "--json"])
    assert json.loads(listed.output)["retrieval"] is not None
    as_json = runner.invoke(
        cli, ["retrieval", "tune", "-c", "notes", "--data", str(data), "--apply", "--json"]
    )
    assert as_json.exit_code == 0, as_json.output
    assert json.loads(as_json.output)["applied"] is True
    missing = runner.invoke(cli, ["retrieval", "tune", "-c", "notes", "--data", "no-such-set"])
    assert missing.exit_code == 2 and "no-such-set" in missing.output
    assert not _leftovers(tmp_path)
