"""`ragtune eval run` end to end with the fake generator: report, intervals, plots, bad input."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from app.cli.main import cli
from evals.report import report_paths
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
    assert {p.name for p in report_paths(out).values()} == {p.name for p in out.iterdir()}
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
    assert result.exit_code == 2 and "unknown variant 'nope': not a named variant" in result.output
    result = runner.invoke(
        cli, ["eval", "run", "--suite", str(suite), "--variants", "rag:docs@k=zero"]
    )
    assert result.exit_code == 2 and "variant spec 'rag:docs@k=zero': @k=zero" in result.output
    result = runner.invoke(
        cli, ["eval", "run", "--suite", str(suite), "--variants", "few-shot@demos=nope"]
    )
    assert result.exit_code == 2 and "unknown dataset 'nope'" in result.output
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


def test_eval_run_takes_specs_and_a_dataset_or_qa_file_for_the_suite(tmp_path, monkeypatch):
    from tests.unit.test_variant_specs import _dataset

    _env(monkeypatch, tmp_path)
    corpus = tmp_path / "docs"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n")
    assert runner.invoke(cli, ["ingest", str(corpus), "-c", "docs"]).exit_code == 0
    _dataset(tmp_path / "data" / "datasets")
    specs = "zero-shot,rag:docs@k=1@retriever=dense,few-shot@shots=2@demos=mydata"
    out = tmp_path / "report"
    args = ["eval", "run", "--data", "mydata", "--variants", specs, "-o", str(out), "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)["summary"]
    assert list(summary["variants"]) == specs.split(",")
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines()]
    rag = [r for r in rows if r["variant"].startswith("rag:")]
    assert rag and all(len(r["sources"]) == 1 for r in rag)
    assert "few-shot(2, from mydata)" in (out / "report.md").read_text()
    qa = tmp_path / "mine.jsonl"
    qa.write_text(
        '{"question": "How hot?", "answer": "80 degrees"}\nbroken\n'
        '{"question": "Tea?", "reference": "green", "source": "docs/tea.md"}\n'
    )
    args = ["eval", "run", "--suite", str(qa), "--variants", "rag:docs", "-o", str(out), "--json"]
    result = runner.invoke(cli, args)
    assert result.exit_code == 0, result.output
    assert f"warning: {qa}, line 2: not valid JSON" in result.output
    summary = json.loads(result.output[result.output.index("{") :])["summary"]
    assert summary["variants"]["rag:docs"]["metrics"]["token_f1"]["n"] == 2
