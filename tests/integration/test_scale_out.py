"""Integration: the scale-out path by configuration alone.

A second app instance is started with ``generator.url`` pointing at the stack's running vLLM
server (as it would at a GPU box) and ``vector_store.mode: http`` pointing at a real
``chroma run`` server. It must start no engine of its own, ingest over the API into the
shared store, answer RAG questions with sources, and hot-load a LoRA adapter into the
remote engine through the same runtime API.
"""

from __future__ import annotations

import httpx
import openai
import pytest

from tests.conftest import REPO
from tests.integration.conftest import Stack, free_port

pytestmark = pytest.mark.integration

QUESTION = [{"role": "user", "content": "How do I ingest a folder of documents?"}]


@pytest.fixture
def remote_app(stack, adapter, chroma_server, tmp_path):
    """`ragtune serve` on its own data folder, using the stack's engine and a Chroma server."""
    host, port = chroma_server
    app_port = free_port()
    env = {
        **stack.env,
        "RAGTUNE_DATA_DIR": str(tmp_path / "data"),
        "RAGTUNE_ADAPTERS_DIR": str(stack.data_dir / "adapters"),  # a shared adapters volume
        "RAGTUNE_GENERATOR__URL": stack.engine_url,
        "RAGTUNE_GENERATOR__PORT": str(free_port()),  # nothing may start there
        "RAGTUNE_VECTOR_STORE__MODE": "http",
        "RAGTUNE_VECTOR_STORE__HOST": host,
        "RAGTUNE_VECTOR_STORE__PORT": str(port),
        "RAGTUNE_UI__PORT": str(app_port),
    }
    (tmp_path / "data").mkdir()
    remote = Stack(env, f"http://127.0.0.1:{app_port}", stack.engine_url, tmp_path / "data")
    remote.start(timeout_s=180)
    try:
        health = httpx.get(f"{remote.app_url}/healthz", timeout=10).json()
        assert health == {"status": "ok", "generator": True, "vector_store": True}, health
        yield remote.app_url, env, remote.serve_log
    finally:
        remote.stop()


def test_an_app_on_a_remote_engine_and_a_chroma_server_ingests_answers_and_loads_adapters(
    remote_app, stack, adapter
):
    url, env, log_path = remote_app
    log = log_path.read_text()
    assert f"using the generator at {stack.engine_url}" in log and "starting vLLM" not in log

    document = REPO / "docs" / "ingestion.md"
    upload = httpx.post(
        f"{url}/v1/ingest",
        data={"collection": "shared"},
        timeout=300,
        files=[("files", (document.name, document.read_bytes(), "text/markdown"))],
    )
    assert upload.status_code == 200 and upload.json()["files"][0]["status"] == "added", upload.text

    import chromadb

    shared = chromadb.HttpClient(
        host=env["RAGTUNE_VECTOR_STORE__HOST"], port=int(env["RAGTUNE_VECTOR_STORE__PORT"])
    )
    assert shared.get_collection("shared").count() > 0  # the chunks live in the Chroma server

    # Start from an engine without the adapter, so this app has to load it (the stack reloads on
    # demand).
    httpx.post(f"{stack.engine_url}/unload_lora_adapter", json={"lora_name": adapter}, timeout=30)
    served = {m["id"] for m in httpx.get(f"{stack.engine_url}/models", timeout=10).json()["data"]}
    assert adapter not in served

    client = openai.OpenAI(
        base_url=f"{url}/v1", api_key="unused-on-loopback", max_retries=0, timeout=300
    )
    assert {"base", adapter, "rag:shared"} <= {m.id for m in client.models.list().data}
    for model in ("rag:shared", adapter):
        chunks = list(
            client.chat.completions.create(
                model=model, messages=QUESTION, max_tokens=32, temperature=0, stream=True
            )
        )
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices).strip(), model
        if model.startswith("rag:"):
            assert any(
                s["source"].endswith("ingestion.md") for s in chunks[0].model_extra["sources"]
            )
    served = {m["id"] for m in httpx.get(f"{stack.engine_url}/models", timeout=10).json()["data"]}
    assert adapter in served  # loaded into the remote engine through its runtime API
