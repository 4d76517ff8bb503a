"""Offline benchmarks: task files, batched log-likelihoods, acc / acc_norm, bad input, CLI."""

from __future__ import annotations

import json
import shutil

import pytest
from typer.testing import CliRunner

from evals.benchmarks import runner as bench_runner
from evals.benchmarks.models import load_scoring_model
from evals.benchmarks.runner import prepare, run_benchmarks, table
from evals.benchmarks.scoring import loglikelihoods
from evals.benchmarks.tasks import BenchmarkError, known_tasks, load_task, parse_tasks
from tests.conftest import REPO

DATA = (REPO / "../shared/data/benchmarks").resolve()
FAMILIES = ["arc_challenge", "arc_easy", "bbh", "bigbench", "boolq", "hellaswag", "mmlu"]
FAMILIES += ["truthfulqa_mc1"]


def test_every_family_reads_its_files_in_place():
    assert known_tasks() == FAMILIES
    sizes = {name: len(prepare(load_task(name), DATA).items) for name in FAMILIES}
    assert sizes == {
        "arc_challenge": 1172,
        "arc_easy": 2376,
        "bbh": 937,
        "bigbench": 717,
        "boolq": 1000,
        "hellaswag": 1000,
        "mmlu": 1140,
        "truthfulqa_mc1": 817,
    }


def test_mmlu_takes_five_shots_from_the_subjects_dev_rows():
    task = prepare(load_task("mmlu"), DATA, limit=30)
    item, shots = task.items[25], task.shots[25]
    assert item.subject == "anatomy" and len(shots) == 5
    assert {s.subject for s in shots} == {"anatomy"} and shots[0].where == "mmlu/dev.jsonl:6"
    context, continuation = task.spec.requests(item, shots)[1]
    assert context.startswith("The following are multiple choice questions (with answers) about ")
    assert context.count("\nAnswer:") == 6 and context.endswith("\nAnswer:")
    assert continuation == " B" and task.files["mmlu/dev.jsonl"]


@pytest.fixture(scope="module")
def model(tiny_model):
    loaded, tokenizer, _ = load_scoring_model(tiny_model)
    return loaded, tokenizer


def _reference(model, tokenizer, context, continuation):
    """One request at a time, full logits (lm-eval's algorithm, unbatched)."""
    import torch

    spaces = len(context) - len(context.rstrip())
    if spaces:
        context, continuation = context[:-spaces], context[-spaces:] + continuation
    ctx = tokenizer.encode(context)
    cont = tokenizer.encode(context + continuation)[len(ctx) :]
    inp = (ctx + cont)[:-1]
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([inp])).logits[0, -len(inp) :]
    logp = torch.log_softmax(logits.float(), -1)[len(inp) - len(cont) :]
    return float(logp.gather(1, torch.tensor(cont)[:, None]).sum())


REQUESTS = [
    ("Question: What colour is the sky?\nAnswer:", " blue"),
    ("Question: What colour is the sky?\nAnswer:", " green and grey"),
    ("A much longer context that goes on and on about many things. " * 5, "and then"),
    ("Trailing space ", "moves into the continuation"),
    ("Q: 2+2?\nA:", " A"),
    ("Q: 2+2?\nA:", " B"),
]


@pytest.mark.parametrize("batch_size", [1, 3, 16])
def test_batched_scores_equal_one_at_a_time(model, batch_size):
    loaded, tokenizer = model
    expected = [_reference(loaded, tokenizer, c, x) for c, x in REQUESTS]
    got = loglikelihoods(loaded, tokenizer, REQUESTS, batch_size=batch_size)
    assert got == pytest.approx(expected, abs=1e-4)


@pytest.mark.parametrize("kind", ["lora", "prompt", "prefix"])
def test_peft_models_score_like_their_own_forward(tiny_model, kind):
    import torch
    from peft import LoraConfig, PrefixTuningConfig, PromptTuningConfig, get_peft_model

    loaded, tokenizer, _ = load_scoring_model(tiny_model)
    config = {
        "lora": LoraConfig(task_type="CAUSAL_LM", r=4, init_lora_weights=False),
        "prompt": PromptTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
        "prefix": PrefixTuningConfig(task_type="CAUSAL_LM", num_virtual_tokens=4),
    }[kind]
    torch.manual_seed(0)
    peft_model = get_peft_model(loaded, config).eval()
    expected = [_reference(peft_model, tokenizer, c, x) for c, x in REQUESTS]
    got = loglikelihoods(peft_model, tokenizer, REQUESTS, batch_size=4)
    assert got == pytest.approx(expected, abs=1e-4)


