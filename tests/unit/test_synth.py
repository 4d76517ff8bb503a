"""`data synth` as a library: sampling, structured output, drops by reason, teacher errors.

A real (embedded) Chroma store holds a few chunks with made-up embeddings; the pair writer
is the fake generator with scripted replies per chunk.
"""

from __future__ import annotations

import json
import socket
import threading
import time

import numpy as np
import pytest

from app.generation.base import GeneratorError, GeneratorUnavailable
from app.generation.fake import FakeGenerator
from app.settings import load_settings
from app.synth import (
    SynthError,
    dataset_store,
    import_dataset,
    synth_generator,
    synthesize_dataset,
)
from app.synth_writer import parse_pair
from indexing.config import VectorStoreSettings
from indexing.errors import Conflict
from indexing.store import StoreError, VectorStore
from tests.conftest import REPO
from tests.unit.test_qa_dataset import WordEmbedder
from training.data import DatasetError

CHUNKS = {
    "alpha": "Alpha: the Osprey team travels to Lisbon in May and stays near the harbour.",
    "bravo": "Bravo: green tea is steeped at eighty degrees for three minutes.",
    "charlie": "Charlie: kites fly best in steady wind on open beaches in autumn.",
    "delta": "Delta: the archive closes at six in the evening on Fridays.",
    "echo": "Echo: the Osprey team travels by train because flights are costly.",
}
REPLIES = {  # marker -> the writer's JSON text
    "alpha": {"question": "When does the Osprey team travel to Lisbon?", "answer": "in May"},
    "bravo": {"question": "Green tea is steeped at eighty degrees.", "answer": "eighty degrees"},
    "charlie": {"question": "Where do kites fly best?"},  # no answer: malformed
    "delta": None,  # the request fails (after the first)
    "echo": {"question": "When does the Osprey team travel to Lisbon?", "answer": "by train"},
}


class ScriptedWriter(FakeGenerator):
    """Replies per chunk marker (``REPLIES``); notes how many requests were in flight."""

    def __init__(self, replies=None, delay=0.0):
        super().__init__()
        self.replies = REPLIES if replies is None else replies
        self.delay = delay
        self.inflight = self.most_inflight = 0
        self.lock = threading.Lock()

    def stream(self, messages, *, adapter=None, params):
        self.calls.append(messages)
        prompt = messages[-1]["content"]
        marker = next(m for m in self.replies if f"{m.capitalize()}:" in prompt)
        with self.lock:
            self.inflight += 1
            self.most_inflight = max(self.most_inflight, self.inflight)
        try:
            time.sleep(self.delay)
            reply = self.replies[marker]
            if reply is None:
                if len(self.calls) == 1:
                    raise GeneratorUnavailable("engine down")
                raise GeneratorError("the vLLM server failed the request: boom")
            yield reply if isinstance(reply, str) else json.dumps(reply)
        finally:
            with self.lock:
                self.inflight -= 1


