"""Every training method on a tiny model: weights change, manifests are complete, bad
input is refused."""

from __future__ import annotations

import json

import pytest

from training.classify import load_classifier, train_classifier
from training.config import ClassifyArgs, ConfigError, SFTArgs, load_args, validate
from training.data import DatasetError
from training.registry import AdapterRegistry, RegistryError
from training.sft import train_sft

MANIFEST_FIELDS = (
    "name",
    "kind",
    "method",
    "base_model",
    "dataset",
    "dataset_sha256",
    "hyperparameters",
    "metrics",
    "created",
    "files",
)


@pytest.fixture
def sft_data(tmp_path):
    path = tmp_path / "sft.jsonl"
    lines = [
        json.dumps({"instruction": f"What is {i} plus {i}?", "output": f"It is {2 * i}."})
        for i in range(10)
    ]
    lines.append(
        json.dumps(
            {
                "messages": [
                    {"role": "user", "content": "Hi"},
                    {"role": "assistant", "content": "Hello!"},
                ]
            }
        )
    )
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture
def cls_data(tmp_path):
    path = tmp_path / "cls.tsv"
    rows = ["sentence\tlabel"] + [f"a wonderful film number {i}\t1" for i in range(12)]
    rows += [f"a dreadful film number {i}\t0" for i in range(12)]
    path.write_text("\n".join(rows) + "\n")
    return path


def _sft_args(tiny_model, data, method, **kw):
    return validate(
        SFTArgs(
            name=f"tiny-{method}",
            dataset=str(data),
            base_model=tiny_model,
            method=method,
            max_steps=2,
            batch_size=4,
            logging_steps=1,
            forgetting_check=False,
            **kw,
        )
    )


@pytest.mark.parametrize("method", ["lora", "ia3", "prefix", "prompt", "full"])
def test_each_sft_method_trains_and_lands_in_the_registry(tmp_path, tiny_model, sft_data, method):
    registry = AdapterRegistry(tmp_path / "adapters")
    manifest = train_sft(_sft_args(tiny_model, sft_data, method), registry, tmp_path / "runs")
    assert manifest.metrics["max_weight_change"] > 0
    assert manifest.metrics["steps"] == 2 and manifest.metrics["loss_curve"]
    stored = json.loads((registry.path(f"tiny-{method}") / "manifest.json").read_text())
    assert all(stored[f] for f in MANIFEST_FIELDS), stored
    assert stored["kind"] == method and stored["trainable_parameters"] > 0
    assert "loss.png" in stored["files"]
    assert [m.name for m in registry.list()] == [f"tiny-{method}"]


def test_forgetting_check_records_base_tuned_and_delta(tmp_path, tiny_model, sft_data):
    task = tmp_path / "task.tsv"
    task.write_text("sentence\tlabel\ngreat fun\t1\nawful mess\t0\n")
    args = _sft_args(tiny_model, sft_data, "lora", forgetting_task=str(task))
    args.forgetting_check = True
    manifest = train_sft(args, AdapterRegistry(tmp_path / "a"), tmp_path / "runs")
    forgetting = manifest.metrics["forgetting"]
    assert set(forgetting["base"]) == {"perplexity", "sst2_zero_shot", "sst2_few_shot"}
    assert forgetting["base"]["perplexity"] > 1 and forgetting["task_rows"] == 2
    assert forgetting["delta"]["perplexity"] == pytest.approx(
        forgetting["tuned"]["perplexity"] - forgetting["base"]["perplexity"], abs=1e-3
    )


