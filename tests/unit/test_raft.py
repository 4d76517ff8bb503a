"""RAFT data (app.raft) on a real store and embedder, with the fake generator."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
from typer.testing import CliRunner

from app.chat import ChatService
from app.components import build_chat_service, build_ingest_pipeline
from app.raft import RaftError, RaftOptions, build_raft_data, build_raft_examples, cite, load_pairs
from app.variants import VariantRunner, parse_spec
from indexing.store import StoreError
from training.qa_dataset import DatasetNotFound, QAPair

CORPUS = {
    "tea.md": [
        ("Green", "Green tea is steeped at 80 degrees for two minutes."),
        ("Black", "Black tea is steeped in boiling water for four minutes."),
    ],
    "coffee.md": [
        ("Espresso", "Espresso is brewed at nine bar of pressure."),
        ("Filter", "Filter coffee uses a medium grind and water at 94 degrees."),
    ],
    "bread.md": [
        ("Sourdough", "A sourdough starter is fed flour and water every day."),
        ("Baguette", "A baguette is baked at 250 degrees with steam."),
    ],
    "bikes.md": [
        ("Chain", "The bicycle chain is oiled every 300 kilometres."),
        ("Tyres", "Road bike tyres are pumped to six bar."),
    ],
}
PAIRS = [
    QAPair("How hot is the water for green tea?", "Green tea is steeped at 80 degrees.", "tea.md"),
    QAPair("How long does black tea steep?", "Four minutes, in boiling water.", "tea.md"),
    QAPair("What pressure brews espresso?", "Nine bar.", "coffee.md"),
    QAPair("Which grind does filter coffee use?", "A medium grind [3].", "coffee.md"),
    QAPair("How often is a sourdough starter fed?", "Every day.", "bread.md"),
    QAPair("At what temperature is a baguette baked?", "At 250 degrees.", "bread.md"),
    QAPair("How often is the bicycle chain oiled?", "Every 300 kilometres.", "bikes.md"),
    QAPair("To what pressure are road bike tyres pumped?", "Six bar.", "bikes.md"),
]


@pytest.fixture
def kb(make_settings, embedder, tmp_path):
    """(settings, chat service, store) over collection ``kb`` of the four small files."""
    settings = make_settings(generator={"mode": "fake"})
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    for name, sections in CORPUS.items():
        body = "".join(f"## {heading}\n\n{text}\n\n" for heading, text in sections)
        (corpus / name).write_text(f"# {name}\n\n{body}")
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    pipeline.ingest(sorted(corpus.iterdir()), "kbase", show_progress=False)
    chat = build_chat_service(settings, store=pipeline.store, embedder=embedder)
    return settings, chat, pipeline.store


ORACLES = {
    p.question: text
    for p, (_, text) in zip(PAIRS, [s for sections in CORPUS.values() for s in sections])
}


def test_oracle_share_is_exact_seeded_and_its_position_shuffled(kb):
    _, chat, _ = kb
    pairs = PAIRS * 3
    data = build_raft_data(chat, "kbase", pairs, options=RaftOptions(0.75, distractors=2, seed=1))
    present = [e for e in data.examples if e.oracle is not None]
    assert len(data.examples) == 24 and len(present) == 18
    assert data.summary["with_oracle"] == 18 and data.summary["without_oracle"] == 6
    assert len({e.oracle for e in present}) > 1  # the oracle is not always first
    again = build_raft_data(chat, "kbase", pairs, options=RaftOptions(0.75, distractors=2, seed=1))
    assert again.records() == data.records()
    other = build_raft_data(chat, "kbase", pairs, options=RaftOptions(0.75, distractors=2, seed=2))
    assert other.records() != data.records()
    half = build_raft_data(chat, "kbase", PAIRS, options=RaftOptions(0.5, distractors=2))
    assert sum(e.oracle is not None for e in half.examples) == 4


def test_distractor_count_and_which_chunks(kb):
    _, chat, _ = kb
    data = build_raft_data(chat, "kbase", PAIRS * 2, options=RaftOptions(0.5, distractors=2))
    for example in data.examples:
        assert len(example.sources) == 3  # oracle + 2 distractors, or 3 distractors
        oracle = ORACLES[example.pair.question]
        texts = [s.text for s in example.sources]
        if example.oracle is None:
            assert not any(oracle in t for t in texts)
        else:
            assert oracle in texts[example.oracle - 1]
            assert sum(oracle in t for t in texts) == 1
    # k deeper than the distractors: drawn from the top k, still 2 beside the oracle
    wide = build_raft_data(chat, "kbase", PAIRS, options=RaftOptions(1.0, distractors=2, k=6))
    assert all(len(e.sources) == 3 and e.oracle for e in wide.examples)
    assert wide.summary["short_of_distractors"] == 0


def test_training_prompt_equals_the_serving_prompt_of_a_rag_variant(kb):
    settings, chat, _ = kb
    data = build_raft_data(chat, "kbase", PAIRS, options=RaftOptions(0.5, distractors=3))

    class Fixed:  # a retriever handing back exactly the example's chunks, in its order
        def __init__(self) -> None:
            self.sources: list = []

        def retrieve(self, query, collection, k, flt=None):
            return list(self.sources)

    fixed = Fixed()
    serving = ChatService(
        chat.generator,
        {"dense": fixed, "bm25": fixed, "hybrid": fixed},
        settings.prompting,
        chat.params,
        "kbase",
    )
    runner = VariantRunner(serving)
    for example in data.examples:
        fixed.sources = example.sources
        turn = runner.prepare(parse_spec("rag:kbase"), example.pair.question)
        assert turn.messages == example.messages[:-1]
        assert example.messages[-1]["role"] == "assistant"
    assert "Sources:" in data.examples[0].messages[-2]["content"]


def test_answer_cites_the_oracle_by_its_number(kb):
    _, chat, _ = kb
    records = build_raft_examples(chat, "kbase", PAIRS * 3, oracle_share=0.75, distractors=2)
    for record in records:
        answer, number = record["messages"][-1]["content"], record["raft"]["oracle"]
        if number is None:
            assert "[" not in answer  # no citation of a missing source, nor a stale one
        else:
            assert f"[{number}]" in answer and answer.count("[") == 1
            assert answer.rstrip(".").endswith(f"[{number}]")
    assert cite("It is 80 degrees.", 2) == "It is 80 degrees [2]."
    assert cite("Nine bar", 1) == "Nine bar [1]"
    assert cite("A medium grind [3].", None) == "A medium grind."
    assert cite('He said "yes."', 4) == 'He said "yes [4]."'


def test_oracle_from_chunk_id_and_from_the_whole_collection(kb):
    _, chat, store = kb
    chunks = store.collection("kbase", embedding_model=None).chunks()
    espresso = next(i for i, t in zip(chunks.ids, chunks.texts) if "Espresso" in t)
    pairs = [
        replace(PAIRS[2], chunk_id=espresso),
        replace(PAIRS[3], chunk_id="stale-id", chunk="gone"),
        replace(PAIRS[0], source=""),
    ]
    data = build_raft_data(chat, "kbase", pairs, options=RaftOptions(1.0, distractors=1))
    assert data.summary["oracle_found_by"] == {"chunk_id": 1, "matched": 1, "matched_anywhere": 1}
    first = data.examples[0]
    assert first.sources[first.oracle - 1].chunk_id == espresso
    last = data.examples[2]
    assert "80 degrees" in last.sources[last.oracle - 1].text


def test_bad_inputs(kb, tmp_path):
    settings, chat, _ = kb
    with pytest.raises(StoreError, match="unknown collection 'nope'"):
        build_raft_data(chat, "nope", PAIRS)
    with pytest.raises(RaftError, match="no question/answer pairs"):
        build_raft_data(chat, "kbase", [], dataset="empty.jsonl")
    for options, field in [(RaftOptions(1.5), "oracle share"), (RaftOptions(k=2), "k 2")]:
        with pytest.raises(RaftError, match=field):
            build_raft_data(chat, "kbase", PAIRS, options=options)
    strays = [replace(PAIRS[0], source="gone.md"), replace(PAIRS[1], source="docs/gone.md")]
    data = build_raft_data(chat, "kbase", PAIRS + strays + strays[:1])
    assert data.summary["skipped"] == {"source_not_in_collection": 3}
    assert data.summary["missing_sources"] == ["docs/gone.md", "gone.md"]
    assert len(data.examples) == len(PAIRS)
    with pytest.raises(RaftError, match="no pair .* gone.md"):
        build_raft_data(chat, "kbase", strays)

    qa = tmp_path / "qa.jsonl"
    suite_line = {"question": "Q2?", "reference": "B.", "relevant": ["docs/tea.md"]}
    qa.write_text(
        json.dumps({"question": "Q?", "answer": "A.", "source": "tea.md"})
        + "\nnot json\n"
        + json.dumps(suite_line)
    )
    pairs, problems = load_pairs(settings.datasets_dir, str(qa))
    assert problems == [f"{qa}, line 2: not valid JSON (Expecting value)"]
    assert [p.source for p in pairs] == ["tea.md", "docs/tea.md"]  # a suite line's relevant
    with pytest.raises(RaftError, match="no such file"):
        load_pairs(settings.datasets_dir, str(tmp_path / "missing.jsonl"))
    with pytest.raises(DatasetNotFound):
        load_pairs(settings.datasets_dir, "no-such-dataset")


def test_train_raft_records_its_settings_in_the_manifest(kb, tmp_path, tiny_model):
    from app.raft import train_raft
    from training.config import SFTArgs, validate
    from training.registry import AdapterRegistry

    _, chat, _ = kb
    args = validate(
        SFTArgs(
            name="tiny-raft",
            dataset="(built by --raft)",
            base_model=tiny_model,
            max_steps=2,
            batch_size=2,
            max_length=32,
            logging_steps=1,
            forgetting_check=False,
        )
    )
    registry = AdapterRegistry(tmp_path / "adapters")
    output = tmp_path / "raft" / "tiny-raft.jsonl"
    manifest = train_raft(
        args,
        chat,
        registry,
        tmp_path / "runs",
        collection="kbase",
        pairs=PAIRS,
        output=output,
        options=RaftOptions(0.75, distractors=1, seed=3),
        dataset="pairs.jsonl",
        progress=False,
    )
    raft = manifest.metrics["raft"]
    assert raft["collection"] == "kbase" and raft["dataset"] == "pairs.jsonl"
    assert (raft["oracle_share"], raft["distractors"], raft["seed"]) == (0.75, 1, 3)
    assert raft["examples"] == 8 and raft["with_oracle"] == 6
    assert (raft["retriever"], raft["k"], raft["sources_per_prompt"]) == ("hybrid", 2, 2)
    assert raft["max_length"] == raft["longest_example_tokens"] > 32  # raised: no truncation
    assert manifest.dataset == str(output) and len(output.read_text().splitlines()) == 8
    assert manifest.hyperparameters["max_length"] == raft["max_length"]
    assert [m.name for m in registry.list()] == ["tiny-raft"]


def test_cli_refuses_raft_options_without_raft_and_raft_without_inputs(monkeypatch, tmp_path):
    from app.cli.main import cli
    from tests.conftest import REPO

    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    runner = CliRunner()
    qa = tmp_path / "qa.jsonl"
    qa.write_text(json.dumps({"question": "Q?", "answer": "A.", "source": "tea.md"}) + "\n")
    raft = ["--raft", "--collection"]
    cases = [
        (["--collection", "kbase"], "go with --raft"),
        ([*raft, "kbase"], "--raft needs --collection and --data"),
        ([*raft, "kbase", "--data", "d", "--dataset", "x"], "leave out --dataset"),
        ([*raft, "kbase", "--data", "d", "--name", "r"], "unknown dataset 'd'"),
        ([*raft, "nowhere", "--data", str(qa), "--name", "r"], "unknown collection 'nowhere'"),
    ]
    for args, message in cases:
        model = ["--set", "base_model=m"] if "--name" in args else []  # no model is loaded
        result = runner.invoke(cli, ["train", "sft", *args, *model])
        assert result.exit_code == 2 and message in result.output, result.output
