"""`ragtune eval run` end to end with the fake generator: report, intervals, plots, bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli.main import cli
from tests.conftest import REPO

runner = CliRunner()


def _env(monkeypatch, tmp_path):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_GENERATOR__MODE", "fake")


def test_eval_run_writes_report_with_intervals_and_plots(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n")
    assert runner.invoke(cli, ["ingest", str(corpus), "-c", "docs"]).exit_code == 0
    data = tmp_path / "qa.jsonl"
    data.write_text(
        "\n".join(
            json.dumps(
                {
                    "question": f"How hot for tea {i}?",
                    "reference": "80 degrees",
                    "relevant": ["docs/tea.md"],
                }
            )
            for i in range(4)
        )
    )
    suite = tmp_path / "suite.yaml"
    suite.write_text(f"name: mini\nkind: qa\ndata: {data}\n")
    out = tmp_path / "report"
    result = runner.invoke(
        cli,
        [
            "eval",
            "run",
            "--suite",
            str(suite),
            "--variants",
            "zero-shot,few-shot,rag",
            "-o",
            str(out),
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert set(summary["variants"]) == {"zero-shot", "few-shot", "rag"}
    cell = summary["variants"]["rag"]["metrics"]["token_f1"]
    assert cell["n"] == 4 and cell["ci"][0] <= cell["mean"] <= cell["ci"][1]
    assert summary["variants"]["rag"]["metrics"]["hit@1"]["mean"] == 1.0
    assert "zero-shot vs rag" in summary["pairs"]
    for name in (
        "results.jsonl",
        "summary.json",
        "report.md",
        "report.html",
        "metrics.png",
        "latency.png",
    ):
        assert (out / name).exists(), name
    assert "data:image/png;base64" in (out / "report.html").read_text()
    assert len((out / "results.jsonl").read_text().splitlines()) == 12


def test_eval_run_names_unknown_variants_adapters_and_bad_lines(tmp_path, monkeypatch):
    _env(monkeypatch, tmp_path)
    suite = tmp_path / "suite.yaml"
    data = tmp_path / "qa.jsonl"
    data.write_text('{"question": "q", "reference": "r"}\n')
    suite.write_text(f"kind: qa\ndata: {data}\n")
    result = runner.invoke(
        cli, ["eval", "run", "--suite", str(suite), "--variants", "zero-shot,nope"]
    )
    assert result.exit_code == 2 and "unknown variant(s) nope" in result.output
    result = runner.invoke(cli, ["eval", "run", "--suite", str(suite), "--variants", "lora"])
    assert result.exit_code == 2 and "unknown adapter 'ragtune-qa-lora'" in result.output
    result = runner.invoke(cli, ["eval", "run", "--suite", str(suite), "--variants", "rag"])
    assert result.exit_code == 2 and "unknown collection 'docs'" in result.output
    data.write_text('{"question": "q", "reference": "r"}\n{"reference": "no question"}\n')
    result = runner.invoke(cli, ["eval", "run", "--suite", str(suite), "--variants", "zero-shot"])
    assert result.exit_code == 2 and "line 2" in result.output
    suite.write_text(f"kind: qa\ndata: {data}\n".replace("qa.jsonl", "missing.jsonl"))
    result = runner.invoke(cli, ["eval", "run", "--suite", str(suite), "--variants", "rag"])
    assert result.exit_code == 2 and "no such data file" in result.output
