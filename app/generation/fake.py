"""A deterministic generator for unit tests: no model, no server."""

from __future__ import annotations

from collections.abc import Iterator

from app.generation.base import GenerationParams, Message


class FakeGenerator:
    """Answers by quoting the question and citing source [1] when sources are present."""

    def __init__(self) -> None:
        self.calls: list[list[Message]] = []

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        self.calls.append(messages)
        question = messages[-1]["content"]
        cite = " [1]" if "[1]" in question else ""
        words = f"Fake answer ({adapter or 'base'}) to: {question[-60:]}{cite}".split(" ")
        for index, word in enumerate(words[: params.max_tokens]):
            yield word if index == 0 else " " + word

    def health(self) -> bool:
        return True

    def models(self) -> list[str]:
        return ["base"]
