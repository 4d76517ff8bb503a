"""Forgetting on benchmarks: paired deltas, the manifest, the base cache, bad input, the CLI."""

from __future__ import annotations

import json

import pytest
from scipy.stats import binomtest
from typer.testing import CliRunner

from evals.benchmarks import forgetting as bf
from evals.benchmarks.tasks import BenchmarkError
from evals.stats import bootstrap_ci
from tests.conftest import REPO
from training.registry import AdapterRegistry, Manifest, RegistryError


def _write(path, rows):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n")


@pytest.fixture
def bench_dir(tmp_path):
    """Tiny ARC-Easy and HellaSwag files in the bundled families' layout."""
    folder = tmp_path / "bench"
    arc = [
        {"question": f"What is {i} plus one?", "choices": [str(i + 1), str(i + 7)], "answer": 0}
        for i in range(6)
    ]
    _write(folder / "arc_easy/test.jsonl", arc)
    hella = [
        {
            "question": "A man is cooking. He",
            "choices": ["stirs the pot.", "flies away.", "reads a map."],
            "answer": i % 3,
            "subject": "Cooking",
        }
        for i in range(4)
    ]
    _write(folder / "hellaswag/validation.jsonl", hella)
    return folder


def _add(registry, name, *, base, kind="lora"):
    staging = registry.staging(name)
    if kind == "lora":
        import torch
        from peft import LoraConfig, get_peft_model
        from transformers import AutoModelForCausalLM

        torch.manual_seed(1)
        model = AutoModelForCausalLM.from_pretrained(base)
        config = LoraConfig(task_type="CAUSAL_LM", r=4, init_lora_weights=False)
        get_peft_model(model, config).save_pretrained(staging)
    registry.commit(staging, Manifest(name=name, kind=kind, method=kind, base_model=base))


@pytest.fixture
def registry(tmp_path, tiny_model):
    registry = AdapterRegistry(tmp_path / "data/adapters")
    _add(registry, "tuned", base=tiny_model)
    return registry


def test_paired_delta_interval_and_mcnemar_on_hand_made_rows():
    base_acc = [1, 1, 1, 1, 0, 0, 1, 0, 1, 1]
    tuned_acc = [1, 0, 0, 1, 0, 1, 0, 0, 1, 0]
    base = [{"id": f"f:{i}", "acc": a, "acc_norm": 1} for i, a in enumerate(base_acc)]
    tuned = [{"id": f"f:{i}", "acc": a, "acc_norm": 1} for i, a in enumerate(tuned_acc)]
    row = bf.compare(base, tuned, ["acc", "acc_norm"])
    diffs = [t - b for b, t in zip(base_acc, tuned_acc)]
    assert row["n"] == 10
    acc = row["acc"]
    assert (acc["base"], acc["tuned"], acc["delta"]) == (0.7, 0.4, -0.3)
    assert acc["delta_ci95"] == [round(v, 4) for v in bootstrap_ci(diffs)]
    assert acc["delta_ci95"][0] < -0.3 < acc["delta_ci95"][1]
    assert (acc["base_right_tuned_wrong"], acc["base_wrong_tuned_right"]) == (4, 1)
    assert acc["p"] == round(binomtest(1, 5, 0.5).pvalue, 4) == 0.375
    assert row["acc_norm"]["delta"] == 0 and row["acc_norm"]["p"] == 1.0
    with pytest.raises(BenchmarkError, match="not the same items"):
        bf.compare(base, tuned[::-1], ["acc"])


def _check(registry, tiny_model, bench_dir, cache_dir, **options):
    options = {"tasks": "arc_easy,hellaswag", "limit": 5, **options}
    return bf.benchmark_forgetting(
        tiny_model,
        registry=registry,
        adapter="tuned",
        bench_dir=bench_dir,
        cache_dir=cache_dir,
        **options,
    )


