"""The HTTP API on fake generation: OpenAI shapes (via the official client), auth,
overload, uploads."""

from __future__ import annotations

import asyncio
import threading
import time

import openai
import pytest
from fastapi.testclient import TestClient

from app.api.bridge import abortable
from app.api.guard import check_binding
from app.generation.base import GenerationParams
from app.generation.fake import FakeGenerator
from app.server import create_app
from app.settings import SettingsError

MESSAGE = [{"role": "user", "content": "How hot should green tea water be?"}]


class SlowGenerator(FakeGenerator):
    """Fake answers, one word per ``delay`` seconds; remembers whether a stream was closed early."""

    def __init__(self, delay: float) -> None:
        super().__init__()
        self.delay = delay
        self.closed_early = threading.Event()

    def stream(self, messages, *, adapter=None, params: GenerationParams):
        finished = False
        try:
            for word in super().stream(messages, adapter=adapter, params=params):
                time.sleep(self.delay)
                yield word
            finished = True
        finally:
            if not finished:
                self.closed_early.set()


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n")
    return folder


def make_client(make_settings, embedder, corpus, generator=None, **overrides) -> TestClient:
    from app.components import build_chat_service, build_ingest_pipeline, build_store
    from app.server import create_app

    settings = make_settings(generator={"mode": "fake"}, **overrides)
    store = build_store(settings)
    build_ingest_pipeline(settings, store=store, embedder=embedder).ingest(
        [corpus], "tea", show_progress=False
    )
    chat = build_chat_service(
        settings, generator=generator or FakeGenerator(), store=store, embedder=embedder
    )
    client = TestClient(create_app(settings, chat=chat))
    # one event loop for every request, as under uvicorn (the admission queue lives on it)
    client.__enter__()
    return client


@pytest.fixture
def client(make_settings, embedder, corpus):
    return make_client(make_settings, embedder, corpus)


def openai_client(client: TestClient, key: str = "none") -> openai.OpenAI:
    return openai.OpenAI(
        base_url="http://testserver/v1", api_key=key, http_client=client, max_retries=0
    )


def test_openai_client_chats_with_base_and_rag_streaming_and_not(client):
    oa = openai_client(client)
    assert {"base", "rag:tea"} <= {m.id for m in oa.models.list().data}
    reply = oa.chat.completions.create(model="base", messages=MESSAGE)
    assert reply.choices[0].message.content.startswith("Fake answer (base)")
    rag = oa.chat.completions.create(model="rag:tea", messages=MESSAGE)
    assert rag.choices[0].message.content.endswith("[1]")
    # extra field, ignored by OpenAI clients
    assert rag.model_extra["sources"][0]["source"].endswith("tea.md")
    chunks = list(oa.chat.completions.create(model="rag:tea", messages=MESSAGE, stream=True))
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == rag.choices[0].message.content
    assert chunks[0].model_extra["sources"] and chunks[-1].choices[0].finish_reason == "stop"


def test_adapter_and_rag_plus_adapter_names_resolve(client, tmp_path):
    from training.registry import AdapterRegistry, Manifest

    registry = AdapterRegistry(tmp_path / "data" / "adapters")
    staging = registry.staging("tea-lora")
    registry.commit(staging, Manifest(name="tea-lora", kind="lora", method="dpo", base_model="x"))
    oa = openai_client(client)
    assert "tea-lora" in {m.id for m in oa.models.list().data}
    assert (
        "(tea-lora)"
        in oa.chat.completions.create(model="tea-lora", messages=MESSAGE).choices[0].message.content
    )
    combined = oa.chat.completions.create(model="rag:tea+tea-lora", messages=MESSAGE)
    assert "(tea-lora)" in combined.choices[0].message.content and combined.model_extra["sources"]
    adapters = client.get("/v1/adapters").json()["data"]
    assert adapters[0]["name"] == "tea-lora" and adapters[0]["method"] == "dpo"


def test_bad_requests_get_openai_shaped_errors(client):
    unknown = client.post("/v1/chat/completions", json={"model": "gpt-5", "messages": MESSAGE})
    assert unknown.status_code == 404 and "base" in unknown.json()["error"]["valid_models"]
    missing = client.post("/v1/chat/completions", json={"model": "base"})
    # OpenAI's code
    assert missing.status_code == 400 and "messages" in missing.json()["error"]["message"]
    malformed = client.post(
        "/v1/chat/completions",
        content=b'{"model": "base",',
        headers={"content-type": "application/json"},
    )
    assert malformed.status_code == 400 and "malformed JSON" in malformed.json()["error"]["message"]
    with pytest.raises(openai.NotFoundError):
        openai_client(client).chat.completions.create(model="rag:nope", messages=MESSAGE)


