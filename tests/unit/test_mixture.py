"""Multi-task mixtures and replay: weights, seeds, the manifest's record, bad input, and the
bundled general instruction set's freedom from benchmark items."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from tests.conftest import REPO
from training.config import ConfigError, SFTArgs, load_args, validate
from training.data import DatasetError, load_instructions
from training.mixture import GENERAL_INSTRUCTIONS, parse_mix, training_rows
from training.registry import AdapterRegistry
from training.sft import train_sft

BENCHMARKS = (REPO / "../shared/data/benchmarks").resolve()


def _write(path: Path, prefix: str, n: int) -> Path:
    lines = [
        json.dumps({"instruction": f"{prefix} question {i}?", "output": f"{prefix} answer {i}."})
        for i in range(n)
    ]
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def files(tmp_path):
    return _write(tmp_path / "a.jsonl", "alpha", 300), _write(tmp_path / "b.jsonl", "beta", 300)


def _mix(a, b, wa=0.75, wb=0.25):
    return [
        {"path": str(a), "weight": wa, "task": "alpha"},
        {"path": str(b), "weight": wb, "task": "beta"},
    ]


def test_weights_are_respected_and_records_keep_their_task(files):
    rows, record = training_rows("", _mix(*files), 0.0, seed=1)
    tasks = rows["task"]
    share = tasks.count("alpha") / len(tasks)
    assert share == pytest.approx(0.75, abs=0.07)
    # Sampling stops when the first task runs out: every alpha row once, none repeated.
    assert tasks.count("alpha") == 300 and len(set(map(str, rows["prompt"]))) == len(rows)
    assert all(r["prompt"][0]["content"].startswith(r["task"]) for r in rows)
    drawn = {t["task"]: t["rows_drawn"] for t in record["tasks"]}
    assert drawn == {"alpha": tasks.count("alpha"), "beta": tasks.count("beta")}
    assert record["rows"] == len(rows) and record["replay"] is None


def test_the_seed_makes_the_mixture_reproducible(files):
    first, _ = training_rows("", _mix(*files), 0.2, seed=7)
    again, _ = training_rows("", _mix(*files), 0.2, seed=7)
    other, _ = training_rows("", _mix(*files), 0.2, seed=8)
    assert first.to_list() == again.to_list()
    assert first.to_list() != other.to_list()


def test_replay_adds_its_share_of_general_rows_to_a_single_dataset(files):
    rows, record = training_rows(str(files[0]), [], 0.2, seed=3)
    replayed = rows["task"].count("replay")
    assert replayed == 75 and replayed / len(rows) == pytest.approx(0.2)
    assert record["replay"]["rows_drawn"] == 75 and record["replay"]["share"] == 0.2
    assert record["tasks"][0]["task"] == "a" and record["tasks"][0]["rows_drawn"] == 300
    # More replay than the set holds cycles through it.
    rows, record = training_rows(str(files[0]), [], 0.9, seed=3)
    assert record["replay"]["rows_drawn"] == 2700 > record["replay"]["rows_available"]


def test_a_plain_dataset_is_read_as_before(files):
    rows, record = training_rows(str(files[0]), [], 0.0, seed=3)
    assert record is None and rows.column_names == ["prompt", "completion"]
    assert rows[0]["prompt"][0]["content"] == "alpha question 0?"


def test_task_names_reach_the_manifest(tmp_path, tiny_model, files):
    registry = AdapterRegistry(tmp_path / "adapters")
    args = validate(
        SFTArgs(
            name="tiny-mix",
            mixture=_mix(*files),
            replay=0.1,
            base_model=tiny_model,
            max_steps=1,
            batch_size=2,
            forgetting_check=False,
        )
    )
    manifest = train_sft(args, registry, tmp_path / "runs")
    stored = json.loads((registry.path("tiny-mix") / "manifest.json").read_text())
    mixture = stored["metrics"]["mixture"]
    assert [t["task"] for t in mixture["tasks"]] == ["alpha", "beta"]
    assert all(len(t["sha256"]) == 64 and t["rows_available"] == 300 for t in mixture["tasks"])
    assert mixture["replay"]["rows_drawn"] > 0 and mixture["seed"] == 42
    assert stored["dataset"] == "" and manifest.metrics["mixture"] == mixture


def test_the_cli_spec_and_the_bundled_configs_parse(tmp_path):
    assert parse_mix("C:/data/x.jsonl:0.5:qa") == {
        "path": "C:/data/x.jsonl",
        "weight": 0.5,
        "task": "qa",
    }
    for bad in ("x.jsonl:0.5", "x.jsonl:heavy:qa", "x.jsonl::qa"):
        with pytest.raises(ConfigError, match="--mix"):
            parse_mix(bad)
    multitask = load_args(SFTArgs, REPO / "configs/train/sft_multitask.yaml", {})
    assert [m["task"] for m in multitask.mixture] == ["ragtune-qa", "general"]
    replay = load_args(SFTArgs, REPO / "configs/train/sft_lora-replay.yaml", {})
    assert replay.replay == 0.2 and replay.dataset.endswith("ragtune_instructions.jsonl")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"mixture": [{"path": "nope.jsonl", "weight": 1, "task": "x"}]}, r"mixture\[0\]\.path"),
        ({"weight": 0}, r"mixture\[0\]\.weight=0 must be a number > 0"),
        ({"weight": -1.5}, r"mixture\[0\]\.weight"),
        ({"weight": "a lot"}, r"mixture\[0\]\.weight"),
        ({"task": "beta"}, r"mixture\[0\]\.task='beta' is a duplicate|mixture\[1\]\.task='beta'"),
        ({"task": "replay"}, r"reserved"),
        ({"task": ""}, r"mixture\[0\]\.task must be a non-empty name"),
        ({"extra": 1}, r"unknown key\(s\) extra"),
        ({"replay": 0.95}, r"replay=0.95 is outside the allowed range 0.0..0.9"),
        ({"replay": -0.1}, r"replay=-0.1 is outside"),
        ({"dataset": "x.jsonl"}, r"either dataset or mixture"),
    ],
)
def test_bad_mixtures_are_refused_naming_the_field(tmp_path, files, change, message):
    mixture = _mix(*files)
    fields = {k: change.pop(k) for k in ("mixture", "replay", "dataset") if k in change}
    mixture[0].update(change)
    values = {"name": "x", "mixture": mixture, **fields}
    with pytest.raises(ConfigError, match=message):
        validate(SFTArgs(**values))


def test_a_bad_line_is_named_and_nothing_reaches_the_registry(tmp_path, tiny_model, files):
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "ok", "output": "fine"}\n{"instruction": "no output"}\n')
    registry = AdapterRegistry(tmp_path / "adapters")
    mixture = [*_mix(*files), {"path": str(bad), "weight": 1, "task": "bad"}]
    args = validate(SFTArgs(name="x", mixture=mixture, base_model=tiny_model, max_steps=1))
    with pytest.raises(DatasetError, match=rf"{re.escape(str(bad))}, line 2"):
        train_sft(args, registry, tmp_path / "runs")
    missing = validate(SFTArgs(name="y", dataset="", mixture=_mix(*files), base_model=tiny_model))
    missing.mixture[1]["path"] = str(tmp_path / "gone.jsonl")  # vanished after validation
    with pytest.raises(DatasetError, match="no such file"):
        train_sft(missing, registry, tmp_path / "runs")
    assert registry.list() == [] and not list((tmp_path / "adapters").glob("*"))


def _words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9]+", text.lower())


def test_the_general_set_is_varied_concise_and_holds_no_benchmark_item():
    conversations = load_instructions(GENERAL_INSTRUCTIONS)
    assert 180 <= len(conversations) <= 260
    questions = [c[0]["content"] for c in conversations]
    assert len(set(questions)) == len(questions)
    assert all(len(c[-1]["content"].split()) <= 60 for c in conversations)
    if not BENCHMARKS.is_dir():
        pytest.skip(f"{BENCHMARKS} is absent")
    # Exact after normalisation, or near-exact: a shared run of 8 words (13 is the usual
    # contamination n-gram; our questions are short) or one question inside another.
    n = 8
    bench_texts, bench_grams = set(), set()
    for file in sorted(BENCHMARKS.rglob("*.jsonl")):
        for line in file.read_text(encoding="utf-8").splitlines():
            if line.strip():
                words = _words(json.loads(line)["question"])
                bench_texts.add(" ".join(words))
                bench_grams.update(tuple(words[i : i + n]) for i in range(len(words) - n + 1))
    assert len(bench_texts) > 5000
    joined = "\n".join(bench_texts)
    for question in questions:
        words = _words(question)
        text = " ".join(words)
        assert text not in bench_texts, question
        assert not any(tuple(words[i : i + n]) in bench_grams for i in range(len(words) - n + 1)), (
            question
        )
        if len(words) >= 6:
            assert f" {text} " not in f" {joined.replace(chr(10), ' ')} ", question


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RAGTUNE_ADAPTERS_DIR", raising=False)
    return tmp_path


def test_cli_mix_and_replay_then_show(cli_env, tiny_model, files):
    from typer.testing import CliRunner

    from app.cli.main import cli

    runner = CliRunner()
    base = ["train", "sft", "--config", str(REPO / "configs/train/sft_multitask.yaml")]
    base += ["--set", f"base_model={tiny_model}", "--set", "forgetting_check=false"]
    a, b = files
    mixed = [*base, "--name", "cli-mix", "--mix", f"{a}:3:alpha", "--mix", f"{b}:1:beta"]
    result = runner.invoke(cli, [*mixed, "--replay", "0.2", "--max-steps", "1"])
    assert result.exit_code == 0, result.output
    assert "mixture:" in result.stdout and "alpha" in result.stdout and "replay" in result.stdout
    shown = runner.invoke(cli, ["adapters", "show", "cli-mix"])
    assert shown.exit_code == 0, shown.output
    table = shown.stdout.split("mixture:")[1]
    assert "alpha" in table and "beta" in table and "(weight: the replay share" in table
    assert "ragtune-qa" not in shown.stdout  # --mix replaced the config's mixture

    for extra, message in [
        (["--mix", f"{a}:3"], "--mix expects PATH:WEIGHT:TASK"),
        (["--mix", f"{a}:0:alpha"], "mixture[0].weight=0.0 must be a number > 0"),
        (["--mix", f"{a}:1:x", "--mix", f"{b}:1:x"], "mixture[1].task='x' is a duplicate"),
        (["--mix", f"{a}:1:x", "--dataset", str(b)], "leave out --dataset"),
        (["--replay", "0.95"], "replay=0.95 is outside the allowed range 0.0..0.9"),
    ]:
        result = runner.invoke(cli, [*base, "--name", "bad", *extra])
        assert result.exit_code == 2 and message in result.output, result.output
    assert not (cli_env / "data/adapters/bad").exists()
