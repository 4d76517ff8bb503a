"""``POST /v1/chat/completions`` and ``GET /v1/models``, as OpenAI clients expect them.

RAG answers carry their sources in an extra top-level ``sources`` field (in the first
chunk when streaming), which OpenAI clients ignore and ragtune clients read.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import aclosing

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from app.api.bridge import StreamTimeout, abortable
from app.api.catalog import ModelCatalog, Target, UnknownModel
from app.api.guard import Admission, Metrics, Overloaded
from app.api.schemas import ChatCompletionRequest
from app.chat import ChatService
from app.generation.base import GenerationParams, GeneratorError, GeneratorUnavailable
from app.settings import APISettings


# OpenAI and vLLM sampling fields handed to the engine as they are (others are ignored).
PASSED_THROUGH = {"top_p", "top_k", "min_p", "stop", "presence_penalty", "frequency_penalty",
                  "repetition_penalty", "min_tokens", "ignore_eos"}  # fmt: skip


def openai_error(status: int, message: str, kind: str, headers: dict | None = None, **extra) -> JSONResponse:
    """An error body in OpenAI's shape: ``{"error": {"message", "type", "code"}}``."""
    body = {"error": {"message": message, "type": kind, "code": status, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


def source_records(sources) -> list[dict]:
    """Sources as JSON (what a client needs to show a citation)."""
    return [{"index": i, "source": s.source, "page": s.page, "heading": s.heading,
             "score": round(s.score, 4), "text": s.text} for i, s in enumerate(sources, 1)]  # fmt: skip


def build_openai_router(chat: ChatService, catalog: ModelCatalog, admission: Admission, metrics: Metrics,
                        settings: APISettings, auth) -> APIRouter:  # fmt: skip
    """The OpenAI-compatible routes over the chat service."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(auth)])

    @router.get("/models")
    def list_models() -> dict:
        """Servable model names: base, adapters, rag:<collection>."""
        created = int(time.time())
        return {"object": "list",
                "data": [{"id": n, "object": "model", "created": created, "owned_by": "ragtune"} for n in catalog.names()]}  # fmt: skip

    @router.post("/chat/completions")
    async def chat_completions(body: ChatCompletionRequest, request: Request):
        """Chat with base, an adapter, or RAG over a collection; SSE when ``stream`` is true."""
        try:
            target = catalog.resolve(body.model)
        except UnknownModel as exc:
            metrics.errors.labels("unknown_model").inc()
            return openai_error(404, str(exc), "invalid_request_error", param="model", valid_models=exc.valid)
        try:
            ticket = admission.enter()
        except Overloaded:
            metrics.errors.labels("overloaded").inc()
            return openai_error(503, "the server is busy; retry later", "overloaded",
                                headers={"Retry-After": str(settings.retry_after_s)})  # fmt: skip
        try:
            messages, sources = await run_in_threadpool(_messages_for, chat, target, body)
        except Exception:
            ticket.release()
            raise
        params = GenerationParams(
            temperature=chat.params.temperature if body.temperature is None else body.temperature,
            max_tokens=body.max_completion_tokens or body.max_tokens or chat.params.max_tokens,
            seed=body.seed,
            extra={k: v for k, v in (body.model_extra or {}).items() if k in PASSED_THROUGH} or None,
        )
        completion_id = f"chatcmpl-{uuid.uuid4().hex[:24]}"

        def start():
            return chat.generator.stream(messages, adapter=target.adapter, params=params)

        if body.stream:
            events = _sse(start, ticket, target, sources, completion_id, metrics, settings, request)
            return StreamingResponse(events, media_type="text/event-stream",
                                     headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"})  # fmt: skip
        async with ticket:
            try:
                async with aclosing(abortable(start, settings.request_timeout_s)) as stream:
                    parts = [d async for d in stream]
            except StreamTimeout as exc:
                metrics.errors.labels("timeout").inc()
                return openai_error(504, str(exc), "timeout")
        text, tokens = "".join(parts), _count(metrics, target, len(parts))
        return {
            "id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": target.name,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 0, "completion_tokens": tokens, "total_tokens": tokens},
            **({"sources": source_records(sources)} if target.collection else {}),
        }  # fmt: skip

    return router


def _messages_for(chat: ChatService, target: Target, body: ChatCompletionRequest):
    """The messages sent to the generator, and the retrieved sources for RAG models."""
    messages = [{"role": "system" if m.role == "developer" else m.role, "content": m.text()} for m in body.messages]
    if not target.collection:
        return messages, []
    users = [m for m in messages if m["role"] == "user"]
    if not users:
        raise HTTPException(422, "a rag: model needs at least one user message (the question)")
    turn = chat.prepare(users[-1]["content"], mode="rag", collection=target.collection)
    last_user = max(i for i, m in enumerate(messages) if m["role"] == "user")
    history = [m for m in messages[:last_user] if m["role"] != "system"]
    return [turn.messages[0], *history, turn.messages[-1]], turn.sources


def _count(metrics: Metrics, target: Target, deltas: int) -> int:
    """Record generated tokens (vLLM streams one token per delta)."""
    metrics.tokens.labels(target.adapter or "base").inc(deltas)
    return deltas


async def _sse(start, ticket, target: Target, sources, completion_id: str, metrics: Metrics,
               settings: APISettings, request: Request) -> AsyncIterator[str]:  # fmt: skip
    """OpenAI chunk events; the ticket is held until the stream ends or the client leaves."""
    created = int(time.time())

    def chunk(delta: dict, finish: str | None = None, **extra) -> str:
        payload = {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": target.name,
                   "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra}  # fmt: skip
        return f"data: {json.dumps(payload, ensure_ascii=False)}\n\n"

    started = time.monotonic()
    deltas = 0
    async with ticket:
        extra = {"sources": source_records(sources)} if target.collection else {}
        yield chunk({"role": "assistant", "content": ""}, **extra)
        try:
            # aclosing: leaving the loop early must stop the generation now, not at garbage collection
            async with aclosing(abortable(start, settings.request_timeout_s)) as stream:
                async for delta in stream:
                    if await request.is_disconnected():
                        metrics.errors.labels("client_disconnected").inc()
                        return
                    if deltas == 0:
                        metrics.first_token.observe(time.monotonic() - started)
                    deltas += 1
                    yield chunk({"content": delta})
        except StreamTimeout as exc:
            metrics.errors.labels("timeout").inc()
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'timeout', 'code': 504}})}\n\n"
            return
        except GeneratorUnavailable as exc:
            metrics.errors.labels("generator_unavailable").inc()
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'generator_unavailable', 'code': 503}})}\n\n"
            return
        except GeneratorError as exc:
            metrics.errors.labels("generator_error").inc()
            yield f"data: {json.dumps({'error': {'message': str(exc), 'type': 'generator_error', 'code': 502}})}\n\n"
            return
        finally:
            _count(metrics, target, deltas)
        yield chunk({}, "stop")
        yield "data: [DONE]\n\n"
