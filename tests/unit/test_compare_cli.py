"""`ragtune compare` end to end on the fake generator: a user's QA file, a real Chroma
collection, the real embedder, a tiny model trained for two steps per adapter."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from app.compare.study import default_study_name as default_name
from tests.conftest import REPO

runner = CliRunner()
FACTS = {
    "tea": "Green tea is steeped at eighty degrees for three minutes in the Osprey kitchen.",
    "harbour": "The Osprey ferry leaves the harbour at seven every morning except Sunday.",
    "archive": "The city archive closes at six in the evening on Fridays and opens at nine.",
    "kites": "Kites fly best in steady wind on the open beaches north of town in autumn.",
}
QUESTIONS = {
    "tea": [
        ("How hot is green tea steeped?", "eighty degrees"),
        ("How long is tea steeped?", "three minutes"),
    ],
    "harbour": [("When does the ferry leave?", "at seven"), ("Which day has no ferry?", "Sunday")],
    "archive": [
        ("When does the archive close on Fridays?", "at six"),
        ("When does it open?", "at nine"),
    ],
    "kites": [
        ("Where do kites fly best?", "open beaches"),
        ("In which season do kites fly?", "autumn"),
    ],
}


@pytest.fixture
def setup(tmp_path, monkeypatch, tiny_model):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODEL", tiny_model)
    corpus = tmp_path / "notes"
    corpus.mkdir()
    for name, text in FACTS.items():
        (corpus / f"{name}.md").write_text(f"# {name.title()}\n\n{text}\n")
    result = runner.invoke(cli, ["ingest", str(corpus), "-c", "notes"])
    assert result.exit_code == 0, result.output
    pairs = tmp_path / "pairs.jsonl"
    with pairs.open("w") as handle:
        for round_ in range(3):
            for name, items in QUESTIONS.items():
                for question, answer in items:
                    asked = question if round_ == 0 else f"{question[:-1]}, in note {round_}?"
                    line = {
                        "question": asked,
                        "answer": answer,
                        "source": str(corpus / f"{name}.md"),
                    }
                    handle.write(json.dumps(line) + "\n")
        handle.write("not json\n")
    return tmp_path, pairs


def test_compare_runs_a_tiny_study_on_a_users_qa_file_and_test_file_and_resumes(setup):
    tmp_path, pairs = setup
    test = tmp_path / "fixed-test.csv"
    notes = tmp_path / "notes"
    test.write_text(
        "question,answer,source\n"
        f"Who travels on the ferry from the harbour?,commuters,{notes / 'harbour.md'}\n"
        f"What do kites need to fly?,steady wind,{notes / 'kites.md'}\n"
        f"What does the archive keep?,records,{notes / 'archive.md'}\n"
    )
    args = ["compare", "-c", "notes", "--data", str(pairs), "--test", str(test), "--budget"]
    args += ["tiny", "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["study"] == "notes-pairs-tiny"
    assert summary["data"]["test_source"] == str(test) and summary["data"]["test_items"] == 3
    assert set(summary["arms"]) == {"zero-shot", "few-shot", "rag", "lora", "rag+lora", "rag+raft"}
    for name, row in summary["arms"].items():
        assert row["status"] == "ok", (name, row)
        assert "token_f1" in row["metrics"] and row["cost"]["latency_p50_s"] is not None
    assert summary["arms"]["rag"]["metrics"]["hit@1"]["n"] == summary["data"]["test_items"]
    assert summary["arms"]["rag"]["metrics"]["groundedness"]["mean"] > 0  # the fake cites [1]
    assert (
        summary["arms"]["rag"]["cost"]["prompt_tokens"]
        > summary["arms"]["lora"]["cost"]["prompt_tokens"]
    )
    lora = summary["arms"]["lora"]
    assert lora["cost"]["train_seconds"] > 0 and lora["cost"]["adapter_mb"] > 0
    assert lora["forgetting"]["metrics"]["token_f1"]["n"] == 3
    assert summary["recommendation"]["arm"] in summary["arms"]
    assert any("line 25" in p for p in summary["data"]["problems"])
    folder = tmp_path / "data" / "compare" / "notes-pairs-tiny"
    raft = [json.loads(line) for line in (folder / "work" / "sft-raft.jsonl").open()]
    assert all(len(r["messages"]) == 3 and "Sources:" in r["messages"][1]["content"] for r in raft)
    for name in ("report.md", "report.html", "quality.png", "cost.png", "forgetting.png"):
        assert (folder / "reports" / name).exists(), name
    # a second run reuses every stage and only writes the report again
    again = runner.invoke(cli, args[:-1])
    assert again.exit_code == 0, again.output
    assert again.output.count("done earlier, reused") == len(summary["stages"])
    assert "## Recommendation" in again.output


def test_compare_refuses_a_leaking_test_file_and_names_bad_input(setup):
    tmp_path, pairs = setup
    leaked = tmp_path / "test.jsonl"
    leaked.write_text("\n".join(pairs.read_text().splitlines()[:8]) + "\n")  # a whole round
    result = runner.invoke(
        cli,
        ["compare", "-c", "notes", "--data", str(pairs), "--test", str(leaked), "--budget", "tiny"],
    )
    assert result.exit_code == 2
    assert "leakage" in result.output and "--drop-overlap" in result.output
    missing = runner.invoke(cli, ["compare", "-c", "nowhere", "--synth", "5", "--budget", "tiny"])
    assert missing.exit_code == 2 and "no collection 'nowhere'" in missing.output
    neither = runner.invoke(cli, ["compare", "-c", "notes"])
    assert neither.exit_code == 2 and "--data D or --synth N" in neither.output
    budget = runner.invoke(cli, ["compare", "-c", "notes", "--synth", "5", "--budget", "huge"])
    assert budget.exit_code == 2 and "unknown budget 'huge'" in budget.output


def test_default_study_names_are_valid_and_stable():
    assert default_name("docs", "", 200, "quick") == "docs-synth200-quick"
    assert default_name("docs", "/x/My Pairs.v2.csv", 0, "tiny") == "docs-My-Pairs.v2-tiny"
    assert len(default_name("c" * 60, "", 5, "quick")) <= 41
