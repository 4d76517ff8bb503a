"""Integration: the official openai client against the real stack's API (vLLM +
Chroma behind it)."""

from __future__ import annotations

import json
import re
import time

import httpx
import pytest

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "How do I ingest a folder of documents?"}]


def test_openai_client_chats_with_base_an_adapter_and_rag_streaming_and_not(client, adapter):
    models = {m.id for m in client.models.list().data}
    assert {"base", adapter, "rag:docs"} <= models
    for model in ("base", adapter, "rag:docs", f"rag:docs+{adapter}"):
        reply = client.chat.completions.create(
            model=model, messages=QUESTION, max_tokens=40, temperature=0
        )
        assert reply.choices[0].message.content.strip(), model
        assert reply.usage.completion_tokens > 0
        chunks = list(
            client.chat.completions.create(
                model=model, messages=QUESTION, max_tokens=40, temperature=0, stream=True
            )
        )
        streamed = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        # the engine's finish_reason: length when the 40 tokens ran out first
        assert streamed.strip() and chunks[-1].choices[0].finish_reason in ("stop", "length"), model
        if model.startswith("rag:"):
            sources = [s["source"] for s in reply.model_extra["sources"]]
            assert any(s.endswith("docs/ingestion.md") for s in sources), sources
            assert chunks[0].model_extra["sources"] == reply.model_extra["sources"]


def _engine_metric(engine_url: str, name: str, label: str = "") -> float:
    """Sum of one vLLM Prometheus series (optionally only samples whose labels
    contain ``label``)."""
    text = httpx.get(engine_url.removesuffix("/v1") + "/metrics", timeout=10).text
    values = re.findall(rf"^{re.escape(name)}\{{([^}}]*)\}} ([0-9.e+]+)", text, re.MULTILINE)
    return sum(float(v) for labels, v in values if label in labels)


def test_a_client_that_disconnects_has_its_generation_aborted_in_vllm(stack):
    tokens_before = _engine_metric(stack.engine_url, "vllm:generation_tokens_total")
    body = {
        "model": "base",
        "stream": True,
        "max_tokens": 3000,
        "ignore_eos": True,
        "min_tokens": 3000,
        "messages": [
            {"role": "user", "content": "Write a very long story about a lighthouse keeper."}
        ],
    }
    with httpx.stream(
        "POST", f"{stack.app_url}/v1/chat/completions", json=body, timeout=120
    ) as response:
        assert response.status_code == 200
        received = 0
        for line in response.iter_lines():
            if line.startswith("data: {") and json.loads(line[6:]).get("choices", [{}])[0].get(
                "delta", {}
            ).get("content"):
                received += 1
            if received >= 3:
                break
    # The client left after three tokens. Unaborted, 3000 tokens (EOS ignored) take minutes here.
    time.sleep(12)  # vLLM refreshes these gauges with its periodic stats
    deadline = time.monotonic() + 60
    while (
        time.monotonic() < deadline
        and _engine_metric(stack.engine_url, "vllm:num_requests_running") > 0
    ):
        time.sleep(1)
    assert _engine_metric(stack.engine_url, "vllm:num_requests_running") == 0, (
        "vLLM is still generating"
    )
    generated = _engine_metric(stack.engine_url, "vllm:generation_tokens_total") - tokens_before
    assert 3 <= generated < 1500, generated


def test_health_checks_engine_and_store_and_metrics_count_requests(stack):
    health = httpx.get(f"{stack.app_url}/healthz", timeout=10)
    assert health.status_code == 200 and health.json() == {
        "status": "ok",
        "generator": True,
        "vector_store": True,
    }
    metrics = httpx.get(f"{stack.app_url}/metrics", timeout=10).text
    assert 'ragtune_requests_total{path="/v1/chat/completions",status="200"}' in metrics
    assert (
        "ragtune_time_to_first_token_seconds_bucket" in metrics and "ragtune_queue_depth" in metrics
    )
