"""QA datasets: the pair filters, seeded splits with near-duplicates together, file
import, the store."""

from __future__ import annotations

import json
import random
import string
import zlib

import numpy as np
import pytest

from indexing.errors import Conflict, NotFound
from training.data import DatasetError
from training.qa_dataset import (
    SPLITS,
    DatasetManifest,
    DatasetStore,
    QAPair,
    read_pairs,
    split_pairs,
)
from training.qa_filters import (
    Candidate,
    QAFilter,
    QAFilterSettings,
    copies_chunk,
    is_question,
    near_duplicate_groups,
)

CHUNK = "The Osprey team travels to Lisbon in May. They stay for two weeks near the harbour."


class WordEmbedder:
    """Hashed bag of words, unit length: texts sharing words are similar."""

    def embed(self, texts):
        rows = np.zeros((len(texts), 4096), dtype=np.float32)
        for row, text in zip(rows, texts):
            for word in text.lower().replace("?", " ").replace(".", " ").split():
                row[zlib.crc32(word.encode()) % 4096] += 1
        return rows / np.maximum(np.linalg.norm(rows, axis=1, keepdims=True), 1e-9)


def reason(question, answer, chunk=CHUNK, **settings):
    filters = QAFilter(QAFilterSettings(min_similarity=0, **settings))
    return filters.reason(Candidate(question, answer, chunk))


def test_a_good_pair_passes():
    assert reason("When does the Osprey team travel to Lisbon?", "In May") is None
    assert reason("How long do they stay", "two weeks") is None  # wh-word, no '?'


def test_the_issue_example_is_dropped():
    """SmolLM2 returned the sentence as question and answer: not a question, and a copy."""
    sentence = "The Osprey team travels to Lisbon in May."
    assert reason(sentence, sentence) == "not_a_question"
    assert reason(sentence[:-1] + "?", "May") == "copies_chunk"


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Where is it?", True),
        ("Is the harbour near", True),
        ("Tell me about Lisbon now", False),
        ("Lisbon?", False),  # too short
        ("The team travels in May", False),
    ],
)
def test_is_question(question, expected):
    assert is_question(question, min_words=2) is expected


def test_copies_chunk_matches_a_sentence_not_a_rephrasing():
    assert copies_chunk("they stay for two weeks near the harbour?", CHUNK, 90)
    assert not copies_chunk("How long does the Osprey team stay in Lisbon?", CHUNK, 90)


def test_answer_in_question_and_too_long():
    assert reason("Does the team stay for two weeks?", "two weeks") == "answer_in_question"
    long_answer = " ".join(["Lisbon"] * 12)
    assert reason("Where does the team go?", long_answer, max_answer_words=10) == (
        "answer_too_long"
    )


def test_unsupported_answers_are_dropped_lexically():
    assert reason("Where does the team travel?", "Madrid in June") == "unsupported"
    assert reason("Where does the team travel?", "Lisbon, in Portugal", min_answer_support=0.5) is (
        None
    )
    # an answer without content words counts as supported only if it is in the chunk
    assert reason("How many teams are there?", "2") == "unsupported"


def test_similarity_and_near_duplicates_counted_in_apply():
    settings = QAFilterSettings(min_similarity=0.3, near_duplicate_ratio=90)
    pairs = [
        Candidate("When does the Osprey team travel to Lisbon?", "May", CHUNK),
        Candidate("when does the osprey team travel to Lisbon", "in May", CHUNK),  # duplicate
        Candidate("What colour is the xylophone zebra quilt?", "Lisbon", CHUNK),  # far from chunk
        Candidate("Lisbon in May", "May", CHUNK),  # not a question
    ]
    kept, dropped = QAFilter(settings, WordEmbedder()).apply(pairs)
    assert kept == [0]
    assert dropped == {"near_duplicate": 1, "unsupported": 1, "not_a_question": 1}
    # the embedding check is off at 0: the far question is kept
    kept, _ = QAFilter(QAFilterSettings(min_similarity=0), WordEmbedder()).apply(pairs)
    assert kept == [0, 2]


def test_near_duplicate_groups_chain_and_ignore_case_and_punctuation():
    questions = [
        "What is the port?",
        "what is the port",
        "Where do they stay?",
        "Where do they stay now?",  # near "Where do they stay?" only
        "How long is the trip?",
    ]
    labels = near_duplicate_groups(questions, 85)
    assert labels[0] == labels[1] and labels[2] == labels[3]
    assert len({labels[0], labels[2], labels[4]}) == 3
    assert near_duplicate_groups([], 90) == []


def pairs_of(count):
    """Pairs whose questions are far apart (one distinct made-up word each)."""
    rng = random.Random(0)
    words = ["".join(rng.choices(string.ascii_lowercase, k=12)) for _ in range(count)]
    return [QAPair(f"What is {word}?", f"answer {i}") for i, word in enumerate(words)]