def test_api_keys_are_required_when_configured(make_settings, embedder, corpus):
    client = make_client(make_settings, embedder, corpus, api={"keys": ["s3cret"]})
    assert client.get("/v1/models").status_code == 401
    assert client.get("/v1/models", headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert client.get("/metrics").status_code == 401
    with pytest.raises(openai.AuthenticationError):
        openai_client(client, "wrong").models.list()
    assert openai_client(client, "s3cret").models.list().data
    assert client.get("/healthz").status_code == 200  # health stays open for load balancers


def test_binding_beyond_loopback_needs_a_key_and_a_ui_login(make_settings):
    with pytest.raises(SettingsError, match="no API key .* and no UI login"):
        create_app(make_settings(ui={"host": "0.0.0.0"}))
    with pytest.raises(SettingsError, match="no UI login"):
        check_binding(
            make_settings(ui={"host": "0.0.0.0"}, api={"keys": ["k"]}).ui, make_settings().api
        )
    with pytest.raises(SettingsError, match="no API key"):
        check_binding(
            make_settings(ui={"host": "0.0.0.0", "users": {"a": "b"}}).ui, make_settings().api
        )
    check_binding(
        make_settings(ui={"host": "0.0.0.0", "users": {"a": "b"}}).ui,
        make_settings(api={"keys": ["k"]}).api,
    )
    check_binding(make_settings().ui, make_settings().api)


def test_ui_users_must_sign_in(make_settings, embedder, corpus):
    client = make_client(make_settings, embedder, corpus, ui={"users": {"alice": "s3cret"}})
    assert client.get("/config").status_code == 401
    assert client.post("/login", data={"username": "alice", "password": "wrong"}).status_code == 400
    assert (
        client.post("/login", data={"username": "alice", "password": "s3cret"}).status_code == 200
    )
    assert client.get("/config").status_code == 200


def test_overload_answers_503_with_retry_after_and_recovers(make_settings, embedder, corpus):
    slow = SlowGenerator(delay=0.2)
    client = make_client(
        make_settings, embedder, corpus, generator=slow, api={"max_concurrent": 1, "max_queue": 1}
    )
    statuses = []

    def call():
        statuses.append(
            client.post(
                "/v1/chat/completions", json={"model": "base", "messages": MESSAGE}
            ).status_code
        )

    threads = [threading.Thread(target=call) for _ in range(4)]
    for t in threads:
        t.start()
        time.sleep(0.05)
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 200, 503, 503]
    busy = client.post("/v1/chat/completions", json={"model": "base", "messages": MESSAGE})
    assert busy.status_code == 200  # recovered once the queue drained
    metrics = client.get("/metrics").text
    assert (
        "ragtune_overload_rejections_total 2.0" in metrics and "ragtune_queue_depth 0.0" in metrics
    )


def test_503_carries_retry_after(make_settings, embedder, corpus):
    client = make_client(
        make_settings,
        embedder,
        corpus,
        generator=SlowGenerator(0.3),
        api={"max_concurrent": 1, "max_queue": 0, "retry_after_s": 7},
    )
    first = threading.Thread(
        target=lambda: client.post(
            "/v1/chat/completions", json={"model": "base", "messages": MESSAGE}
        )
    )
    first.start()
    time.sleep(0.1)
    refused = client.post("/v1/chat/completions", json={"model": "base", "messages": MESSAGE})
    first.join()
    assert refused.status_code == 503 and refused.headers["Retry-After"] == "7"


def test_leaving_a_stream_early_closes_the_generation():
    slow = SlowGenerator(delay=0.05)

    async def consume_two():
        stream = abortable(
            lambda: slow.stream(MESSAGE, params=GenerationParams(max_tokens=200)), timeout_s=10
        )
        received = [await anext(stream), await anext(stream)]
        await stream.aclose()
        return received

    assert len(asyncio.run(consume_two())) == 2
    assert slow.closed_early.wait(2), "the generator was not closed after the consumer left"