def test_acc_takes_the_first_best_and_acc_norm_divides_by_characters(monkeypatch, tmp_path):
    (tmp_path / "arc_easy").mkdir()
    rows = [
        {"question": "q1", "choices": ["a", "bbbb"], "answer": 1},  # acc 0, acc_norm 1
        {"question": "q2", "choices": ["cc", "dd"], "answer": 0},  # a tie goes to index 0
    ]
    (tmp_path / "arc_easy/test.jsonl").write_text("\n".join(json.dumps(r) for r in rows))
    monkeypatch.setattr(bench_runner, "loglikelihoods", lambda *a, **k: [-2.0, -4.0, -1.0, -1.0])
    task = prepare(load_task("arc_easy"), tmp_path)
    result = run_benchmarks([task], None, None, describe={"model": "m"})
    row = result["results"]["arc_easy"]
    assert (row["acc"], row["acc_norm"], row["n"]) == (0.5, 1.0, 2)
    assert row["acc_stderr"] == pytest.approx(0.5) and len(row["acc_ci95"]) == 2
    assert result["samples"]["arc_easy"][0] == {
        "id": "arc_easy/test.jsonl:1",
        "group": "",
        "gold": 1,
        "loglik": [-2.0, -4.0],
        "acc": 0,
        "acc_norm": 1,
    }
    assert result["tasks"]["arc_easy"]["files_sha256"]["arc_easy/test.jsonl"]
    assert "acc_norm" in result["metrics"] and "arc_easy" in table(result)


def test_unknown_task_lists_the_known_ones():
    with pytest.raises(BenchmarkError, match="unknown benchmark task 'mmlu_pro'; known: arc_"):
        parse_tasks("mmlu,mmlu_pro")


def test_a_malformed_line_is_named_and_the_rest_kept(tmp_path):
    (tmp_path / "boolq").mkdir()
    good = json.dumps({"question": "p\nQuestion: is it?", "choices": ["no", "yes"], "answer": 1})
    lines = [good, "{not json", json.dumps({"question": "x", "choices": ["a"], "answer": 0})]
    lines += [json.dumps({"question": "y", "choices": ["no", "yes"], "answer": 2}), good]
    (tmp_path / "boolq/validation.jsonl").write_text("\n".join(lines) + "\n")
    task = prepare(load_task("boolq"), tmp_path)
    assert len(task.items) == 2
    assert [p.split(": ", 1)[0].rsplit(", ", 1)[1] for p in task.problems] == [
        "line 2",
        "line 3",
        "line 4",
    ]
    assert "not valid JSON" in task.problems[0] and "'answer'" in task.problems[2]
    assert str(tmp_path / "boolq/validation.jsonl") in task.problems[0]


def test_more_shots_than_the_dev_split_is_refused():
    with pytest.raises(BenchmarkError, match="--shots 6 is more than the 5 few-shot examples"):
        prepare(load_task("mmlu"), DATA, shots=6, limit=1)
    assert prepare(load_task("truthfulqa_mc1"), DATA, shots=6, limit=1).num_fewshot == 0


def test_an_adapter_trained_on_another_base_is_refused(tmp_path, tiny_model):
    from training.registry import AdapterRegistry, Manifest

    registry = AdapterRegistry(tmp_path / "adapters")
    registry.commit(
        registry.staging("other"),
        Manifest(name="other", kind="lora", method="lora", base_model="/m/Qwen2-0.5B"),
    )
    with pytest.raises(BenchmarkError, match="'other' was trained on '/m/Qwen2-0.5B'"):
        load_scoring_model(tiny_model, registry=registry, adapter="other")


def test_a_model_that_cannot_load_is_named(tmp_path):
    with pytest.raises(BenchmarkError, match="model folder .*/gone not found"):
        load_scoring_model(str(tmp_path / "gone"))
    with pytest.raises(BenchmarkError, match="cannot load model .*empty.*config.json"):
        load_scoring_model(str((tmp_path / "empty").mkdir() or tmp_path / "empty"))


@pytest.fixture
def cli_env(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("RAGTUNE_BENCHMARKS_DIR", str(tmp_path / "bench"))
    shutil.copytree(DATA / "arc_easy", tmp_path / "bench/arc_easy")
    return tmp_path


def test_cli_scores_a_model_and_reports_bad_input(cli_env, tiny_model):
    from app.cli.main import cli

    runner = CliRunner()
    args = ["eval", "bench", "--tasks", "arc_easy", "--model", tiny_model, "--limit", "3"]
    result = runner.invoke(cli, [*args, "--json", "-o", str(cli_env / "out.json")])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["results"]["arc_easy"]["n"] == 3 and summary["config"]["limit"] == 3
    assert summary["config"]["benchmarks_dir"] == str(cli_env / "bench")
    assert len(json.loads((cli_env / "out.json").read_text())["samples"]["arc_easy"]) == 3
    result = runner.invoke(cli, ["eval", "bench", "--tasks", "arc_easy,nope"])
    assert result.exit_code == 2 and "unknown benchmark task 'nope'" in result.output
    result = runner.invoke(cli, ["eval", "bench", "--tasks", "mmlu"])
    assert result.exit_code == 2 and "benchmark data file not found" in result.output
