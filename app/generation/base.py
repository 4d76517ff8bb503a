"""The generator interface every backend implements (vLLM server, fake, peft later).

Callers hand over chat messages and get text deltas back as they are produced, so the
same code streams to the terminal, the Gradio chat and the HTTP API.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

Message = dict[str, str]


class GeneratorError(RuntimeError):
    """Generation failed for a reason the user can act on; the message says which."""


class GeneratorUnavailable(GeneratorError):
    """The generator backend cannot be reached (server down, not started)."""


class ModelNotServed(GeneratorError):
    """The server does not (or no longer, after a restart) serve the requested model or adapter."""


@dataclass
class GenerationParams:
    """Sampling controls of one request."""

    temperature: float = 0.2
    max_tokens: int = 256
    seed: int | None = None
    extra: dict | None = None  # engine-specific sampling options (vLLM: top_p, min_tokens, ignore_eos, stop...)


class Generator(Protocol):
    """Streams a chat completion, optionally through a named adapter."""

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]: ...

    def health(self) -> bool: ...

    def models(self) -> list[str]: ...
