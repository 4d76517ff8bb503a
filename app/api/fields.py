"""What ``POST /v1/chat/completions`` does with each request field: honour, accept, or refuse.

- ``ENGINE`` fields go to the generator as the client sent them; the engine honours
  them or refuses them (its 4xx becomes a 400 naming the field, never a 5xx);
- ``METADATA`` fields are accepted and not used (``store`` only when false, since nothing
  is stored; ``modalities`` only ``["text"]``, the schema checks that);
- anything else, and any content part that is not text, is refused with a 400 naming it.

docs/deploy.md ("The API") lists the same; keep the two in step.
"""

from __future__ import annotations

from app.api.schemas import ChatCompletionRequest
from indexing.errors import RagtuneError

ENGINE = (
    "temperature",
    "top_p",
    "max_tokens",
    "max_completion_tokens",
    "n",
    "seed",
    "stop",
    "presence_penalty",
    "frequency_penalty",
    "logit_bias",
    "logprobs",
    "top_logprobs",
    "response_format",
    "tools",
    "tool_choice",
    "parallel_tool_calls",
    "top_k",
    "min_p",
    "repetition_penalty",
    "min_tokens",
    "ignore_eos",
)
METADATA = ("user", "metadata", "store", "safety_identifier", "prompt_cache_key", "modalities")
HINTS = {
    "functions": "use tools",
    "function_call": "use tool_choice",
    "audio": "the model writes text only",
    "prediction": "predicted outputs are not supported",
    "web_search_options": "this server has no web search; use a rag:<collection> model",
    "reasoning_effort": "the model does not reason in a separate channel",
}


class FieldRefused(RagtuneError, ValueError):
    """A request field this server does not honour; ``param`` names it (the API answers 400)."""

    label = "invalid_field"

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message, param=param)


def _set(extra: dict | None) -> list[str]:
    """Names of extra fields that carry a value (null means "not set", as in OpenAI's API)."""
    return [name for name, value in (extra or {}).items() if value is not None]


def check_request(body: ChatCompletionRequest) -> None:
    """Raise ``FieldRefused`` for the first field the server would otherwise ignore."""
    unknown = _set(body.model_extra)
    if unknown:
        name = unknown[0]
        hint = f" ({HINTS[name]})" if name in HINTS else ""
        raise FieldRefused(
            f"{', '.join(unknown)}: not supported by this server{hint}; it honours "
            f"{', '.join(ENGINE)}, stream, stream_options.include_usage, and accepts "
            f"{', '.join(METADATA)} as metadata",
            name,
        )
    for i, message in enumerate(body.messages):
        _check_message(i, message)
    if body.store:
        raise FieldRefused(
            "store: this server stores no completions; leave store out or false", "store"
        )
    _check_stream_options(body)
    if body.top_logprobs and not body.logprobs:
        raise FieldRefused("top_logprobs: needs logprobs: true", "top_logprobs")
    if body.tools is None:
        for name in ("tool_choice", "parallel_tool_calls"):
            if getattr(body, name) is not None:
                raise FieldRefused(f"{name}: only allowed when tools are given", name)


def _check_message(i: int, message) -> None:
    where = f"messages[{i}]"
    extra = _set(message.model_extra)
    if extra:
        raise FieldRefused(
            f"{where}.{extra[0]}: not a chat message field this server honours "
            "(role, content, name, tool_calls, tool_call_id)",
            f"{where}.{extra[0]}",
        )
    if isinstance(message.content, list):
        for j, part in enumerate(message.content):
            if part.type != "text":
                raise FieldRefused(
                    f"{where}.content[{j}]: {part.type!r} parts are not supported; the model "
                    "reads text only (send parts of type 'text')",
                    f"{where}.content[{j}].type",
                )
    if message.tool_calls is not None and message.role != "assistant":
        raise FieldRefused(
            f"{where}.tool_calls: only assistant messages carry tool_calls", f"{where}.tool_calls"
        )
    if message.content is None and not (message.role == "assistant" and message.tool_calls):
        raise FieldRefused(
            f"{where}.content: required (only an assistant message with tool_calls "
            "may leave it out)",
            f"{where}.content",
        )


def _check_stream_options(body: ChatCompletionRequest) -> None:
    options = body.stream_options
    if options is None:
        return
    if not body.stream:
        raise FieldRefused("stream_options: only allowed with stream: true", "stream_options")
    extra = _set(options.model_extra) + (
        ["include_obfuscation"] if options.include_obfuscation else []
    )
    if extra:
        raise FieldRefused(
            f"stream_options.{extra[0]}: not supported; stream_options.include_usage is",
            f"stream_options.{extra[0]}",
        )


def engine_fields(body: ChatCompletionRequest) -> dict:
    """The fields the client set that go to the engine, as JSON-ready values."""
    fields = body.model_dump(include=set(ENGINE), exclude_none=True)
    if "max_completion_tokens" in fields:  # the newer name wins, as in OpenAI's API
        fields.pop("max_tokens", None)
    return fields


def wants_usage(body: ChatCompletionRequest) -> bool:
    """True when a streaming client asked for the final usage chunk."""
    return bool(body.stream and body.stream_options and body.stream_options.include_usage)
