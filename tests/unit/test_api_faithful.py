"""The OpenAI API is faithful (issue 15, kind 8): every field honoured or refused by name.

On fake generation (app/generation/fake.py, words for tokens) through the official openai
client; the real engine's behaviour is in tests/integration/test_api_faithful_real.py, the
generator side (engine errors, request merging, peft, routing) in test_generation_api.py.
"""

from __future__ import annotations

import json

import openai
import pytest

from app.generation.fake import FakeGenerator
from tests.unit.test_api import MESSAGE, make_client, openai_client

TOOLS = [
    {"type": "function", "function": {"name": "get_weather", "parameters": {"type": "object"}}}
]


@pytest.fixture
def client(make_settings, embedder, corpus):
    fake = FakeGenerator()
    client = make_client(make_settings, embedder, corpus, generator=fake)
    client.fake = fake  # what the generator received
    return client


@pytest.fixture
def corpus(tmp_path):
    folder = tmp_path / "corpus"
    folder.mkdir()
    (folder / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees for two minutes.\n")
    return folder


def post(client, **body):
    return client.post("/v1/chat/completions", json={"model": "base", "messages": MESSAGE, **body})


def refused(response, param: str) -> str:
    """The message of a 400 whose param is ``param`` (and which names it)."""
    assert response.status_code == 400, response.text
    error = response.json()["error"]
    assert error["param"] == param and param.split(".")[0].split("[")[0] in error["message"], error
    return error["message"]


def test_fields_the_api_does_not_honour_are_refused_by_name(client):
    cases = {
        "functions": {"functions": [{"name": "f"}]},
        "audio": {"audio": {"voice": "alloy", "format": "wav"}},
        "prediction": {"prediction": {"type": "content", "content": "x"}},
        "web_search_options": {"web_search_options": {}},
        "service_tier": {"service_tier": "flex"},
        "reasoning_effort": {"reasoning_effort": "high"},
        "echo": {"echo": True},  # a vLLM extension this server does not pass on
        "store": {"store": True},
        "stream_options": {"stream_options": {"include_usage": True}},  # without stream
        "top_logprobs": {"top_logprobs": 2},  # without logprobs
        "tool_choice": {"tool_choice": "auto"},  # without tools
        "parallel_tool_calls": {"parallel_tool_calls": False},
        "messages[0].audio": {"messages": [{**MESSAGE[0], "audio": {"id": "a"}}]},
        "messages[0].content": {"messages": [{"role": "user"}]},
        "temperature": {"temperature": 5},
        "n": {"n": 0},
        "modalities.0": {"modalities": ["audio"]},
        "response_format.type": {"response_format": {"type": "yaml"}},
        "response_format": {
            "response_format": {"type": "json_schema", "json_schema": {"name": "x"}}
        },
        "tools.0.type": {"tools": [{"type": "web_search"}]},
    }
    for param, body in cases.items():
        refused(post(client, **body), param)
    streamed = post(
        client, stream=True, stream_options={"include_usage": True, "include_obfuscation": True}
    )
    refused(streamed, "stream_options.include_obfuscation")
    with pytest.raises(openai.BadRequestError, match="modalities"):  # the client's typed fields too
        openai_client(client).chat.completions.create(
            model="base", messages=MESSAGE, modalities=["audio"]
        )


def test_metadata_fields_are_accepted(client):
    reply = post(
        client,
        user="u1",
        metadata={"team": "qa"},
        store=False,
        safety_identifier="s",
        prompt_cache_key="k",
        modalities=["text"],
        functions=None,
    )
    assert reply.status_code == 200, reply.text


def test_content_parts_other_than_text_are_refused_by_name(client):
    parts = {
        "image_url": {
            "type": "image_url",
            "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="},
        },
        "input_audio": {
            "type": "input_audio",
            "input_audio": {"data": "UklGRg==", "format": "wav"},
        },
        "file": {"type": "file", "file": {"file_id": "file-1"}},
    }
    for kind, part in parts.items():
        for stream in (False, True):
            content = [{"type": "text", "text": "What is this?"}, part]
            message = refused(
                post(client, stream=stream, messages=[{"role": "user", "content": content}]),
                "messages[0].content[1].type",
            )
            assert kind in message and "text only" in message
    text_parts = [{"type": "text", "text": "How hot"}, {"type": "text", "text": " is tea?"}]
    assert post(client, messages=[{"role": "user", "content": text_parts}]).status_code == 200