def test_manifest_is_updated_and_the_base_is_scored_once(
    monkeypatch, registry, tiny_model, bench_dir, tmp_path
):
    loaded = []
    real = bf.load_scoring_model
    monkeypatch.setattr(
        bf, "load_scoring_model", lambda *a, **k: loaded.append(k["adapter"]) or real(*a, **k)
    )
    revision = registry.revision("tuned")
    totals = []
    first = _check(registry, tiny_model, bench_dir, tmp_path / "cache", on_total=totals.append)
    assert loaded == [None, "tuned"] and first["config"]["base_from_cache"] == []
    assert totals == [2 * (5 * 2 + 4 * 3)]  # base and tuned: 5 ARC items x 2, 4 HellaSwag x 3
    arc = first["results"]["arc_easy"]
    assert arc["n"] == 5 and arc["num_fewshot"] == 0
    assert set(arc["acc"]) >= {"base", "tuned", "delta", "delta_ci95", "p"}
    assert arc["acc"]["delta"] == pytest.approx(arc["acc"]["tuned"] - arc["acc"]["base"], abs=1e-3)
    assert first["results"]["hellaswag"]["n"] == 4
    assert first["config"]["files_sha256"]["arc_easy"]["arc_easy/test.jsonl"]
    assert "McNemar" in first["method"] and first["config"]["adapter_kind"] == "lora"
    stored = registry.get("tuned").metrics["benchmark_forgetting"]
    assert stored == json.loads(json.dumps(first))
    assert registry.revision("tuned") == revision  # the weights were not committed again

    loaded.clear()
    second = _check(registry, tiny_model, bench_dir, tmp_path / "cache")
    assert loaded == ["tuned"]
    assert second["config"]["base_from_cache"] == ["arc_easy", "hellaswag"]
    for family, row in second["results"].items():  # the same numbers, a later time
        assert {**row, "checked": None} == {**first["results"][family], "checked": None}

    loaded.clear()  # another limit is another key: the base is scored again
    third = _check(registry, tiny_model, bench_dir, tmp_path / "cache", tasks="arc_easy", limit=3)
    assert loaded == [None, "tuned"] and list(third["results"]) == ["arc_easy"]
    stored = registry.get("tuned").metrics["benchmark_forgetting"]["results"]
    assert (stored["arc_easy"]["n"], stored["arc_easy"]["limit"]) == (3, 3)
    assert stored["hellaswag"] == second["results"]["hellaswag"]  # kept from the earlier check


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"tasks": "arc_easy,mmlu_pro"}, BenchmarkError, "unknown benchmark task 'mmlu_pro'"),
        ({"limit": 0}, BenchmarkError, "must be 1 or more, not 0"),
        ({"bench_dir": "missing"}, BenchmarkError, "benchmarks folder .*missing not found"),
        (
            {"bench_dir": "malformed"},
            BenchmarkError,
            r"malformed benchmark line: .*arc_easy/test.jsonl, line 7: not valid JSON",
        ),
        ({"tasks": "mmlu"}, BenchmarkError, "benchmark data file not found"),
        ({"adapter": "sst2-clf"}, BenchmarkError, "scoring-only adapter: 'sst2-clf' is a class"),
        ({"adapter": "qwen-lora"}, BenchmarkError, "'qwen-lora' was trained on '/m/Qwen2-0.5B'"),
        ({"adapter": "nobody"}, RegistryError, "unknown adapter 'nobody'"),
    ],
)
def test_bad_input_loads_no_model_and_writes_nothing(
    monkeypatch, registry, tiny_model, bench_dir, tmp_path, options, error, message
):
    _add(registry, "sst2-clf", base=tiny_model, kind="classifier")
    _add(registry, "qwen-lora", base="/m/Qwen2-0.5B", kind="ia3")
    monkeypatch.setattr(bf, "load_scoring_model", lambda *a, **k: pytest.fail("loaded a model"))
    before = {m.name: m.to_dict() for m in registry.list()}
    options = {"tasks": "arc_easy", "limit": 2, "adapter": "tuned", **options}
    if options.get("bench_dir") == "missing":
        options["bench_dir"] = tmp_path / "missing"
    if options.get("bench_dir") == "malformed":  # the fixture's 6 ARC lines and a broken one
        import shutil

        options["bench_dir"] = shutil.copytree(bench_dir, tmp_path / "malformed")
        with (options["bench_dir"] / "arc_easy/test.jsonl").open("a") as f:
            f.write('{"question": "broken\n')
    with pytest.raises(error, match=message):
        bf.benchmark_forgetting(
            tiny_model,
            registry=registry,
            cache_dir=tmp_path / "cache",
            **{"bench_dir": bench_dir, **options},
        )
    assert {m.name: m.to_dict() for m in registry.list()} == before
    assert not (tmp_path / "cache").exists()


