"""OpenAI ``chat.completion.chunk`` dicts for backends that produce plain text.

The vLLM engine answers in this shape itself; the transformers+peft backend and the fake
generator build them here from their text, so the API treats every backend alike.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator


def new_id() -> str:
    """A completion id in OpenAI's style."""
    return f"chatcmpl-{uuid.uuid4().hex[:24]}"


def usage(prompt_tokens: int, completion_tokens: int) -> dict:
    """The ``usage`` object."""
    return {
        "prompt_tokens": prompt_tokens,
        "completion_tokens": completion_tokens,
        "total_tokens": prompt_tokens + completion_tokens,
    }


def chunk_head(model: str) -> dict:
    """The fields every chunk of one completion shares."""
    return {
        "id": new_id(),
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
    }


def chunks(head: dict, deltas: Iterator[str], finish: dict, include_usage: bool) -> Iterator[dict]:
    """The chunks of one streamed choice: role, each text delta, the finish, then usage if asked.

    ``head`` comes from ``chunk_head``; ``finish`` is filled by the producer once
    ``deltas`` is exhausted: ``finish_reason``, ``prompt_tokens`` and ``completion_tokens``.
    """

    def chunk(delta: dict, finish_reason: str | None = None) -> dict:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}
        return {**head, "choices": [choice]}

    yield chunk({"role": "assistant", "content": ""})
    for delta in deltas:
        yield chunk({"content": delta})
    yield chunk({}, finish.get("finish_reason", "stop"))
    if include_usage:
        tokens = usage(finish.get("prompt_tokens", 0), finish.get("completion_tokens", 0))
        yield {**head, "choices": [], "usage": tokens}
