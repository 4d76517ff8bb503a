"""``POST /v1/chat/completions`` and ``GET /v1/models``, as OpenAI clients expect them.

Every request field is honoured or refused with a 400 naming it (``app.api.fields``).
The engine's answer comes back as it produced it: every choice of ``n``, its
``finish_reason``, real ``usage``, ``logprobs``, ``tool_calls``. Non-streamed answers are
assembled from the same chunks, so a timeout or a client that leaves aborts the generation
either way. A streamed request is answered only once the engine has accepted it, so an
engine's 4xx (context too long, ``n`` with greedy sampling...) is a 400, not an error
event after a 200. RAG answers carry their sources in an extra top-level ``sources`` field
(in the first chunk when streaming), which OpenAI clients ignore and ragtune clients read.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace

from fastapi import APIRouter, Depends, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.bridge import abortable
from app.api.catalog import ModelCatalog, Target
from app.api.errors import error_body
from app.api.fields import FieldRefused, check_request, engine_fields, wants_usage
from app.api.guard import Admission, Metrics
from app.api.schemas import ChatCompletionRequest
from app.api.shaping import assemble, is_usage, shape
from app.chat import ChatService
from app.generation.base import GeneratorError
from app.settings import APISettings
from indexing.errors import RagtuneError
from indexing.store import StoreError


def source_records(sources) -> list[dict]:
    """Sources as JSON (what a client needs to show a citation)."""
    return [
        {
            "index": i,
            "source": s.source,
            "page": s.page,
            "heading": s.heading,
            "score": round(s.score, 4),
            "text": s.text,
            "also_in": list(s.also_in),
        }
        for i, s in enumerate(sources, 1)
    ]


@dataclass
class _Reply:
    """What one completion needs besides the generator: names, sources, instruments."""

    target: Target
    sources: list[dict] | None
    metrics: Metrics

    def count(self, usage: dict | None, content_chunks: int) -> None:
        """Record generated tokens (the engine's usage; else one token per content chunk)."""
        tokens = (usage or {}).get("completion_tokens", content_chunks)
        self.metrics.tokens.labels(self.target.adapter or "base").inc(tokens)


class _ClosingStream(StreamingResponse):
    """A streaming response that runs ``on_close`` however it ends (even if never started)."""

    def __init__(self, content, on_close: Callable[[], Awaitable[None]], **kwargs) -> None:
        super().__init__(content, **kwargs)
        self.on_close = on_close

    async def __call__(self, scope, receive, send) -> None:
        try:
            await super().__call__(scope, receive, send)
        finally:
            await self.on_close()


def build_openai_router(
    chat: ChatService,
    catalog: ModelCatalog,
    admission: Admission,
    metrics: Metrics,
    settings: APISettings,
    auth,
) -> APIRouter:
    """The OpenAI-compatible routes over the chat service."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(auth)])

    @router.get("/models")
    def list_models() -> dict:
        """Servable model names: base, adapters, rag:<collection>."""
        created = int(time.time())
        return {
            "object": "list",
            "data": [
                {"id": n, "object": "model", "created": created, "owned_by": "ragtune"}
                for n in catalog.names()
            ],
        }

    @router.post("/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        """Chat with base, an adapter, or RAG over a collection; SSE when ``stream`` is true.

        Errors are ``RagtuneError``s, answered by the API's one handler (``app.api.errors``):
        an unknown model is a 404, a refused field a 400, a full queue a 503.
        """
        target = catalog.resolve(body.model)
        check_request(body)
        ticket = admission.enter()
        try:
            messages, sources = await run_in_threadpool(_messages_for, chat, target, body)
        except StoreError as exc:
            # the question cannot be looked up (too long, empty; an empty collection, one of
            # another embedder): the same error (its status stays), naming the field at fault
            ticket.release()
            exc.param = "model" if "collection" in str(exc) else "messages"
            exc.args = (f"{exc.param}: {exc}",)
            raise
        except BaseException:
            ticket.release()
            raise
        # the client's fields over the server's defaults (settings' sampling options included);
        # usage is always asked for, to count tokens, and passed on only when the client asked
        fields = {**engine_fields(body), "stream_options": {"include_usage": True}}
        params = replace(chat.params, seed=None)
        reply = _Reply(target, source_records(sources) if target.collection else None, metrics)

        def start():
            return chat.generator.complete_stream(
                messages, adapter=target.adapter, params=params, fields=fields
            )

        if not body.stream:
            return await _complete(start, ticket, reply, settings)
        await ticket.__aenter__()  # held until the stream ends, released by on_close
        stream = abortable(start, settings.request_timeout_s)
        started = time.monotonic()

        async def close() -> None:
            await stream.aclose()
            ticket.release()

        try:
            first = await anext(stream)  # the engine accepted the request (or refused it: a 4xx)
        except StopAsyncIteration:
            await close()
            raise GeneratorError("the engine answered with no chunk at all") from None
        except BaseException:
            await close()
            raise
        events = _sse(first, stream, reply, wants_usage(body), request, started)
        return _ClosingStream(
            events,
            close,
            media_type="text/event-stream",
            headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
        )

    return router


async def _complete(start, ticket, reply: _Reply, settings: APISettings) -> dict:
    """A non-streamed answer: the chunks assembled into one ``chat.completion``."""
    async with ticket:
        stream = abortable(start, settings.request_timeout_s)
        try:
            chunks = [chunk async for chunk in stream]
            completion = assemble(chunks)
        finally:
            await stream.aclose()
    reply.count(completion.get("usage"), len(chunks))
    return shape(completion, reply.target.name, reply.sources)


async def _sse(
    first: dict,
    stream: AsyncIterator[dict],
    reply: _Reply,
    client_usage: bool,
    request: Request,
    started: float,
) -> AsyncIterator[str]:
    """OpenAI chunk events, ending with ``[DONE]``; sources ride on the first chunk."""

    def event(payload: dict) -> str:
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    usage, contents = None, 0
    try:
        yield event(shape(first, reply.target.name, reply.sources))
        async for chunk in stream:
            if await request.is_disconnected():
                reply.metrics.errors.labels("client_disconnected").inc()
                return
            if is_usage(chunk):
                usage = chunk["usage"]
                if client_usage:
                    yield event(shape(chunk, reply.target.name))
                continue
            if any(c.get("delta", {}).get("content") for c in chunk.get("choices", [])):
                if contents == 0:
                    reply.metrics.first_token.observe(time.monotonic() - started)
                contents += 1
            yield event(shape(chunk, reply.target.name))
    except RagtuneError as exc:  # the answer has begun (200): the error is its last event
        yield event(error_body(exc, reply.metrics))
        return
    finally:
        reply.count(usage, contents)
    yield "data: [DONE]\n\n"


def _messages_for(chat: ChatService, target: Target, body: ChatCompletionRequest):
    """The messages sent to the generator, and the retrieved sources for RAG models.

    Zero-shot models (base, adapters) get the client's messages as they are. RAG and
    few-shot ones get the server's prompt for the last user message (its system prompt,
    then the sources or the demonstrations), with the client's earlier non-system turns
    before the question.
    """
    messages = [_engine_message(m) for m in body.messages]
    variant = target.variant
    if variant.mode == "zero-shot":
        return messages, []
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise FieldRefused(
            f"messages: a {variant.mode} model needs at least one user message (the question)",
            param="messages",
        )
    turn = chat.prepare(
        users[-1]["content"],
        mode=variant.mode,
        collection=variant.collection,
        k=variant.k,
        retriever=variant.retriever,
        fewshot_count=variant.fewshot_count,
        demos=variant.demos,
    )
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    history = [m for m in messages[:last_user] if m["role"] != "system"]
    return [*turn.messages[:-1], *history, turn.messages[-1]], turn.sources


def _engine_message(message) -> dict:
    """One message as the engine takes it: text content ("" for a bare tool call), developer as
    system, tool fields kept."""
    out = {
        "role": "system" if message.role == "developer" else message.role,
        "content": message.text(),
    }
    for key in ("name", "tool_calls", "tool_call_id"):
        if getattr(message, key) is not None:
            out[key] = getattr(message, key)
    return out
