"""The ragtune CLI end to end on a real store and embedder, with the fake generator."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from tests.conftest import REPO

runner = CliRunner()


@pytest.fixture
def env(tmp_path, monkeypatch):
    """Settings from the repo's settings.yaml, data in a temporary folder, fake generator."""
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    return tmp_path


@pytest.fixture
def ingested(env):
    corpus = env / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n")
    (corpus / "kites.txt").write_text("Kites fly best in steady wind on open beaches.\n")
    result = runner.invoke(cli, ["ingest", str(corpus), "--collection", "notes"])
    assert result.exit_code == 0, result.output
    return corpus


@pytest.mark.parametrize(
    "command", [[], ["ingest"], ["ask"], ["serve"], ["engine"], ["models", "pull"]]
)
def test_every_command_explains_itself(command):
    result = runner.invoke(cli, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage" in result.output and "--help" in result.output


def test_train_help_shows_each_fields_choices():
    """Choices in brackets survive typer's rich markup (it took them for style tags)."""
    result = runner.invoke(cli, ["train", "sft", "--help"], env={"COLUMNS": "200"})
    assert result.exit_code == 0
    assert "[houlsby|pfeiffer]" in result.output and "[mlp|lstm]" in result.output
    assert "[lora|ia3|prefix|prompt|ptuning|bottleneck|" in result.output


def test_reingest_prints_zero_embeddings(ingested):
    result = runner.invoke(cli, ["ingest", str(ingested), "--collection", "notes"])
    assert "skipped 2" in result.output and "embeddings computed: 0" in result.output
    report = json.loads(
        runner.invoke(cli, ["ingest", str(ingested), "-c", "notes", "--json"]).output
    )
    assert report["summary"]["embedded_chunks"] == 0


def test_ingest_reports_failures_and_exits_1(env, ingested):
    (ingested / "bad.txt").write_bytes(b"\x00\x01\x02binary")
    result = runner.invoke(cli, ["ingest", str(ingested), "--collection", "notes"])
    assert result.exit_code == 1
    assert "bad.txt: binary content" in result.output and "failed 1" in result.output


def test_ask_json_has_answer_and_sources(ingested):
    result = runner.invoke(cli, ["ask", "How hot for green tea?", "-c", "notes", "--json"])
    record = json.loads(result.output)
    assert record["answer"] and record["sources"][0]["source"].endswith("tea.md")
    assert set(record["sources"][0]) >= {"source", "page", "score", "text"}


def test_ask_file_writes_jsonl_and_skips_bad_lines(ingested, env):
    questions = env / "q.jsonl"
    questions.write_text(
        '{"question": "How hot for green tea?"}\nnot json\n{"q": 1}\n'
        '{"question": "Where do kites fly?"}\n'
    )
    out = env / "answers.jsonl"
    result = runner.invoke(cli, ["ask", "--file", str(questions), "-c", "notes", "-o", str(out)])
    assert result.exit_code == 0, result.output
    assert "line 2: skipped" in result.output and "line 3: skipped" in result.output
    records = [json.loads(line) for line in out.read_text().splitlines()]
    assert [r["question"] for r in records] == ["How hot for green tea?", "Where do kites fly?"]
    assert all(r["answer"] and r["latency_s"] >= 0 and r["sources"] for r in records)


def test_retrieve_only_skips_generation(ingested, env, monkeypatch):
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "vllm")
    monkeypatch.setenv("RAGTUNE_GENERATOR__URL", f"http://127.0.0.1:{_closed_port()}/v1")
    questions = env / "q.jsonl"
    questions.write_text('{"question": "Where do kites fly?"}\n')
    result = runner.invoke(cli, ["ask", "--file", str(questions), "-c", "notes", "--retrieve-only"])
    record = json.loads(result.output.strip().splitlines()[-1])
    assert record["answer"] is None and record["sources"][0]["source"].endswith("kites.txt")


def test_server_down_is_one_clear_error(ingested, monkeypatch):
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "vllm")
    monkeypatch.setenv("RAGTUNE_GENERATOR__URL", f"http://127.0.0.1:{_closed_port()}/v1")
    result = runner.invoke(cli, ["ask", "Where do kites fly?", "-c", "notes"])
    assert result.exit_code == 2
    assert "error: the vLLM server at" in result.output and "not reachable" in result.output
    assert "Traceback" not in result.output


def test_unknown_collection_and_bad_settings_are_clear(env, monkeypatch):
    result = runner.invoke(cli, ["ask", "q", "-c", "nope"])
    assert result.exit_code == 2 and "unknown collection 'nope'" in result.output
    monkeypatch.setenv("RAGTUNE_PROMPTING__TOP_K", "many")
    result = runner.invoke(cli, ["ask", "q"])
    assert result.exit_code == 2 and "prompting.top_k" in result.output


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_prefs_export_reports_a_user_error_in_one_line(env, monkeypatch):
    from evals.votes import VoteError, VoteStore

    def refuse(self, path):
        raise VoteError("the votes database is from a newer ragtune")

    monkeypatch.setattr(VoteStore, "export_preferences", refuse)
    result = runner.invoke(cli, ["prefs", "export", "--output", str(env / "p.jsonl")])
    assert result.exit_code == 2
    assert "error: the votes database is from a newer ragtune" in result.output