def test_ingest_upload_checks_type_size_and_names(client, tmp_path):
    files = [
        ("files", ("../../escape.md", b"# Kites\n\nKites fly in steady wind.\n", "text/markdown"))
    ]
    report = client.post("/v1/ingest", files=files, data={"collection": "kites"})
    assert report.status_code == 200, report.text
    stored = report.json()["files"][0]
    assert (
        stored["status"] == "added"
        and "/uploads/kites/" in stored["path"]
        and stored["path"].endswith("/escape.md")
    )
    assert not (tmp_path / "escape.md").exists()
    wrong_type = client.post(
        "/v1/ingest", files=[("files", ("tool.exe", b"MZ", "application/octet-stream"))]
    )
    assert wrong_type.status_code == 415 and ".exe" in wrong_type.json()["error"]["message"]
    names = [c["name"] for c in client.get("/v1/collections").json()["data"]]
    assert {"tea", "kites"} <= set(names)


def test_upload_over_the_limit_is_413_and_other_embedder_is_409(make_settings, embedder, corpus):
    client = make_client(make_settings, embedder, corpus, api={"max_upload_mb": 0.001})
    big = client.post("/v1/ingest", files=[("files", ("big.txt", b"x" * 5000, "text/plain"))])
    assert big.status_code == 413
    from app.components import build_store

    store = build_store(make_settings())
    store.collection("other", embedding_model="some/other-embedder", create=True)
    conflict = client.post(
        "/v1/ingest",
        files=[("files", ("a.txt", b"hello there", "text/plain"))],
        data={"collection": "other"},
    )
    assert conflict.status_code == 409 and "other-embedder" in conflict.json()["error"]["message"]


def test_openapi_schema_lists_every_endpoint(client):
    schema = client.get("/openapi.json").json()
    for path in (
        "/v1/chat/completions",
        "/v1/models",
        "/v1/ingest",
        "/v1/collections",
        "/v1/adapters",
        "/healthz",
        "/metrics",
    ):
        assert path in schema["paths"], path
    body = schema["components"]["schemas"]["ChatCompletionRequest"]
    assert {"model", "messages"} <= set(body["required"])


def test_health_reports_a_down_generator(make_settings, embedder, corpus):
    class Down(FakeGenerator):
        def health(self) -> bool:
            return False

    client = make_client(make_settings, embedder, corpus, generator=Down())
    health = client.get("/healthz")
    assert health.status_code == 503 and health.json() == {
        "status": "degraded",
        "generator": False,
        "vector_store": True,
    }


def test_a_completion_over_the_time_limit_is_504_and_frees_its_slot(
    make_settings, embedder, corpus
):
    slow = SlowGenerator(delay=0.5)
    client = make_client(
        make_settings,
        embedder,
        corpus,
        generator=slow,
        api={"request_timeout_s": 1, "max_concurrent": 1, "max_queue": 0},
    )
    late = client.post("/v1/chat/completions", json={"model": "base", "messages": MESSAGE})
    assert late.status_code == 504 and "1 s" in late.json()["error"]["message"]
    assert slow.closed_early.wait(5)  # the generation was stopped, not left running
    fast = client.post(
        "/v1/chat/completions", json={"model": "base", "messages": MESSAGE, "max_tokens": 1}
    )
    assert fast.status_code == 200


def test_a_rag_model_over_another_embedders_collection_is_409_naming_the_model(
    make_settings, embedder, corpus
):
    from app.components import build_store

    client = make_client(make_settings, embedder, corpus)
    build_store(make_settings()).collection(
        "other", embedding_model="some/other-embedder", create=True
    )
    answer = client.post("/v1/chat/completions", json={"model": "rag:other", "messages": MESSAGE})
    error = answer.json()["error"]
    assert answer.status_code == 409 and error["param"] == "model"
    assert error["message"].startswith("model: ") and "other-embedder" in error["message"]


def test_a_rag_question_without_a_user_message_is_a_400_naming_messages(client):
    answer = client.post(
        "/v1/chat/completions",
        json={"model": "rag:tea", "messages": [{"role": "system", "content": "Be brief."}]},
    )
    error = answer.json()["error"]
    assert answer.status_code == 400 and error["param"] == "messages"
    assert error["message"] == (
        "messages: a rag model needs at least one user message (the question)"
    )
