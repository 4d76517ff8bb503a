"""Integration: the methods of issue 18 (adapter layers, P-tuning, BitFit, LayerNorm-only,
top-N blocks), each trained from its bundled config on the real default model, answer in
chat (``ragtune ask``) and through the OpenAI-compatible API, served by transformers + peft."""

from __future__ import annotations

import json

import httpx
import pytest

pytestmark = pytest.mark.integration

METHODS = ("bottleneck", "ptuning", "bitfit", "layernorm", "top-blocks")
TRAIN = ["--max-steps", "4", "--set", "forgetting_check=false", "--overwrite", "--json"]


@pytest.mark.parametrize("method", METHODS)
def test_a_new_method_trains_from_its_config_and_answers_in_chat_and_the_api(stack, method):
    name = f"it-{method}"
    trained = stack.ragtune(
        "train",
        "sft",
        "--config",
        f"configs/train/sft_{method}.yaml",
        "--name",
        name,
        *TRAIN,
        timeout=900,
    )
    assert trained.returncode == 0, trained.stderr[-3000:]
    manifest = json.loads(trained.stdout)
    assert manifest["kind"] == method and manifest["metrics"]["max_weight_change"] > 0
    assert 0 < manifest["trainable_parameters"] < manifest["total_parameters"]
    loaded = json.loads(stack.ragtune("adapters", "load", name, "--json").stdout)
    assert loaded["served_by"] == "transformers+peft"

    asked = stack.ragtune(
        "ask", "What is ragtune?", "--adapter", name, "--mode", "zero-shot", "--json"
    )
    assert asked.returncode == 0, asked.stderr[-3000:]
    assert json.loads(asked.stdout)["answer"].strip()

    reply = httpx.post(
        f"{stack.app_url}/v1/chat/completions",
        json={
            "model": name,
            "messages": [{"role": "user", "content": "What is ragtune?"}],
            "max_tokens": 16,
            "temperature": 0,
        },
        timeout=300,
    )
    assert reply.status_code == 200, reply.text
    assert reply.json()["choices"][0]["message"]["content"].strip()
