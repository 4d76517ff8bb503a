"""The generator side of the API (issue 15, kind 8): engine errors, request
fields, peft, routing."""

from __future__ import annotations

import httpx
import openai
import pytest

from app.adapters import AdapterService, RoutingGenerator
from app.generation.base import GenerationParams, GeneratorRefused
from app.generation.fake import FakeGenerator
from app.generation.peft_backend import _cut_at_stop, _refuse_unhonoured
from app.generation.vllm_client import VLLMGenerator, _refusal
from tests.unit.test_api import MESSAGE
from tests.unit.test_api_faithful import TOOLS, post


def test_engine_4xx_become_refusals_naming_the_clients_field():
    def bad(message: str, param: str | None = None) -> openai.BadRequestError:
        response = httpx.Response(
            400, request=httpx.Request("POST", "http://engine/v1/chat/completions")
        )
        body = {"message": message, "type": "BadRequestError", "param": param, "code": 400}
        return openai.BadRequestError(f"Error code: 400 - {body}", response=response, body=body)

    over = _refusal(bad("your prompt contains at least 4097 input tokens", "input_tokens"), {})
    assert over.param == "messages" and over.args[0].startswith("messages: ")
    greedy = _refusal(bad("n must be 1 when using greedy sampling, got 2."), {"n": 2})
    assert greedy.param == "n"
    tools = _refusal(
        bad('tool_choice=function "f" requires --tool-call-parser to be set'), {"tools": TOOLS}
    )
    assert tools.param == "tools" and "--tool-call-parser" in str(tools)


def test_the_vllm_request_puts_the_clients_fields_over_the_settings_defaults():
    engine = VLLMGenerator("http://127.0.0.1:9/v1", "base")
    params = GenerationParams(
        temperature=0.2, max_tokens=256, extra={"repetition_penalty": 1.1, "frequency_penalty": 0.3}
    )
    body = engine._request(MESSAGE, None, params, {"frequency_penalty": 0.0, "n": 2})["extra_body"]
    assert body == {
        "temperature": 0.2,
        "max_tokens": 256,
        "repetition_penalty": 1.1,
        "frequency_penalty": 0.0,
        "n": 2,
    }
    asked = engine._request(MESSAGE, "lora", params, {"max_completion_tokens": 9, "temperature": 1})
    assert asked["model"] == "lora" and "max_tokens" not in asked["extra_body"]
    assert asked["extra_body"]["temperature"] == 1


def test_the_peft_backend_refuses_what_transformers_cannot_honour():
    with pytest.raises(GeneratorRefused) as caught:
        _refuse_unhonoured(
            "ia3-x",
            {
                "n": 3,
                "logprobs": True,
                "response_format": {"type": "json_object"},
                "tools": TOOLS,
                "top_p": 0.9,
            },
        )
    assert caught.value.param == "n" and all(
        f in str(caught.value) for f in ("n", "logprobs", "response_format", "tools")
    )
    assert "top_p" not in str(caught.value).split(":")[0]
    _refuse_unhonoured(
        "ia3-x",
        {
            "n": 1,
            "logprobs": False,
            "top_p": 0.9,
            "stop": ["."],
            "seed": 1,
            "max_tokens": 5,
            "stream_options": {"include_usage": True},
        },
    )


def test_routing_sends_the_api_call_where_the_adapter_is_served():
    class Backend:
        def __init__(self, tag):
            self.tag = tag

        def complete_stream(self, messages, *, adapter=None, params, fields):
            yield {"tag": self.tag, "adapter": adapter}

    class Service(AdapterService):
        def __init__(self):
            super().__init__(registry=None, vllm=Backend("vllm"), peft=Backend("peft"))

        def load(self, name, probe=False):
            from types import SimpleNamespace

            return SimpleNamespace(
                served_by="vllm" if name.endswith("lora") else "transformers+peft"
            )

    routing = RoutingGenerator(Service(), {"merged": Backend("merged")})
    params = GenerationParams()
    seen = [
        next(iter(routing.complete_stream(MESSAGE, adapter=a, params=params, fields={})))
        for a in (None, "x-lora", "x-ia3", "merged")
    ]
    assert seen == [
        {"tag": "vllm", "adapter": None},
        {"tag": "vllm", "adapter": "x-lora"},
        {"tag": "peft", "adapter": "x-ia3"},
        {"tag": "merged", "adapter": None},
    ]


def test_sampling_defaults_from_the_settings_reach_the_api_path(make_settings, embedder, tmp_path):
    from fastapi.testclient import TestClient

    from app.components import build_chat_service, build_ingest_pipeline, build_store
    from app.server import create_app

    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n")
    settings = make_settings(generator={"mode": "fake"})
    store = build_store(settings)
    build_ingest_pipeline(settings, store=store, embedder=embedder).ingest(
        [corpus], "tea", show_progress=False
    )
    fake = FakeGenerator()
    chat = build_chat_service(settings, generator=fake, store=store, embedder=embedder)
    chat.params = GenerationParams(
        temperature=0.3, max_tokens=64, seed=5, extra={"repetition_penalty": 1.15}
    )
    with TestClient(create_app(settings, chat=chat)) as client:
        assert post(client, model="rag:tea", frequency_penalty=0.5).status_code == 200
    params, fields = fake.params[-1], fake.fields[-1]
    assert (
        params.extra == {"repetition_penalty": 1.15}
        and params.temperature == 0.3
        and params.max_tokens == 64
    )
    assert params.seed is None  # the API samples freshly unless the client sends a seed
    assert fields["frequency_penalty"] == 0.5 and "temperature" not in fields


def test_the_peft_backend_leaves_the_stop_string_out_as_vllm_does():
    deltas = ["The most", " famous exo", "planet is Kepler", "-435b,", " which"]
    assert (
        "".join(_cut_at_stop(iter(deltas[:4]), [","])) == "The most famous exoplanet is Kepler-435b"
    )
    assert "".join(_cut_at_stop(iter(["a b", "c.\n"]), [".", "\n"])) == "a bc"
    assert "".join(_cut_at_stop(iter(deltas), [])) == "".join(deltas)
    long = ["word " * 20, "end ### tail"]
    assert "".join(_cut_at_stop(iter(long), ["###"])) == "word " * 20 + "end "
