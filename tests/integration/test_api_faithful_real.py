"""Integration: the OpenAI API is faithful (issue 15, kind 8), against the real stack.

Each field is honoured by the real vLLM engine or refused with a 400 naming it, streamed
and not, for ``base``, a LoRA adapter and ``rag:docs``; the handed cases of issue 15
(tests/data/cases/api/) included. The policy: app/api/fields.py and docs/deploy.md.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys

import httpx
import openai
import pytest

from tests.conftest import REPO

pytestmark = pytest.mark.integration

CASES = REPO / "tests" / "data" / "cases" / "api"
SHORT = [{"role": "user", "content": "Name two planets."}]
CITY = {
    "type": "json_schema",
    "json_schema": {
        "name": "city",
        "schema": {
            "type": "object",
            "properties": {"city": {"type": "string", "enum": ["Paris", "London", "Rome"]}},
            "required": ["city"],
            "additionalProperties": False,
        },
    },
}
TOOLS = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Weather for a city",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]
FORCED = {"type": "function", "function": {"name": "get_weather"}}


def case(name: str) -> dict:
    return json.loads((CASES / name).read_text())


def post(stack, body: dict, stream: bool = False) -> tuple[int, dict | list[dict]]:
    """Status and JSON body, or status and the SSE chunks of a streamed answer."""
    url = f"{stack.app_url}/v1/chat/completions"
    if not stream:
        response = httpx.post(url, json=body, timeout=300)
        return response.status_code, response.json()
    with httpx.stream("POST", url, json={**body, "stream": True}, timeout=300) as response:
        if response.status_code != 200:
            return response.status_code, json.loads(response.read())
        lines = [line[6:] for line in response.iter_lines() if line.startswith("data: ")]
    assert lines[-1] == "[DONE]", lines[-3:]
    return 200, [json.loads(line) for line in lines[:-1]]


def refused(stack, body: dict, param: str, *needles: str) -> None:
    """Both ways the request is a 400 whose error names ``param`` (and contains ``needles``)."""
    for stream in (False, True):
        status, reply = post(stack, body, stream)
        assert status == 400, (param, stream, reply)
        error = reply["error"]
        assert error["param"] == param and param.split("[")[0] in error["message"], error
        assert all(n in error["message"] for n in needles), error


def run_case_script(stack, name: str) -> str:
    """Run a handed .py case against this stack (it is written for the default port)."""
    source = (CASES / name).read_text().replace("http://127.0.0.1:7860", stack.app_url)
    done = subprocess.run(
        [sys.executable, "-c", source],
        capture_output=True,
        text=True,
        timeout=600,
        cwd=REPO,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


@pytest.fixture
def models(adapter) -> tuple[str, ...]:
    return ("base", adapter, "rag:docs")


def test_over_the_context_is_a_400_naming_the_field_and_the_limit(stack, models):
    refused(stack, case("max_tokens_huge.json"), "max_tokens", "30000", "4096")
    refused(stack, case("prompt_over_context.json"), "messages", "4096")
    official = openai.OpenAI(
        base_url=f"{stack.app_url}/v1", api_key="x", max_retries=2, timeout=300
    )
    with pytest.raises(openai.BadRequestError):  # a client mistake: no retry, no 5xx
        official.chat.completions.create(**case("max_tokens_huge.json"))
    # a long earlier turn: every model's prompt (RAG's too) is over the context
    long_history = [
        {"role": "user", "content": "Where is the lighthouse? " * 900},
        {"role": "assistant", "content": "On the cape."},
        *SHORT,
    ]
    for model in models:
        refused(
            stack, {"model": model, "messages": SHORT, "max_tokens": 4090}, "max_tokens", "4096"
        )
        refused(
            stack,
            {"model": model, "messages": SHORT, "max_completion_tokens": 5000},
            "max_completion_tokens",
        )
        refused(
            stack, {"model": model, "messages": long_history, "max_tokens": 8}, "messages", "4096"
        )
    # a RAG question too long to look up is refused by name too
    refused(stack, {"model": "rag:docs", "messages": long_history[:1]}, "messages", "4,000")


def test_finish_reason_and_usage_are_the_engines(stack, models):
    for stream in (False, True):
        status, reply = post(stack, case("max_tokens_5_truncated.json"), stream)
        assert status == 200
        finish = (
            reply["choices"][0]["finish_reason"]
            if not stream
            else reply[-1]["choices"][0]["finish_reason"]
        )
        assert finish == "length", reply
    assert post(stack, case("max_tokens_5_truncated.json"))[1]["usage"]["completion_tokens"] == 5
    out = run_case_script(stack, "stream_usage.py")
    assert "last chunk has empty choices + usage (OpenAI contract): True" in out, out
    assert (
        re.search(r"non-stream usage: .*prompt_tokens=[1-9]", out)
        and "finish_reason: length" in out
    ), out
    prompt_tokens = {}
    for model in models:
        body = {"model": model, "messages": SHORT, "max_tokens": 4, "temperature": 0}
        status, reply = post(stack, body)
        assert (
            reply["choices"][0]["finish_reason"] == "length"
            and reply["usage"]["completion_tokens"] == 4
        ), model
        prompt_tokens[model] = reply["usage"]["prompt_tokens"]
        status, chunks = post(
            stack, {**body, "stream_options": {"include_usage": True}}, stream=True
        )
        assert chunks[-1]["choices"] == [] and chunks[-1]["usage"] == reply["usage"], (
            model,
            chunks[-2:],
        )
        assert chunks[-2]["choices"][0]["finish_reason"] == "length"
        status, plain = post(stack, body, stream=True)
        # usage only when asked for
        assert all(c["choices"] and "usage" not in c for c in plain), model
        stopped = post(stack, {**body, "max_tokens": 30, "stop": [" "]})[1]
        assert (
            stopped["choices"][0]["finish_reason"] == "stop"
            and stopped["usage"]["completion_tokens"] < 30
        )
    # real counts: RAG adds the sources
    assert prompt_tokens["rag:docs"] > prompt_tokens["base"] > 10


def test_n_returns_n_choices(stack, models):
    status, reply = post(stack, case("n3.json"))
    assert status == 200 and [c["index"] for c in reply["choices"]] == [0, 1, 2]
    status, chunks = post(stack, case("n3.json"), stream=True)
    finished = {c["choices"][0]["index"] for c in chunks if c["choices"][0]["finish_reason"]}
    assert finished == {0, 1, 2}
    for model in models[1:]:
        body = {"model": model, "messages": SHORT, "n": 2, "temperature": 1.0, "max_tokens": 6}
        for stream in (False, True):
            status, reply = post(stack, body, stream)
            indexes = (
                {c["index"] for c in reply["choices"]}
                if not stream
                else {c["choices"][0]["index"] for c in reply if c["choices"]}
            )
            assert status == 200 and indexes == {0, 1}, (model, stream)
        if model.startswith("rag:"):
            assert reply[0]["sources"]  # on the first chunk
    refused(stack, {"model": "base", "messages": SHORT, "n": 2, "temperature": 0}, "n", "greedy")


def test_response_format_logprobs_and_seed_are_honoured(stack, models):
    status, reply = post(stack, case("response_format.json"))
    content = reply["choices"][0]["message"]["content"]
    assert status == 200 and content.lstrip().startswith("{"), content
    if reply["choices"][0]["finish_reason"] == "stop":
        json.loads(content)
    out = run_case_script(stack, "shape_fields.py")
    assert (
        "response_format=json_object -> HTTP 200" in out
        and "tools + forced tool_choice -> HTTP 400" in out
    ), out
    assert "logprobs=true -> HTTP 200" in out and "'logprobs'" in out, out
    for model in models:
        body = {
            "model": model,
            "messages": [{"role": "user", "content": "Capital of France as JSON with key city."}],
            "response_format": CITY,
            "max_tokens": 40,
            "temperature": 0,
        }
        assert json.loads(post(stack, body)[1]["choices"][0]["message"]["content"])["city"] in (
            "Paris",
            "London",
            "Rome",
        )
        chunks = post(stack, body, stream=True)[1]
        streamed = "".join(
            c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"]
        )
        assert json.loads(streamed)["city"] in ("Paris", "London", "Rome"), model
        lp = {
            "model": model,
            "messages": SHORT,
            "max_tokens": 3,
            "temperature": 0,
            "logprobs": True,
            "top_logprobs": 2,
        }
        reply = post(stack, lp)[1]
        tokens = reply["choices"][0]["logprobs"]["content"]
        assert len(tokens) == 3 and all(
            len(t["top_logprobs"]) == 2 and t["logprob"] <= 0 for t in tokens
        ), model
        chunks = post(stack, lp, stream=True)[1]
        assert (
            sum(
                len((c["choices"][0].get("logprobs") or {}).get("content") or [])
                for c in chunks
                if c["choices"]
            )
            == 3
        )
        seeded = {
            "model": model,
            "messages": SHORT,
            "max_tokens": 8,
            "temperature": 1.0,
            "seed": 11,
        }
        assert (
            post(stack, seeded)[1]["choices"][0]["message"]
            == post(stack, seeded)[1]["choices"][0]["message"]
        )


def test_tools_are_refused_by_name_by_an_engine_without_a_tool_parser(stack, models):
    for model in models:
        refused(
            stack,
            {"model": model, "messages": SHORT, "tools": TOOLS, "tool_choice": FORCED},
            "tools",
            "--enable-auto-tool-choice",
        )
        refused(
            stack,
            {"model": model, "messages": SHORT, "tools": TOOLS, "tool_choice": "required"},
            "tools",
        )
        status, reply = post(
            stack,
            {
                "model": model,
                "messages": SHORT,
                "tools": TOOLS,
                "tool_choice": "none",
                "max_tokens": 4,
            },
        )
        # "none": no call, honoured
        assert status == 200 and not reply["choices"][0]["message"].get("tool_calls")


def test_fields_parts_and_model_names_are_checked_before_the_engine(stack, models, adapter):
    image = {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}
    audio = {"type": "input_audio", "input_audio": {"data": "UklGRg==", "format": "wav"}}
    for model in models:
        for part in (image, audio):
            content = [{"type": "text", "text": "What is this?"}, part]
            refused(
                stack,
                {"model": model, "messages": [{"role": "user", "content": content}]},
                "messages[0].content[1].type",
                part["type"],
            )
        refused(
            stack, {"model": model, "messages": SHORT, "functions": [{"name": "f"}]}, "functions"
        )
        refused(
            stack,
            {"model": model, "messages": SHORT, "web_search_options": {}},
            "web_search_options",
        )
    for name in (
        "rag:",
        "rag:docs+",
        "rag:docs+nope",
        "rag:nope",
        "base+x",
        f"{adapter}+x",
        f"rag:docs+{adapter}+x",
    ):
        for stream in (False, True):
            status, reply = post(stack, {"model": name, "messages": SHORT}, stream)
            assert status == 404 and {"base", adapter, "rag:docs"} <= set(
                reply["error"]["valid_models"]
            ), name