def test_a_base_folder_that_is_gone_is_named(registry, bench_dir, tmp_path):
    gone = str(tmp_path / "gone/SmolLM2")
    _add(registry, "orphan", base=gone, kind="ia3")
    with pytest.raises(BenchmarkError, match="base model folder .*gone/SmolLM2 of adapter"):
        bf.benchmark_forgetting(
            gone,
            registry=registry,
            adapter="orphan",
            tasks="arc_easy",
            limit=2,
            bench_dir=bench_dir,
        )
    assert "benchmark_forgetting" not in registry.get("orphan").metrics


def test_update_metrics_refuses_an_unknown_adapter(registry):
    with pytest.raises(RegistryError, match="unknown adapter 'nope'"):
        registry.update_metrics("nope", "x", 1)


@pytest.fixture
def cli_env(tmp_path, monkeypatch, registry, bench_dir):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    monkeypatch.setenv("RAGTUNE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("RAGTUNE_ADAPTERS_DIR", raising=False)
    monkeypatch.setenv("RAGTUNE_BENCHMARKS_DIR", str(bench_dir))
    return tmp_path


def test_cli_forgetting_then_show(cli_env, registry):
    from app.cli.main import cli
    from app.ui.adapters_tab import adapter_rows, bench_markdown

    runner = CliRunner()
    base = ["adapters", "forgetting", "tuned", "--tasks", "arc_easy,hellaswag"]
    result = runner.invoke(cli, [*base, "--limit", "4"])
    assert result.exit_code == 0, result.output
    assert "arc_easy" in result.stdout and "acc_norm" in result.stdout and "p=" in result.stdout
    assert "from cache: none" in result.stdout
    assert (cli_env / "data/cache/bench-base").is_dir()
    result = runner.invoke(cli, [*base, "--limit", "4", "--json"])
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout)
    assert summary["config"]["base_from_cache"] == ["arc_easy", "hellaswag"]
    assert summary["results"]["arc_easy"]["n"] == 4

    shown = runner.invoke(cli, ["adapters", "show", "tuned"])
    assert shown.exit_code == 0, shown.output
    assert "forgetting on benchmarks" in shown.stdout and "hellaswag" in shown.stdout
    assert "benchmark_forgetting" not in shown.stdout.split("forgetting on benchmarks")[0]

    markdown = bench_markdown(registry, "tuned")
    assert "| metric | base | tuned | delta [95% CI] | p |" in markdown
    assert "*arc_easy* (first 4 items, 0-shot" in markdown
    assert "arc_easy " in adapter_rows(registry)[0][6]

    for args, message in [
        (["--limit", "0"], "must be 1 or more, not 0"),
        (["--tasks", "nope"], "unknown benchmark task 'nope'"),
    ]:
        result = runner.invoke(cli, ["adapters", "forgetting", "tuned", *args])
        assert result.exit_code == 2 and message in result.output
        assert "choice" not in result.output  # no empty progress bar above the error
    result = runner.invoke(cli, ["adapters", "forgetting", "ghost"])
    assert result.exit_code != 0 and "unknown adapter 'ghost'" in result.output


def test_train_checks_the_benchmark_options_before_training(cli_env, tiny_model):
    from app.cli.main import cli

    runner = CliRunner()
    args = ["train", "sft", "--config", str(REPO / "configs/train/sft_lora.yaml")]
    args += ["--set", f"base_model={tiny_model}"]
    result = runner.invoke(cli, [*args, "--name", "x", "--bench-limit", "5"])
    assert result.exit_code == 2 and "--bench-limit goes with --bench-forgetting" in result.output
    result = runner.invoke(cli, [*args, "--name", "x", "--bench-forgetting", "arc_easy,nope"])
    assert result.exit_code == 2 and "unknown benchmark task 'nope'" in result.output
    assert not (cli_env / "data/adapters/x").exists()