def test_splits_are_seeded_sized_and_keep_near_duplicates_together():
    pairs = pairs_of(40)
    twins = [
        QAPair("Where do the kites fly best?", "beaches"),
        QAPair("where do kites fly best", "x"),
    ]
    splits = split_pairs(pairs + twins, seed=3, fractions=(0.8, 0.1, 0.1), ratio=90)
    assert [len(splits[s]) for s in SPLITS] == [34, 4, 4]
    holding = [s for s in SPLITS if any("kites" in p.question for p in splits[s])]
    assert len(holding) == 1 and sum("kites" in p.question for p in splits[holding[0]]) == 2
    again = split_pairs(pairs + twins, seed=3, fractions=(0.8, 0.1, 0.1), ratio=90)
    assert again == splits
    other = split_pairs(pairs + twins, seed=4, fractions=(0.8, 0.1, 0.1), ratio=90)
    assert other["test"] != splits["test"]


def test_small_datasets_still_get_dev_and_test():
    splits = split_pairs(pairs_of(3), seed=0, fractions=(0.8, 0.1, 0.1), ratio=90)
    assert [len(splits[s]) for s in SPLITS] == [1, 1, 1]
    with pytest.raises(DatasetError, match="fractions"):
        split_pairs(pairs_of(3), seed=0, fractions=(0, 0, 0), ratio=90)


def test_read_pairs_jsonl_names_each_bad_line(tmp_path):
    path = tmp_path / "qa.jsonl"
    path.write_text(
        '{"question": "Q one?", "answer": "A", "source": "docs/a.md"}\n'
        "not json\n"
        '{"question": "Q two?"}\n'
        "\n"
        '["a list"]\n'
        '{"question": "Q three?", "reference": "C", "chunk_id": "c1"}\n'
        '{"question": 5, "answer": "x"}\n'
    )
    pairs, problems = read_pairs(path)
    assert [p.question for p in pairs] == ["Q one?", "Q three?"]
    assert pairs[0].source == "docs/a.md" and pairs[1].answer == "C" and pairs[1].chunk_id == "c1"
    assert [p.split(": ", 1)[0] for p in problems] == [f"{path}, line {n}" for n in (2, 3, 5, 7)]
    assert "not valid JSON" in problems[0] and "'answer' is missing" in problems[1]


def test_read_pairs_csv(tmp_path):
    path = tmp_path / "qa.csv"
    path.write_text(
        'Question,Answer,source\n"Why, then?",Because,docs/a.md\n,empty,\nok?,yes,,extra\n'
        '"multi\nline?",two,\n'
    )
    pairs, problems = read_pairs(path)
    assert [(p.question, p.answer, p.source) for p in pairs] == [
        ("Why, then?", "Because", "docs/a.md"),
        ("multi\nline?", "two", ""),
    ]
    assert problems == [
        f"{path}, line 3: 'question' is missing or empty",
        f"{path}, line 4: more fields than the header has columns",
    ]
    (tmp_path / "bad.csv").write_text("q,a\nx,y\n")
    with pytest.raises(DatasetError, match="line 1: the header needs"):
        read_pairs(tmp_path / "bad.csv")
    with pytest.raises(DatasetError, match="no such file"):
        read_pairs(tmp_path / "missing.jsonl")
    (tmp_path / "qa.txt").write_text("x")
    with pytest.raises(DatasetError, match=".jsonl or .csv"):
        read_pairs(tmp_path / "qa.txt")


def test_store_save_get_list_delete(tmp_path):
    store = DatasetStore(tmp_path / "datasets")
    assert store.list() == []
    manifest = DatasetManifest(name="mine", collection="docs", origin="import", seed=1)
    pairs = pairs_of(10)
    pairs[0] = QAPair("Where?  Here", "here", source="a.md", chunk_id="c", chunk="text")
    dataset = store.save(manifest, pairs)
    assert store.exists("mine") and [m.name for m in store.list()] == ["mine"]
    loaded = store.get("mine")
    assert loaded.manifest.counts == {"train": 8, "dev": 1, "test": 1}
    assert loaded.manifest.filters["split"]["fractions"] == [0.8, 0.1, 0.1]
    assert loaded.manifest.created and loaded.folder == dataset.folder
    everything = [p for split in loaded.pairs().values() for p in split]
    assert sorted(p.question for p in everything) == sorted(p.question for p in pairs)
    assert pairs[0] in everything  # every field survives the round trip
    assert json.loads((dataset.folder / "manifest.json").read_text())["seed"] == 1
    with pytest.raises(Conflict, match="exists"):
        store.save(DatasetManifest(name="mine"), pairs)
    store.save(DatasetManifest(name="mine", seed=2), pairs_of(4), overwrite=True)
    assert store.get("mine").manifest.counts["train"] == 2
    assert not [p for p in store.root.iterdir() if p.name.startswith(".")]  # no staging left
    store.delete("mine")
    assert not store.exists("mine")
    with pytest.raises(NotFound, match="unknown dataset 'mine'"):
        store.get("mine")
    with pytest.raises(DatasetError, match="invalid dataset name"):
        store.save(DatasetManifest(name="../escape"), pairs)
    with pytest.raises(DatasetError, match="no pairs"):
        store.save(DatasetManifest(name="empty"), [])
    with pytest.raises(DatasetError, match="unknown split"):
        dataset.split("validation")
