"""Ranking metrics against hand-computed values, the dataset reader, and the CLI."""

from __future__ import annotations

import json
import math

import pytest
from typer.testing import CliRunner

from app.cli.main import cli
from evals.metrics.retrieval import dedupe, hit_at_k, mrr_at_k, ndcg_at_k
from evals.retrieval_eval import load_dataset, score_ranking
from tests.conftest import REPO
from training.data import DatasetError


def test_ranking_metrics_match_hand_computation():
    ranked = ["a", "b", "c", "d"]
    relevant = {"b", "d"}
    assert hit_at_k(ranked, relevant, 1) == 0.0 and hit_at_k(ranked, relevant, 2) == 1.0
    assert mrr_at_k(ranked, relevant) == 0.5
    # DCG = 1/log2(3) + 1/log2(5); ideal = 1/log2(2) + 1/log2(3)
    expected = (1 / math.log2(3) + 1 / math.log2(5)) / (1 + 1 / math.log2(3))
    assert ndcg_at_k(ranked, relevant) == pytest.approx(expected)
    assert ndcg_at_k(["x"], {"y"}) == 0.0 and mrr_at_k(["x"], {"y"}) == 0.0
    assert dedupe(["a", "a", "b", "a"]) == ["a", "b"]


def test_score_ranking_matches_labels_by_path_suffix():
    sources = ["/r/docs/a.md", "/r/docs/a.md", "/r/docs/b.md"]
    scores = score_ranking(sources, ["docs/b.md"])
    assert scores["hit@1"] == 0.0 and scores["hit@3"] == 1.0 and scores["mrr@10"] == 0.5
    assert scores["ndcg@10"] == pytest.approx(1 / math.log2(3))


def test_malformed_dataset_line_is_named(tmp_path):
    path = tmp_path / "set.jsonl"
    path.write_text('{"question": "q", "relevant": ["docs/a.md"]}\n{"question": "q2"}\n')
    with pytest.raises(DatasetError, match="line 2"):
        load_dataset(path)


def test_shipped_labeled_set_is_large_and_valid():
    questions = load_dataset(REPO / "evals/datasets/retrieval_docs.jsonl")
    assert len(questions) >= 60
    for item in questions:
        assert all((REPO / path).exists() for path in item.relevant), item
    kinds = [
        json.loads(line).get("kind")
        for line in (REPO / "evals/datasets/retrieval_docs.jsonl").read_text().splitlines()
        if line.strip()
    ]
    assert kinds.count("paraphrase") >= 20


@pytest.fixture
def tea_corpus(tmp_path, monkeypatch):
    """Settings on a temporary data folder and a folder holding tea.md."""
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    corpus = tmp_path / "c"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n")
    return corpus


def test_eval_retrieval_cli_compares_retrievers(tmp_path, tea_corpus):
    runner = CliRunner()
    corpus = tea_corpus
    (corpus / "kites.md").write_text("# Kites\n\nKites fly in steady wind.\n")
    assert runner.invoke(cli, ["ingest", str(corpus), "-c", "small"]).exit_code == 0
    dataset = tmp_path / "set.jsonl"
    dataset.write_text(
        '{"question": "how hot is the water for green tea", "relevant": ["c/tea.md"]}\n'
        '{"question": "what do kites need", "relevant": ["c/kites.md"]}\n'
    )
    result = runner.invoke(
        cli, ["eval", "retrieval", "--dataset", str(dataset), "-c", "small", "--json"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert set(report["retrievers"]) == {"dense", "bm25", "hybrid"}
    assert report["retrievers"]["hybrid"]["hit@1"] == 1.0
    dataset.write_text('{"question": "ok", "relevant": ["c/tea.md"]}\nnot json\n')
    result = runner.invoke(cli, ["eval", "retrieval", "--dataset", str(dataset), "-c", "small"])
    assert result.exit_code == 2 and "line 2" in result.output and "Traceback" not in result.output


def test_collections_commands(tea_corpus):
    runner = CliRunner()
    corpus = tea_corpus
    runner.invoke(cli, ["ingest", str(corpus), "-c", "small"])
    listed = json.loads(runner.invoke(cli, ["collections", "list", "--json"]).output)
    assert listed[0]["name"] == "small" and listed[0]["files"] == 1 and listed[0]["chunks"] >= 1
    assert listed[0]["chunking"] == "structure/256/32" and listed[0]["size_bytes"] > 0
    shown = json.loads(runner.invoke(cli, ["collections", "show", "small", "--json"]).output)
    assert shown["file_list"][0].endswith("tea.md")
    missing = runner.invoke(cli, ["collections", "show", "ghost"])
    assert missing.exit_code == 2 and "unknown collection 'ghost'" in missing.output
    assert runner.invoke(cli, ["collections", "delete", "small", "--yes"]).exit_code == 0
    assert json.loads(runner.invoke(cli, ["collections", "list", "--json"]).output) == []