@pytest.mark.parametrize("method", ["features", "head", "lora", "full"])
def test_each_classifier_method_trains_and_predicts(tmp_path, tiny_model, cls_data, method):
    from indexing.embedding import resolve_embedder

    registry = AdapterRegistry(tmp_path / "adapters")
    args = validate(
        ClassifyArgs(
            name=f"cls-{method}",
            dataset=str(cls_data),
            base_model=tiny_model,
            method=method,
            max_steps=3,
            batch_size=8,
            eval_file=str(cls_data),
            test_file=str(cls_data),
            logging_steps=1,
        )
    )
    manifest = train_classifier(
        args, registry, tmp_path / "runs", embedder_path=resolve_embedder("default")
    )
    assert manifest.kind == "classifier" and 0 <= manifest.metrics["test"]["accuracy"] <= 1
    if method != "features":
        assert manifest.metrics["max_weight_change"] > 0
    else:
        assert manifest.metrics["test"]["accuracy"] > 0.9  # MiniLM separates these easily
    predict = load_classifier(registry.get(f"cls-{method}"), registry.path(f"cls-{method}"))
    labels = predict(["a wonderful film", "a dreadful film"])
    assert all(label in {"0", "1"} and 0 <= p <= 1 for label, p in labels)


def test_bad_inputs_leave_the_registry_unchanged(tmp_path, tiny_model, sft_data, cls_data):
    registry = AdapterRegistry(tmp_path / "adapters")
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"instruction": "a", "output": "b"}\n{"instruction": "no output"}\n')
    with pytest.raises(DatasetError, match="line 2"):
        train_sft(_sft_args(tiny_model, bad, "lora"), registry, tmp_path / "runs")
    no_label = tmp_path / "nolabel.tsv"
    no_label.write_text("sentence\tstars\ngood\t5\n")
    with pytest.raises(DatasetError, match="no 'label' column"):
        train_classifier(
            validate(ClassifyArgs(name="x", dataset=str(no_label), base_model=tiny_model)),
            registry,
            tmp_path / "runs",
        )
    with pytest.raises(ConfigError, match="method='dance' is not one of"):
        load_args(SFTArgs, None, {"name": "x", "dataset": str(sft_data), "method": "dance"})
    with pytest.raises(ConfigError, match=r"lora_r=0 is outside the allowed range 1\.\.256"):
        load_args(SFTArgs, None, {"name": "x", "dataset": str(sft_data), "lora_r": 0})
    train_sft(_sft_args(tiny_model, sft_data, "lora"), registry, tmp_path / "runs")
    before = (registry.path("tiny-lora") / "manifest.json").read_text()
    with pytest.raises(RegistryError, match="already exists; pass --overwrite"):
        train_sft(_sft_args(tiny_model, sft_data, "lora"), registry, tmp_path / "runs")
    assert (registry.path("tiny-lora") / "manifest.json").read_text() == before
    assert [m.name for m in registry.list()] == ["tiny-lora"]


def test_differing_label_sets_are_a_dataset_error(tmp_path, tiny_model, cls_data):
    other = tmp_path / "other.tsv"
    other.write_text("sentence\tlabel\ngood\tpositive\nbad\tnegative\n")
    args = ClassifyArgs(
        name="x", dataset=str(cls_data), eval_file=str(other), base_model=tiny_model
    )
    with pytest.raises(DatasetError, match="label sets differ"):
        train_classifier(validate(args), AdapterRegistry(tmp_path / "a"), tmp_path / "runs")


def test_registry_refuses_paths_and_escaping_symlinks(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    for name in ("../evil", "a/b", "/abs", "..", ""):
        with pytest.raises(RegistryError):
            registry.path(name)
    registry.root.mkdir()
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "manifest.json").write_text("{}")
    (registry.root / "sneaky").symlink_to(outside)
    with pytest.raises(RegistryError, match="outside the registry"):
        registry.get("sneaky")
    assert registry.list() == []


