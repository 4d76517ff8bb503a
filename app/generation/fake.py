"""A deterministic generator for unit tests: no model, no server.

Words stand for tokens. ``complete_stream`` is built on ``stream`` (so a
subclass that slows or changes ``stream`` changes them too) and honour what the unit
tests of the API need to see: ``n``, the length limit (``finish_reason: length``),
``usage``, ``stream_options.include_usage``, ``logprobs``, ``response_format`` (a JSON
answer: the text under each property of a JSON schema) and the context limit; like the
default engine, it refuses ``tools``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from dataclasses import replace

from app.generation import openai_shape
from app.generation.base import (
    GenerationParams,
    GeneratorRefused,
    Message,
    check_context,
    requested_length,
)


class FakeGenerator:
    """Answers by quoting the question and citing source [1] when sources are present."""

    max_model_len = 4096  # words

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []
        self.fields: list[dict] = []  # the fields each complete_stream call received
        self.params: list[GenerationParams] = []

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        self.calls.append(messages)
        question = _text(messages[-1])
        cite = " [1]" if "[1]" in question else ""
        words = f"Fake answer ({adapter or 'base'}) to: {question[-60:]}{cite}".split(" ")
        for index, word in enumerate(words[: params.max_tokens]):
            yield word if index == 0 else " " + word

    def _start(self, messages, adapter, params: GenerationParams, fields: dict) -> tuple[int, int]:
        """Check the request as the engine would; the prompt length and the
        completion limit (words)."""
        self.fields.append(dict(fields))
        self.params.append(params)
        if any(fields.get(name) is not None for name in ("tools", "tool_choice")):
            raise GeneratorRefused("tools: this engine cannot honour tools / tool_choice", "tools")
        prompt = sum(len(_text(m).split()) for m in messages)
        check_context(prompt, self.max_model_len, fields)
        asked = requested_length(fields)
        return prompt, asked[1] if asked else params.max_tokens

    def _choice(self, messages, adapter, params, fields, limit: int) -> Iterator[str]:
        """One choice's deltas, at most ``limit``; returns (via StopIteration) whether
        it hit the limit."""
        deltas = self.stream(messages, adapter=adapter, params=replace(params, max_tokens=limit))
        try:
            kept = []
            for delta in deltas:
                kept.append(delta)
                if not _json(fields):
                    yield delta
            if _json(fields):
                yield _as_json("".join(kept), fields)
            return len(kept) >= limit
        finally:
            deltas.close()

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        prompt, limit = self._start(messages, adapter, params, fields)
        n = int(fields.get("n") or 1)
        include_usage = bool((fields.get("stream_options") or {}).get("include_usage"))
        head = openai_shape.chunk_head(adapter or "base")
        done = {"prompt_tokens": prompt, "completion_tokens": 0}
        for index in range(n):
            with closing(self._choice(messages, adapter, params, fields, limit)) as choice:
                last = include_usage and index == n - 1
                for chunk in openai_shape.chunks(head, _counted(choice, done), done, last):
                    for part in chunk["choices"]:
                        part["index"] = index
                        if fields.get("logprobs") and part["delta"].get("content"):
                            part["logprobs"] = {
                                "content": [_logprob(part["delta"]["content"], fields)]
                            }
                    yield chunk

    def health(self) -> bool:
        return True

    def models(self) -> list[str]:
        return ["base"]


def _counted(choice: Iterator[str], done: dict) -> Iterator[str]:
    """The deltas of ``choice``, counted into ``done``, with its finish reason at the end."""
    while True:
        try:
            delta = next(choice)
        except StopIteration as stop:
            done["finish_reason"] = "length" if stop.value else "stop"
            return
        done["completion_tokens"] += 1
        yield delta


def _json(fields: dict) -> bool:
    return (fields.get("response_format") or {}).get("type") in ("json_object", "json_schema")


def _as_json(text: str, fields: dict) -> str:
    """The answer as JSON: ``text`` itself if it is a JSON object (a scripted subclass),
    else ``text`` under each property of a ``json_schema`` (``answer`` without one)."""
    try:
        if isinstance(json.loads(text), dict):
            return text
    except ValueError:
        pass
    schema = (fields["response_format"].get("json_schema") or {}).get("schema") or {}
    return json.dumps({name: text for name in schema.get("properties") or ["answer"]})


def _text(message: Message) -> str:
    content = message.get("content") or ""
    return content if isinstance(content, str) else "".join(p.get("text", "") for p in content)


def _logprob(token: str, fields: dict) -> dict:
    entry = {"token": token, "logprob": -0.5, "bytes": list(token.encode())}
    return {**entry, "top_logprobs": [entry] * int(fields.get("top_logprobs") or 0)}