@pytest.fixture
def settings(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    loaded = load_settings(data_dir=tmp_path / "data")
    loaded.generator.mode = "fake"
    loaded.synth.min_chunk_words = 5
    loaded.synth.filters.min_similarity = 0.05
    return loaded


def make_store(settings, chunks=CHUNKS, name="notes"):
    store = VectorStore(VectorStoreSettings(), settings.chroma_dir, settings.indexes_dir)
    with store.writing(name, embedding_model="test", create=True) as coll:
        ids = [f"{marker}-0" for marker in chunks]
        metadatas = [{"source": f"docs/{marker}.md"} for marker in chunks]
        vectors = np.eye(len(chunks), 8, dtype=np.float32)
        coll.upsert(ids, list(chunks.values()), vectors, metadatas)
    return store


def synth(settings, writer, store, n=5, seed=0, name="notes-synth", **kw):
    return synthesize_dataset(
        settings,
        writer,
        store,
        WordEmbedder(),
        collection="notes",
        n=n,
        name=name,
        seed=seed,
        progress=False,
        generator_info={"model": "scripted", "endpoint": "fake"},
        **kw,
    )


def first_marker(settings, store, seed):
    """The marker of the chunk a seed samples first (it is asked alone, before the others)."""
    from app.synth import _sample_chunks

    return _sample_chunks(settings, store, "notes", 1, seed)[0][0].split("-")[0]


def test_counts_every_drop_by_reason_and_records_the_source(settings):
    store = make_store(settings)
    seed = next(s for s in range(20) if first_marker(settings, store, s) != "delta")
    writer = ScriptedWriter()
    dataset, counts = synth(settings, writer, store, seed=seed)
    assert counts["generated"] == 5 and counts["kept"] == 1 and counts["keep_rate"] == 0.2
    assert {k: v for k, v in counts["dropped"].items() if v} == {
        "generator_error": 1,
        "malformed": 1,
        "not_a_question": 1,
        "near_duplicate": 1,
    }
    assert counts["kept"] + sum(counts["dropped"].values()) == counts["generated"]
    rejects = [json.loads(line) for line in (dataset.folder / "dropped.jsonl").open()]
    assert sorted(r["reason"] for r in rejects) == sorted(
        k for k, v in counts["dropped"].items() for _ in range(v)
    )
    assert all(r["source"].startswith("docs/") for r in rejects)
    (pair,) = [p for split in dataset.pairs().values() for p in split]
    assert pair.question in (REPLIES["alpha"]["question"], REPLIES["echo"]["question"])
    marker = "alpha" if pair.answer == "in May" else "echo"
    assert (pair.source, pair.chunk_id, pair.chunk) == (
        f"docs/{marker}.md",
        f"{marker}-0",
        CHUNKS[marker],
    )
    manifest = dataset_store(settings).get("notes-synth").manifest
    assert (manifest.collection, manifest.origin, manifest.seed) == ("notes", "synth", seed)
    assert manifest.generator["model"] == "scripted" and manifest.generator["endpoint"] == "fake"
    assert manifest.filters["min_answer_support"] == settings.synth.filters.min_answer_support
    assert manifest.counts["dropped"] == counts["dropped"] and manifest.counts["train"] == 1
    # structured output: every request carried the JSON schema
    formats = [f["response_format"] for f in writer.fields]
    assert len(formats) == 5 and all(f["type"] == "json_schema" for f in formats)
    schema = formats[0]["json_schema"]["schema"]
    assert schema["required"] == ["question", "answer"]
    assert schema["properties"]["answer"]["maxLength"] == settings.synth.max_answer_chars
    # the request: system, a worked example turn, then the chunk
    roles = [m["role"] for m in writer.calls[0]]
    assert roles == ["system", "user", "assistant", "user"]
    assert any(text in writer.calls[0][-1]["content"] for text in CHUNKS.values())


def test_requests_run_concurrently_and_seeds_reproduce(settings):
    chunks = {f"w{i}": f"W{i}: " + " ".join(f"word{i}x{k}" for k in range(8)) for i in range(12)}
    replies = {
        m: {"question": f"What follows {m} here?", "answer": f"word{m[1:]}x3"} for m in chunks
    }
    store = make_store(settings, chunks)
    settings.synth.concurrency = 4
    settings.synth.filters.near_duplicate_ratio = 99
    writer = ScriptedWriter(replies, delay=0.05)
    first, counts = synth(settings, writer, store, n=12, name="a")
    assert writer.most_inflight > 1 and counts["kept"] == 12
    again, _ = synth(settings, ScriptedWriter(replies), store, n=12, name="b")
    assert first.pairs() == again.pairs()  # same seed: same sample, same splits
    other, _ = synth(settings, ScriptedWriter(replies), store, n=12, name="c", seed=5)
    assert other.split("test") != first.split("test")


def test_more_pairs_than_chunks_samples_every_chunk_again(settings):
    store = make_store(settings, {"alpha": CHUNKS["alpha"]})
    writer = ScriptedWriter({"alpha": REPLIES["alpha"]})
    _, counts = synth(settings, writer, store, n=3)
    assert counts["generated"] == 3 and counts["chunks_sampled"] == 1
    assert counts["kept"] == 1 and counts["dropped"]["near_duplicate"] == 2


def test_nothing_kept_is_an_error_and_writes_nothing(settings):
    store = make_store(settings, {"bravo": CHUNKS["bravo"]})
    with pytest.raises(SynthError, match="no pair of 2 was kept.*not_a_question 2"):
        synth(settings, ScriptedWriter({"bravo": REPLIES["bravo"]}), store, n=2)
    assert dataset_store(settings).list() == []


def test_a_writer_that_is_down_fails_before_the_work_starts(settings):
    store = make_store(settings, {"delta": CHUNKS["delta"], "alpha": CHUNKS["alpha"]})
    writer = ScriptedWriter({"delta": None, "alpha": REPLIES["alpha"]})
    seed = next(s for s in range(20) if first_marker(settings, store, s) == "delta")
    with pytest.raises(GeneratorUnavailable, match=r"scripted at fake.*engine down"):
        synth(settings, writer, store, n=6, seed=seed)
    assert len(writer.calls) == 1 and dataset_store(settings).list() == []


def test_teacher_endpoint_down_is_a_clear_error(settings, monkeypatch):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    settings.synth.teacher_url = f"http://127.0.0.1:{port}/v1"
    settings.synth.teacher_model = "big-teacher"
    monkeypatch.setenv(settings.synth.api_key_env, "sk-test")
    teacher, info = synth_generator(settings)
    assert teacher.client.api_key == "sk-test" and info["teacher"] is True
    store = make_store(settings)
    with pytest.raises(GeneratorUnavailable, match=f"big-teacher at http://127.0.0.1:{port}/v1"):
        synthesize_dataset(
            settings,
            teacher,
            store,
            None,
            collection="notes",
            n=3,
            name="t",
            progress=False,
            generator_info=info,
        )
    settings.synth.teacher_model = ""
    with pytest.raises(SynthError, match="teacher_model"):
        synth_generator(settings)


def test_default_writer_is_the_configured_generator(settings):
    writer, info = synth_generator(settings)
    assert isinstance(writer, FakeGenerator)
    assert info == {"model": settings.generator.model, "endpoint": "fake", "teacher": False}


def test_bad_collections_and_names(settings):
    store = make_store(settings)
    with pytest.raises(StoreError, match="unknown collection 'nope'"):
        synthesize_dataset(
            settings, ScriptedWriter(), store, None, collection="nope", n=1, name="x"
        )
    with store.writing("empty", embedding_model="test", create=True):
        pass
    with pytest.raises(SynthError, match="'empty' is empty"):
        synthesize_dataset(
            settings, ScriptedWriter(), store, None, collection="empty", n=1, name="x"
        )
    settings.synth.min_chunk_words = 50
    with pytest.raises(SynthError, match="synth.min_chunk_words"):
        synth(settings, ScriptedWriter(), store)
    settings.synth.min_chunk_words = 5
    store.delete_collection("notes")
    store = make_store(settings, {"alpha": CHUNKS["alpha"]})
    synth(settings, ScriptedWriter(), store, n=1, name="taken")
    with pytest.raises(Conflict, match="'taken' exists"):
        synth(settings, ScriptedWriter(), store, n=1, name="taken")
    synth(settings, ScriptedWriter(), store, n=1, name="taken", overwrite=True)


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ('{"question": "Why?", "answer": " Because "}', ("Why?", "Because")),
        ('```json\n{"question": "Why?", "answer": "So"}\n```', ("Why?", "So")),
        ('{"question": "Why?", "answer": ""}', None),
        ('{"question": "Why?", "answer": 5}', None),
        ('{"question": "Why?", "answer": "cut', None),
        ("[1, 2]", None),
        ("", None),
    ],
)
def test_parse_counts_garbage_as_malformed(text, parsed):
    assert parse_pair(text) == parsed


def test_import_keeps_good_lines_and_names_bad_ones(settings, tmp_path):
    path = tmp_path / "mine.jsonl"
    path.write_text('{"question": "Q?", "answer": "A"}\n{"question": "no answer?"}\n')
    dataset, problems = import_dataset(settings, path, name="mine", collection="notes")
    assert problems == [f"{path}, line 2: 'answer' is missing or empty"]
    manifest = dataset.manifest
    assert (manifest.origin, manifest.collection, manifest.source_file) == (
        "import",
        "notes",
        str(path),
    )
    assert manifest.counts["imported"] == 1 and manifest.counts["skipped_lines"] == 1
    path.write_text("oops\n")
    with pytest.raises(DatasetError, match="no valid question/answer pair.*line 1: not valid"):
        import_dataset(settings, path, name="other")


def test_length_caps_can_be_turned_off_for_endpoints_that_refuse_them(settings):
    from app.synth_writer import response_format

    settings.synth.max_question_chars = 0
    schema = response_format(settings)["json_schema"]["schema"]
    assert "maxLength" not in schema["properties"]["question"]
    assert schema["properties"]["answer"]["maxLength"] == settings.synth.max_answer_chars
