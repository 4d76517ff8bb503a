"""The engine's chunks, as OpenAI clients expect them: assembled, trimmed, renamed.

The engine (vLLM) adds fields of its own (``stop_reason``, ``token_ids``, ``kv_transfer_params``
...); only OpenAI's fields are kept, ``model`` becomes the name the client asked for, and
RAG answers gain a top-level ``sources`` field (OpenAI clients ignore it).
"""

from __future__ import annotations

from openai.lib.streaming.chat import ChatCompletionStreamState
from openai.types.chat import ChatCompletionChunk

from app.generation.base import GeneratorError

TOP = ("id", "object", "created", "model", "system_fingerprint", "choices", "usage")
CHOICE = ("index", "message", "delta", "logprobs", "finish_reason")
MESSAGE = ("role", "content", "refusal", "tool_calls")
TOOL_CALL = ("index", "id", "type", "function")
FUNCTION = ("name", "arguments")
USAGE = (
    "prompt_tokens",
    "completion_tokens",
    "total_tokens",
    "prompt_tokens_details",
    "completion_tokens_details",
)


def _keep(obj: dict, keys: tuple[str, ...]) -> dict:
    return {k: obj[k] for k in keys if k in obj}


def _message(message: dict, *, delta: bool) -> dict:
    kept = _keep(message, MESSAGE)
    calls = message.get("tool_calls")
    if calls:
        keys = TOOL_CALL if delta else TOOL_CALL[1:]  # a finished message's calls have no index
        kept["tool_calls"] = [
            {**_keep(c, keys), "function": _keep(c.get("function") or {}, FUNCTION)} for c in calls
        ]
        if not delta and not kept.get("content"):
            kept["content"] = None  # as OpenAI answers a tool call
    elif "tool_calls" in kept:
        kept.pop("tool_calls")
    return kept


def shape(obj: dict, model: str, sources: list[dict] | None = None) -> dict:
    """A ``chat.completion`` or ``chat.completion.chunk`` with OpenAI's fields only."""
    shaped = _keep(obj, TOP)
    shaped["model"] = model
    choices = []
    for choice in obj.get("choices") or []:
        kept = _keep(choice, CHOICE)
        kept.setdefault("logprobs", None)
        for key in ("message", "delta"):
            if key in kept:
                kept[key] = _message(kept[key] or {}, delta=key == "delta")
        choices.append(kept)
    shaped["choices"] = choices
    if obj.get("usage"):
        shaped["usage"] = {k: v for k, v in _keep(obj["usage"], USAGE).items() if v is not None}
    elif "usage" in shaped:
        shaped.pop("usage")
    if sources is not None:
        shaped["sources"] = sources
    return shaped


def assemble(chunks: list[dict]) -> dict:
    """The ``chat.completion`` the chunks of one streamed answer add up to (openai's
    own accumulator)."""
    if not chunks:
        raise GeneratorError("the engine answered with no chunk at all")
    state = ChatCompletionStreamState()
    for chunk in chunks:
        state.handle_chunk(ChatCompletionChunk.construct(**chunk))
    # the snapshot, not get_final_completion(): that one refuses answers cut at the length limit
    return state.current_completion_snapshot.model_dump(mode="json", exclude_unset=True)


def is_usage(chunk: dict) -> bool:
    """The final chunk of ``stream_options.include_usage``: no choices, only usage."""
    return not chunk.get("choices") and bool(chunk.get("usage"))
