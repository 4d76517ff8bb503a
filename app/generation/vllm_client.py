"""Generator backed by a vLLM OpenAI-compatible server, local or remote.

Only the HTTP API is used, so pointing ``generator.url`` at a GPU box needs no code
change. The server applies the model's chat template; deltas stream back over SSE.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai

from app.generation.base import GenerationParams, GeneratorError, GeneratorUnavailable, Message, ModelNotServed


class VLLMGenerator:
    """Streams chat completions from a vLLM server; adapters are addressed by name."""

    def __init__(self, base_url: str, served_name: str, timeout_s: float = 300) -> None:
        self.base_url = base_url.rstrip("/")
        self.served_name = served_name
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key="EMPTY", timeout=timeout_s, max_retries=0
        )

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Yield text deltas; connection problems become ``GeneratorUnavailable``."""
        extra = {"seed": params.seed} if params.seed is not None else {}
        if params.extra:
            extra["extra_body"] = dict(params.extra)
        try:
            response = self.client.chat.completions.create(
                model=adapter or self.served_name,
                messages=messages,
                temperature=params.temperature,
                max_tokens=params.max_tokens,
                stream=True,
                **extra,
            )
            try:
                for event in response:
                    if event.choices and event.choices[0].delta.content:
                        yield event.choices[0].delta.content
            finally:  # also when the consumer stops early: closing the connection aborts it in vLLM
                response.close()
        except (openai.APIConnectionError, httpx.TransportError) as exc:
            raise GeneratorUnavailable(
                f"the vLLM server at {self.base_url} is not reachable ({exc.__class__.__name__}); "
                "start it with `ragtune serve` or set generator.url"
            ) from None
        except openai.NotFoundError:
            raise ModelNotServed(
                f"the server does not know model {adapter or self.served_name!r} "
                f"(it serves: {', '.join(self.models()) or 'nothing'})"
            ) from None
        except openai.APIStatusError as exc:
            raise GeneratorError(f"the vLLM server refused the request: {exc.message}") from None

    def health(self) -> bool:
        """True when the server answers ``/health``."""
        root = self.base_url.removesuffix("/v1")
        try:
            return httpx.get(f"{root}/health", timeout=5).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        """Model and adapter names the server serves."""
        try:
            return [m.id for m in self.client.models.list().data]
        except (openai.APIError, httpx.HTTPError):
            return []
