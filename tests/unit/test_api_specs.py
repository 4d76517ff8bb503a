"""Variant specs as the API's ``model``: resolved by the same parser as eval run and the A/B tab."""

from __future__ import annotations

import openai
import pytest
from fastapi.testclient import TestClient

from app.generation.fake import FakeGenerator
from tests.unit.test_api import MESSAGE, corpus, openai_client  # noqa: F401 (fixture)
from tests.unit.test_variant_specs import _dataset


@pytest.fixture
def served(make_settings, embedder, corpus, tmp_path):  # noqa: F811
    """(client, chat, generator) over the `tea` collection, a `tea-lora` adapter and a dataset."""
    from app.components import build_chat_service, build_ingest_pipeline, build_store
    from app.server import create_app
    from training.registry import AdapterRegistry, Manifest

    settings = make_settings(generator={"mode": "fake"})
    store = build_store(settings)
    build_ingest_pipeline(settings, store=store, embedder=embedder).ingest(
        [corpus], "tea", show_progress=False
    )
    _dataset(settings.datasets_dir)
    registry = AdapterRegistry(settings.adapters_root)
    registry.commit(
        registry.staging("tea-lora"),
        Manifest(name="tea-lora", kind="lora", method="sft", base_model="x"),
    )
    generator = FakeGenerator()
    chat = build_chat_service(settings, generator=generator, store=store, embedder=embedder)
    client = TestClient(create_app(settings, chat=chat))
    client.__enter__()
    return client, chat, generator


def test_specs_answer_with_their_mode_adapter_and_options(served, monkeypatch):
    client, chat, generator = served
    oa = openai_client(client)
    asked = []
    real = chat.retrieve

    def spy(question, collection=None, k=None, **kwargs):
        asked.append((collection, k, kwargs.get("retriever")))
        return real(question, collection, k, **kwargs)

    monkeypatch.setattr(chat, "retrieve", spy)
    reply = oa.chat.completions.create(
        model="rag:tea+tea-lora@k=2@retriever=bm25", messages=MESSAGE
    )
    assert asked == [("tea", 2, "bm25")] and reply.model == "rag:tea+tea-lora@k=2@retriever=bm25"
    assert "(tea-lora)" in reply.choices[0].message.content and reply.model_extra["sources"]

    few = oa.chat.completions.create(
        model="few-shot+tea-lora@shots=2@demos=mydata", messages=MESSAGE
    )
    sent = generator.calls[-1]
    assert [m["role"] for m in sent] == ["system", "user", "assistant", "user", "assistant", "user"]
    assert sent[1]["content"].startswith("What does the guide say about")
    assert sent[-1]["content"] == MESSAGE[0]["content"] and "sources" not in few.model_extra
    assert "(tea-lora)" in few.choices[0].message.content

    oa.chat.completions.create(model="zero-shot+tea-lora", messages=MESSAGE)
    assert generator.calls[-1] == MESSAGE  # zero-shot: the client's messages as they are
    listed = {m.id for m in oa.models.list().data}
    assert {"base", "tea-lora", "rag:tea"} <= listed and not any("@" in n for n in listed)


def test_a_bad_option_is_a_400_naming_it_and_a_missing_thing_a_404(served):
    client, _, _ = served
    oa = openai_client(client)
    for name, says in (
        ("rag:tea@k=0", "@k=0: a whole number from 1 to 50"),
        ("rag:tea@topk=2", "unknown option 'topk'"),
        ("zero-shot@shots=2", "@shots applies to few-shot only"),
    ):
        with pytest.raises(openai.BadRequestError) as caught:
            oa.chat.completions.create(model=name, messages=MESSAGE)
        error = caught.value.body
        assert error["param"] == "model" and says in error["message"], error
    for name, says in (
        ("few-shot+nope", "no generative adapter 'nope'"),
        ("rag:nope@k=2", "no collection 'nope'"),
        ("few-shot@demos=nope", "unknown dataset 'nope'"),
    ):
        with pytest.raises(openai.NotFoundError) as caught:
            oa.chat.completions.create(model=name, messages=MESSAGE)
        assert says in caught.value.body["message"], caught.value.body
