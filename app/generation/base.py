"""The generator interface every backend implements (vLLM server, transformers+peft, fake).

Two calls per backend:

- ``stream`` hands over chat messages and yields text deltas as they are produced, so the
  same code streams to the terminal, the Gradio chat and the web UI;
- ``complete_stream`` serves the OpenAI-compatible API: it takes the client's OpenAI
  request fields as well and yields the engine's ``chat.completion.chunk`` dicts, with
  every choice, ``finish_reason``, ``usage``, ``logprobs`` and ``tool_calls`` the engine
  produced (the API assembles non-streamed answers from them, so a timeout or a client
  that leaves aborts the generation either way). A field the backend cannot honour
  raises ``GeneratorRefused`` naming it, before the first chunk.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from indexing.errors import RagtuneError

Message = dict


class GeneratorError(RagtuneError, RuntimeError):
    """Generation failed for a reason the user can act on; the message says which."""

    status = 502
    error_type = "generator_error"
    label = "generator_error"


class GeneratorUnavailable(GeneratorError):
    """The generator backend cannot be reached (server down, not started)."""

    status = 503
    error_type = "generator_unavailable"
    label = "generator_unavailable"


class ModelNotServed(GeneratorError):
    """The server does not (or no longer, after a restart) serve the requested model or adapter."""


class GeneratorRefused(GeneratorError):
    """The request is the client's mistake (the engine answered 4xx, or a field cannot be honoured).

    ``param`` names the request field at fault (``max_tokens``, ``messages``, ``tools``...);
    the API answers 400 with the message, never 5xx.
    """

    status = 400
    error_type = "invalid_request_error"
    label = "engine_refused"

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message, param=param)


@dataclass
class GenerationParams:
    """Sampling controls of one request."""

    temperature: float = 0.2
    max_tokens: int = 256
    seed: int | None = None
    extra: dict | None = (
        None  # engine-specific sampling options (vLLM: top_p, min_tokens, ignore_eos, stop...)
    )


class Generator(Protocol):
    """Generates chat completions, optionally through a named adapter.

    In ``complete_stream``, ``fields`` are the OpenAI request fields the
    client set (``n``, ``logprobs``, ``response_format``, ``stop``, ``max_tokens``...),
    which override ``params`` (the server's defaults, ``extra`` included). When
    ``fields`` holds ``max_tokens`` or ``max_completion_tokens``, a prompt plus that many
    tokens over the model's context raises ``GeneratorRefused`` instead of a shortened answer.
    """

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]: ...

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]: ...

    def health(self) -> bool: ...

    def models(self) -> list[str]: ...


LENGTH_FIELDS = ("max_completion_tokens", "max_tokens")


def requested_length(fields: dict) -> tuple[str, int] | None:
    """The completion-length field the client set and its value
    (``max_completion_tokens`` first)."""
    for name in LENGTH_FIELDS:
        if fields.get(name) is not None:
            return name, int(fields[name])
    return None


def check_context(prompt_tokens: int, limit: int, fields: dict) -> None:
    """Refuse a prompt over the context, or a prompt plus the requested length over it.

    ``prompt_tokens`` is the prompt after the chat template; ``limit`` the model's context
    in tokens. Raises ``GeneratorRefused`` naming ``messages`` or the length field.
    """
    if prompt_tokens > limit:
        raise GeneratorRefused(
            f"messages: the prompt is {prompt_tokens} tokens, over the model's context "
            f"of {limit} tokens; shorten the messages",
            "messages",
        )
    asked = requested_length(fields)
    if asked and prompt_tokens + asked[1] > limit:
        name, value = asked
        raise GeneratorRefused(
            f"{name}: {prompt_tokens} prompt tokens + {name}={value} = {prompt_tokens + value} "
            f"tokens, over the model's context of {limit} tokens; ask for at most "
            f"{max(limit - prompt_tokens, 0)}",
            name,
        )
