"""Integration: the real default model in a real vLLM server, real Chroma, real embedder."""

from __future__ import annotations

import json

import httpx
import pytest

from app.generation.base import GenerationParams
from app.generation.vllm_client import VLLMGenerator

pytestmark = pytest.mark.integration

QUESTION = "What does the --prune option of ragtune ingest do?"


def test_ask_answers_and_cites_the_document_holding_the_answer(stack):
    result = stack.ragtune("ask", QUESTION, "--collection", "docs", "--json")
    assert result.returncode == 0, result.stderr
    record = json.loads(result.stdout)
    assert record["answer"].strip()
    assert any(s["source"].endswith("docs/ingestion.md") for s in record["sources"])


def test_ask_file_writes_one_json_record_per_question(stack, tmp_path):
    questions = tmp_path / "questions.jsonl"
    questions.write_text(
        json.dumps({"question": QUESTION})
        + "\n"
        + json.dumps({"question": "Which port does the web app listen on by default?"})
        + "\n"
    )
    result = stack.ragtune("ask", "--file", str(questions), "--collection", "docs", "--json")
    assert result.returncode == 0, result.stderr
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(records) == 2
    for record in records:
        assert set(record) >= {"question", "answer", "sources", "latency_s"}
        assert record["answer"] and record["latency_s"] > 0
        assert set(record["sources"][0]) >= {"source", "page", "score", "text"}


def test_engine_streams_deltas_and_serves_the_base_model(stack):
    generator = VLLMGenerator(stack.engine_url, "base")
    assert generator.health() and "base" in generator.models()
    deltas = list(
        generator.stream(
            [{"role": "user", "content": "Count from one to five."}],
            params=GenerationParams(max_tokens=24, temperature=0),
        )
    )
    assert len(deltas) > 3 and "".join(deltas).strip()


def test_healthz_reports_the_generator(stack):
    assert httpx.get(f"{stack.app_url}/healthz").json() == {
        "status": "ok",
        "generator": True,
        "vector_store": True,
    }