def test_malformed_model_names_are_404_listing_the_valid_ones(client, tmp_path):
    from training.registry import AdapterRegistry, Manifest

    registry = AdapterRegistry(tmp_path / "data" / "adapters")
    registry.commit(
        registry.staging("tea-lora"),
        Manifest(name="tea-lora", kind="lora", method="sft", base_model="x"),
    )
    oa = openai_client(client)
    for name in (
        "rag:",
        "rag:tea+",
        "rag:tea+nope",
        "rag:nope",
        "base+x",
        "base+tea-lora",
        "Base",
        "rag:tea+base",
        "rag:tea+tea-lora+x",
        " rag:tea",
        "rag:+tea-lora",
    ):
        for stream in (False, True):
            with pytest.raises(openai.NotFoundError) as caught:
                oa.chat.completions.create(model=name, messages=MESSAGE, stream=stream)
            error = caught.value.body
            assert error["param"] == "model" and repr(name) in error["message"], name
            assert {"base", "tea-lora", "rag:tea"} <= set(error["valid_models"])
    assert oa.chat.completions.create(model="rag:tea+tea-lora", messages=MESSAGE).model_extra[
        "sources"
    ]


def test_n_finish_reason_and_usage_streamed_and_not(client):
    oa = openai_client(client)
    three = oa.chat.completions.create(model="base", messages=MESSAGE, n=3, temperature=1)
    assert [c.index for c in three.choices] == [0, 1, 2]
    assert three.usage.prompt_tokens == 7 and three.usage.completion_tokens > 0
    assert three.usage.total_tokens == three.usage.prompt_tokens + three.usage.completion_tokens
    cut = oa.chat.completions.create(model="rag:tea", messages=MESSAGE, max_tokens=3)
    assert cut.choices[0].finish_reason == "length" and cut.usage.completion_tokens == 3
    whole = oa.chat.completions.create(model="base", messages=MESSAGE, max_completion_tokens=100)
    assert whole.choices[0].finish_reason == "stop"
    chunks = list(
        oa.chat.completions.create(
            model="base",
            messages=MESSAGE,
            max_tokens=3,
            n=2,
            stream=True,
            stream_options={"include_usage": True},
        )
    )
    finishes = {
        c.choices[0].index: c.choices[0].finish_reason
        for c in chunks
        if c.choices and c.choices[0].finish_reason
    }
    assert finishes == {0: "length", 1: "length"}
    assert (
        chunks[-1].choices == []
        and chunks[-1].usage.prompt_tokens == 7
        and chunks[-1].usage.completion_tokens == 6
    )
    assert all(c.usage is None for c in chunks[:-1])
    plain = list(oa.chat.completions.create(model="base", messages=MESSAGE, stream=True))
    assert all(c.choices and c.usage is None for c in plain)  # no usage chunk unless asked for


def test_logprobs_response_format_and_seed_reach_the_engine_and_come_back(client):
    oa = openai_client(client)
    reply = oa.chat.completions.create(
        model="base",
        messages=MESSAGE,
        logprobs=True,
        top_logprobs=2,
        seed=7,
        response_format={"type": "json_object"},
        stop=["\n"],
        logit_bias={"50256": -100},
        extra_body={"repetition_penalty": 1.2},
    )
    assert json.loads(reply.choices[0].message.content)["answer"].startswith("Fake answer")
    assert len(reply.choices[0].logprobs.content[0].top_logprobs) == 2
    sent = client.fake.fields[-1]
    assert sent["seed"] == 7 and sent["stop"] == ["\n"] and sent["repetition_penalty"] == 1.2
    assert sent["logit_bias"] == {"50256": -100} and sent["response_format"] == {
        "type": "json_object"
    }
    chunks = list(
        oa.chat.completions.create(model="base", messages=MESSAGE, logprobs=True, stream=True)
    )
    assert any(c.choices and c.choices[0].logprobs for c in chunks)


