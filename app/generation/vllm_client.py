"""The one client of a vLLM OpenAI-compatible server, local or remote: all HTTP to the engine.

Only the HTTP API is used, so pointing ``generator.url`` at a GPU box needs no code
change. Chat completions go through the ``openai`` client: the server applies the
model's chat template and deltas stream back over SSE; the API's call
(``complete_stream``) hands the client's OpenAI fields to the engine and returns its
chunks as dicts, and an engine 4xx becomes ``GeneratorRefused``. The engine's own routes
(``/health``, ``/tokenize``, ``/v1/models`` with each model's root, runtime LoRA loading)
go through ``httpx``. The engine's URL is built by ``local_url`` and split into the
OpenAI base and the server root in ``VLLMGenerator.__init__``, nowhere else.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import openai

from app.generation.base import (
    GenerationParams,
    GeneratorError,
    GeneratorRefused,
    GeneratorUnavailable,
    Message,
    ModelNotServed,
    check_context,
    requested_length,
)
from app.settings import GeneratorSettings

# vLLM's name of a parameter in its 400s -> the request field the client sent
ENGINE_PARAMS = {"input_tokens": "messages", "logprobs": "top_logprobs"}
TOOL_FIELDS = ("tools", "tool_choice", "parallel_tool_calls")


def local_url(settings: GeneratorSettings) -> str:
    """OpenAI base URL (``http://host:port/v1``) of the local engine these settings start."""
    return f"http://{settings.host}:{settings.port}/v1"


class VLLMGenerator:
    """Chat completions from a vLLM server, and its engine routes; adapters are
    addressed by name."""

    def __init__(
        self, base_url: str, served_name: str, timeout_s: float = 300, api_key: str | None = None
    ) -> None:
        """``api_key`` is sent as the bearer token of OpenAI API calls (an endpoint
        that needs one)."""
        self.base_url = base_url.rstrip("/")  # the OpenAI base: chat completions, models
        self.root = self.base_url.removesuffix("/v1")  # the server: health, tokenize, LoRA
        self.served_name = served_name
        self.client = openai.OpenAI(
            base_url=self.base_url, api_key=api_key or "EMPTY", timeout=timeout_s, max_retries=0
        )

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Yield text deltas; connection problems become ``GeneratorUnavailable``."""
        extra = {"seed": params.seed} if params.seed is not None else {}
        if params.extra:
            extra["extra_body"] = dict(params.extra)
        with self._errors(adapter, {}):
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

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        """The engine's ``chat.completion.chunk`` dicts; closing the iterator aborts the
        request in vLLM."""
        with self._errors(adapter, fields):
            self._check_context(messages, fields)
            response = self.client.chat.completions.create(
                **self._request(messages, adapter, params, fields), stream=True
            )
            try:
                for event in response:
                    yield event.model_dump(mode="json", exclude_unset=True)
            finally:
                response.close()

    def _request(
        self, messages: list[Message], adapter: str | None, params: GenerationParams, fields: dict
    ) -> dict:
        """Keyword arguments of ``chat.completions.create``: defaults, then the client's
        fields over them."""
        body = {
            "temperature": params.temperature,
            **({"seed": params.seed} if params.seed is not None else {}),
            **(params.extra or {}),
            **fields,
        }
        if requested_length(fields) is None:
            body["max_tokens"] = params.max_tokens
        return {"model": adapter or self.served_name, "messages": messages, "extra_body": body}

    def _check_context(self, messages: list[Message], fields: dict) -> None:
        """Refuse prompt + requested ``max_tokens`` over the context (vLLM would shorten the
        answer silently).

        Counts with the engine's own ``/tokenize`` (chat template included); an engine
        without it leaves the check to the engine.
        """
        if requested_length(fields) is None:
            return
        body = {"model": self.served_name, "messages": messages, "add_generation_prompt": True}
        try:
            response = httpx.post(f"{self.root}/tokenize", json=body, timeout=30)
        except httpx.HTTPError:
            return  # the completion itself reports an unreachable engine
        if response.status_code == 200:
            counted = response.json()
            check_context(int(counted["count"]), int(counted["max_model_len"]), fields)
        elif response.status_code == 400:
            raise GeneratorRefused(f"messages: {_engine_message(response.json())}", "messages")

    @contextmanager
    def _errors(self, adapter: str | None, fields: dict):
        """Translate the client library's errors into the generator's."""
        try:
            yield
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
            if 400 <= exc.status_code < 500:
                raise _refusal(exc, fields) from None
            raise GeneratorError(
                f"the vLLM server failed the request: {_engine_message(exc.body, exc.message)}"
            ) from None
        except openai.APIError as exc:  # an error event in the middle of a stream
            raise GeneratorError(f"the vLLM server failed the request: {exc.message}") from None

    def health(self, timeout_s: float = 5) -> bool:
        """True when the server answers ``/health`` within ``timeout_s`` seconds."""
        try:
            return httpx.get(f"{self.root}/health", timeout=timeout_s).status_code == 200
        except httpx.HTTPError:
            return False

    def models(self) -> list[str]:
        """Model and adapter names the server serves."""
        try:
            return [m.id for m in self.client.models.list().data]
        except (openai.APIError, httpx.HTTPError):
            return []

    def served_model(self) -> str:
        """The model path the server runs as ``served_name`` (its base model, ``/v1/models`` root).

        Raises ``GeneratorError`` when the server cannot be asked or does not serve ``served_name``.
        """
        try:
            data = httpx.get(f"{self.base_url}/models", timeout=10).json()["data"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise GeneratorError(f"cannot ask the vLLM server which model it runs: {exc}") from None
        for entry in data:
            if entry["id"] == self.served_name:
                return entry.get("root") or entry["id"]
        raise GeneratorError(f"the vLLM server does not serve {self.served_name!r}")

    def load_lora(self, name: str, folder: str) -> None:
        """Hot-load the LoRA adapter in ``folder`` (an absolute path) as model ``name``.

        Uses vLLM's runtime LoRA API (the engine runs with VLLM_ALLOW_RUNTIME_LORA_UPDATING).
        Raises ``GeneratorError`` with the engine's answer when it refuses,
        ``GeneratorUnavailable`` when it cannot be reached.
        """
        body = {"lora_name": name, "lora_path": folder}
        self._lora_call("load_lora_adapter", body, 120, f"the vLLM server refused adapter {name!r}")

    def unload_lora(self, name: str) -> None:
        """Remove LoRA adapter ``name`` from the server; errors as ``load_lora``."""
        body = {"lora_name": name}
        self._lora_call(
            "unload_lora_adapter", body, 60, f"the vLLM server could not unload {name!r}"
        )

    def _lora_call(self, route: str, body: dict, timeout_s: float, refused: str) -> None:
        try:
            response = httpx.post(f"{self.root}/v1/{route}", json=body, timeout=timeout_s)
        except httpx.TransportError as exc:
            raise GeneratorUnavailable(
                f"the vLLM server at {self.base_url} is not reachable ({exc.__class__.__name__})"
            ) from None
        if response.status_code != 200:
            raise GeneratorError(f"{refused}: {response.text[:300]}")


def _engine_message(body: object, fallback: str = "") -> str:
    """The message of an OpenAI-shaped error body (``{"error": {...}}`` or the inner dict)."""
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return fallback or str(body)


def _refusal(exc: openai.APIStatusError, fields: dict) -> GeneratorRefused:
    """The engine's 4xx as a refusal naming the client's field."""
    message = _engine_message(exc.body, exc.message)
    if any(fields.get(name) is not None for name in TOOL_FIELDS) and "tool" in message.lower():
        return GeneratorRefused(
            f"tools: this engine cannot honour tools / tool_choice (vLLM: {message}); an engine "
            "started with --enable-auto-tool-choice --tool-call-parser <parser>"
            " (generator.extra_args) can",
            "tools",
        )
    param = getattr(exc, "param", None)
    param = ENGINE_PARAMS.get(param, param)
    if param is None and fields.get("n", 1) != 1 and message.startswith("n "):
        param = "n"
    return GeneratorRefused(f"{param}: {message}" if param else message, param)
