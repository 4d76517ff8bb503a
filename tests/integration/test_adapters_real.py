"""Integration: adapters trained on the real default model, served without a restart."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration

TRAIN = [
    "--max-steps",
    "6",
    "--set",
    "forgetting_check=false",
    "--set",
    "batch_size=4",
    "--overwrite",
    "--json",
]


@pytest.fixture(scope="module")
def lora(stack):
    result = stack.ragtune(
        "train",
        "sft",
        "--config",
        "configs/train/sft_lora.yaml",
        "--name",
        "it-lora",
        "--set",
        "learning_rate=0.003",
        *TRAIN,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout)


def test_lora_is_hot_loaded_into_the_running_server_and_changes_answers(stack, lora):
    assert lora["kind"] == "lora" and lora["metrics"]["max_weight_change"] > 0
    loaded = stack.ragtune("adapters", "load", "it-lora", "--json")
    assert loaded.returncode == 0, loaded.stderr
    result = json.loads(loaded.stdout)
    assert result["served_by"] == "vllm" and result["changed_output"] is True, result
    served = [m["id"] for m in httpx.get(f"{stack.engine_url}/models").json()["data"]]
    assert "it-lora" in served  # the engine that started before the adapter existed serves it


def test_chat_answers_with_the_lora_adapter(stack, lora):
    result = stack.ragtune(
        "ask",
        "What does ragtune ingest do?",
        "--adapter",
        "it-lora",
        "--mode",
        "zero-shot",
        "--json",
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answer"].strip()


def test_prompt_tuned_adapter_answers_through_the_peft_generator(stack):
    trained = stack.ragtune(
        "train",
        "sft",
        "--config",
        "configs/train/sft_prompt.yaml",
        "--name",
        "it-prompt",
        *TRAIN,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert json.loads(trained.stdout)["kind"] == "prompt"
    loaded = json.loads(stack.ragtune("adapters", "load", "it-prompt", "--json").stdout)
    assert loaded["served_by"] == "transformers+peft"
    result = stack.ragtune(
        "ask", "What is ragtune?", "--adapter", "it-prompt", "--mode", "zero-shot", "--json"
    )
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["answer"].strip()


def test_dpo_adapter_from_the_bundled_config_is_served_by_vllm_and_answers_in_chat(stack):
    trained = stack.ragtune(
        "train",
        "dpo",
        "--config",
        "configs/train/dpo_grounded.yaml",
        "--name",
        "it-dpo",
        "--max-steps",
        "2",
        "--set",
        "reward=''",
        "--set",
        "batch_size=4",
        "--overwrite",
        "--json",
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    manifest = json.loads(trained.stdout)
    assert (manifest["kind"], manifest["method"]) == ("lora", "dpo") and manifest["metrics"][
        "max_weight_change"
    ] > 0
    loaded = json.loads(stack.ragtune("adapters", "load", "it-dpo", "--json").stdout)
    assert loaded["served_by"] == "vllm"
    assert "it-dpo" in [m["id"] for m in httpx.get(f"{stack.engine_url}/models").json()["data"]]
    listed = json.loads(stack.ragtune("adapters", "list", "--json").stdout)
    assert any(a["name"] == "it-dpo" and a.get("method") == "dpo" for a in listed), listed
    result = stack.ragtune("ask", "How do I ingest a folder?", "--adapter", "it-dpo", "--json")
    assert result.returncode == 0, result.stderr
    answer = json.loads(result.stdout)
    assert answer["answer"].strip() and answer["sources"]