def test_a_request_over_the_context_is_400_naming_field_and_limit(client):
    oa = openai_client(client)
    # streamed too: refused before any event, not a 200 with an error inside
    for stream in (
        False,
        True,
    ):
        long = [{"role": "user", "content": "lighthouse " * 5000}]
        message = refused(post(client, messages=long, stream=stream), "messages")
        assert "5000" in message and "4096" in message
        for field, value in (
            ("max_tokens", 30000),
            ("max_completion_tokens", 4095),
            ("max_tokens", 10**6),
        ):
            message = refused(post(client, stream=stream, **{field: value}), field)
            assert "4096" in message and str(value) in message
        with pytest.raises(openai.BadRequestError, match="max_tokens"):
            oa.chat.completions.create(
                model="rag:tea", messages=MESSAGE, max_tokens=30000, stream=stream
            )
    # prompt + max_tokens within the context
    question = [{"role": "user", "content": "Where is the lighthouse? " * 200}]
    assert "4,000" in refused(post(client, model="rag:tea", messages=question), "messages")
    assert post(client, max_tokens=4000).status_code == 200


def test_tools_the_engine_cannot_honour_are_refused_by_name(client):
    oa = openai_client(client)
    for stream in (False, True):
        with pytest.raises(openai.BadRequestError) as caught:
            oa.chat.completions.create(
                model="base",
                messages=MESSAGE,
                tools=TOOLS,
                stream=stream,
                tool_choice={"type": "function", "function": {"name": "get_weather"}},
            )
        assert caught.value.body["param"] == "tools"


class ToolEngine(FakeGenerator):
    """Answers as vLLM does with --enable-auto-tool-choice and a forced tool_choice
    (chunks as measured)."""

    def complete_stream(self, messages, *, adapter=None, params, fields):
        head = {
            "id": "chatcmpl-b28e",
            "object": "chat.completion.chunk",
            "created": 1796067356,
            "model": "base",
        }
        deltas = [
            {"role": "assistant", "content": ""},
            {
                "tool_calls": [
                    {
                        "id": "chatcmpl-tool-81",
                        "type": "function",
                        "index": 0,
                        "function": {"name": "get_weather", "arguments": "{"},
                    }
                ]
            },
            {
                "tool_calls": [
                    {"index": 0, "function": {"name": None, "arguments": '\n  "city": "Paris"'}}
                ]
            },
            {"tool_calls": [{"index": 0, "function": {"arguments": "}"}}]},
        ]
        for i, delta in enumerate(deltas):
            finish = "stop" if i == len(deltas) - 1 else None
            choice = {
                "index": 0,
                "delta": delta,
                "logprobs": None,
                "finish_reason": finish,
                "token_ids": None,
            }
            yield {**head, "choices": [choice], "prompt_token_ids": None}
        yield {
            **head,
            "choices": [],
            "usage": {"prompt_tokens": 34, "completion_tokens": 11, "total_tokens": 45},
        }


def test_tool_calls_an_engine_honours_come_back_whole(make_settings, embedder, corpus):
    client = make_client(make_settings, embedder, corpus, generator=ToolEngine())
    oa = openai_client(client)
    forced = {"type": "function", "function": {"name": "get_weather"}}
    reply = oa.chat.completions.create(
        model="rag:tea", messages=MESSAGE, tools=TOOLS, tool_choice=forced
    )
    call = reply.choices[0].message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {
        "city": "Paris"
    }
    assert (
        reply.choices[0].message.content is None
        and reply.model == "rag:tea"
        and reply.usage.prompt_tokens == 34
    )
    raw = post(client, tools=TOOLS, tool_choice=forced).json()
    # engine internals left out
    assert "token_ids" not in raw["choices"][0] and "prompt_token_ids" not in raw
    chunks = list(
        oa.chat.completions.create(
            model="base", messages=MESSAGE, tools=TOOLS, tool_choice=forced, stream=True
        )
    )
    streamed = "".join(
        c.choices[0].delta.tool_calls[0].function.arguments
        for c in chunks
        if c.choices[0].delta.tool_calls
    )
    assert (
        json.loads(streamed) == {"city": "Paris"} and chunks[-1].choices[0].finish_reason == "stop"
    )