def test_adapter_with_another_base_is_refused_at_load(tmp_path, monkeypatch):
    from app.adapters import AdapterError, AdapterService
    from app.generation.peft_backend import PeftGenerator
    from app.generation.vllm_client import VLLMGenerator
    from training.registry import Manifest

    registry = AdapterRegistry(tmp_path / "adapters")
    staging = registry.staging("other-base")
    registry.commit(
        staging, Manifest(name="other-base", kind="lora", method="lora", base_model="/m/Qwen2-0.5B")
    )
    service = AdapterService(
        registry, VLLMGenerator("http://127.0.0.1:9/v1", "base"), PeftGenerator(registry)
    )
    monkeypatch.setattr(service, "server_model", lambda: "/models/SmolLM2-135M-Instruct")
    with pytest.raises(
        AdapterError, match="trained on 'Qwen2-0.5B' but the server runs 'SmolLM2-135M-Instruct'"
    ):
        service.load("other-base")
    with pytest.raises(AdapterError, match="unknown adapter 'ghost'"):
        service.load("ghost")


def test_a_merged_lora_computes_what_base_plus_adapter_computes(tmp_path, tiny_model, sft_data):
    import torch
    from peft import PeftModel
    from transformers import AutoModelForCausalLM

    from training.merge import MANIFEST, merge_adapter

    registry = AdapterRegistry(tmp_path / "adapters")
    train_sft(
        _sft_args(tiny_model, sft_data, "lora", learning_rate=0.05), registry, tmp_path / "runs"
    )
    folder = merge_adapter(registry, "tiny-lora", tmp_path / "merged")
    assert json.loads((folder / MANIFEST).read_text())["adapter"] == "tiny-lora"
    ids = torch.tensor([[1, 5, 9, 13, 2]])
    with torch.no_grad():
        adapted = PeftModel.from_pretrained(
            AutoModelForCausalLM.from_pretrained(tiny_model), registry.path("tiny-lora")
        )
        merged = AutoModelForCausalLM.from_pretrained(folder)
        base = AutoModelForCausalLM.from_pretrained(tiny_model)
        assert torch.allclose(merged(ids).logits, adapted(ids).logits, atol=1e-4)
        assert not torch.allclose(merged(ids).logits, base(ids).logits, atol=1e-4)
    with pytest.raises(RegistryError, match="already exists"):
        merge_adapter(registry, "tiny-lora", folder)
    train_sft(_sft_args(tiny_model, sft_data, "ia3"), registry, tmp_path / "runs")
    with pytest.raises(RegistryError, match="only LoRA"):
        merge_adapter(registry, "tiny-ia3", tmp_path / "merged-ia3")


@pytest.mark.parametrize("interruption", [RuntimeError("boom"), KeyboardInterrupt()])
def test_a_failed_run_removes_its_staging_and_keeps_its_run_folder(
    tmp_path, sft_data, interruption
):
    from training.registry import Manifest
    from training.run import TrainingRun

    registry = AdapterRegistry(tmp_path / "adapters")
    registry.commit(
        registry.staging("taken"),
        Manifest(name="taken", kind="lora", method="lora", base_model="b"),
    )
    before = (registry.path("taken") / "manifest.json").read_text()
    args = SFTArgs(name="taken", dataset=str(sft_data), overwrite=True)
    with pytest.raises(type(interruption)), TrainingRun(args, registry, tmp_path / "runs") as run:
        run.start_log().add(1, 2, {"loss": 1.0})
        (run.staging / "adapter_model.safetensors").write_text("half")
        raise interruption
    assert not (registry.root / ".staging" / "taken").exists()
    assert (registry.path("taken") / "manifest.json").read_text() == before
    assert (tmp_path / "runs" / "taken" / "log.jsonl").exists()  # kept for --resume


def test_a_run_starts_a_fresh_folder_unless_resuming(tmp_path, sft_data):
    from training.run import TrainingRun

    registry = AdapterRegistry(tmp_path / "adapters")
    args = SFTArgs(name="r", dataset=str(sft_data))
    with TrainingRun(args, registry, tmp_path / "runs") as run:
        run.start_log().add(1, 1, {"loss": 2.0})
        run.checkpoints.mkdir()
    with TrainingRun(args, registry, tmp_path / "runs") as run:
        assert len(run.start_log(resume=True).path.read_text().splitlines()) == 1
        assert run.checkpoints.exists()
        run.start_log()
        assert not run.folder.joinpath("log.jsonl").exists() and not run.checkpoints.exists()
