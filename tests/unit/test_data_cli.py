"""`ragtune data ...` end to end on a real store and embedder, with a scripted fake writer."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from tests.conftest import REPO
from tests.unit.test_synth import CHUNKS, REPLIES, ScriptedWriter

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    monkeypatch.setenv("RAGTUNE_SYNTH__MIN_CHUNK_WORDS", "5")
    return tmp_path


@pytest.fixture
def ingested(env, monkeypatch):
    corpus = env / "corpus"
    corpus.mkdir()
    for marker in ("alpha", "bravo", "charlie"):
        (corpus / f"{marker}.txt").write_text(CHUNKS[marker] + "\n")
    result = runner.invoke(cli, ["ingest", str(corpus), "--collection", "notes"])
    assert result.exit_code == 0, result.output
    writer = ScriptedWriter({m: REPLIES[m] for m in ("alpha", "bravo", "charlie")})
    info = {"model": "scripted", "endpoint": "fake", "teacher": False}
    monkeypatch.setattr("app.synth.synth_generator", lambda settings: (writer, info))
    return corpus


@pytest.mark.parametrize("command", ["synth", "import", "list", "show", "delete"])
def test_every_data_command_explains_itself(command):
    result = runner.invoke(cli, ["data", command, "--help"])
    assert result.exit_code == 0 and "--json" in result.output


def test_synth_list_show_delete(ingested):
    result = runner.invoke(cli, ["data", "synth", "-c", "notes", "--n", "3"])
    assert result.exit_code == 0, result.output
    assert "notes-synth: generated 3, kept 1 (33%)" in result.output
    assert "dropped: malformed 1, not_a_question 1" in result.output
    assert "splits: train 1, dev 0, test 0" in result.output

    listed = runner.invoke(cli, ["data", "list"])
    assert "notes-synth" in listed.output and "synth" in listed.output
    assert json.loads(runner.invoke(cli, ["data", "list", "--json"]).output)[0]["seed"] == 0

    shown = runner.invoke(cli, ["data", "show", "notes-synth"])
    assert shown.exit_code == 0
    assert "Q: When does the Osprey team travel to Lisbon?" in shown.output
    assert "A: in May" in shown.output and "alpha.txt" in shown.output
    assert "generated" in shown.output and "min_answer_support" in shown.output
    record = json.loads(runner.invoke(cli, ["data", "show", "notes-synth", "--json"]).output)
    assert record["counts"]["kept"] == 1 and record["examples"][0]["chunk"].startswith("Alpha:")

    taken = runner.invoke(cli, ["data", "synth", "-c", "notes", "--n", "3"])
    assert taken.exit_code == 2 and "exists" in taken.output
    again = runner.invoke(
        cli, ["data", "synth", "-c", "notes", "--n", "3", "--overwrite", "--json"]
    )
    counts = json.loads(again.output)
    assert counts["generated"] == 3 and counts["dropped"]["malformed"] == 1

    assert runner.invoke(cli, ["data", "delete", "notes-synth", "--yes"]).exit_code == 0
    gone = runner.invoke(cli, ["data", "show", "notes-synth"])
    assert gone.exit_code == 2 and "unknown dataset 'notes-synth'" in gone.output


def test_synth_on_a_missing_collection_is_one_error_line(ingested):
    result = runner.invoke(cli, ["data", "synth", "-c", "nothere", "--n", "2"])
    assert result.exit_code == 2 and "error: unknown collection 'nothere'" in result.output


def test_import_names_bad_lines_and_keeps_the_rest(env):
    path = env / "pairs.csv"
    path.write_text("question,answer,source\nWhat is it?,a kite,kites.txt\n,missing,\nWhy?,wind,\n")
    result = runner.invoke(cli, ["data", "import", str(path)])
    assert result.exit_code == 0, result.output
    assert f"skipped: {path}, line 3: 'question' is missing or empty" in result.output
    assert "pairs: imported 2 pairs, skipped 1 line(s)" in result.output
    assert "split(s) are empty: too few pairs for `ragtune compare`" in result.output
    record = json.loads(
        runner.invoke(cli, ["data", "import", str(path), "--name", "p2", "--json"]).output
    )
    assert record["imported"] == 2 and record["problems"] == [
        f"{path}, line 3: 'question' is missing or empty"
    ]
    empty = env / "empty.jsonl"
    empty.write_text("\n")
    result = runner.invoke(cli, ["data", "import", str(empty)])
    assert result.exit_code == 2 and "no valid question/answer pair" in result.output
