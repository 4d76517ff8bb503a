"""How an error becomes an API answer: OpenAI's error body, the status, the metric.

Every ``RagtuneError`` is answered from its own attributes (``status``, ``error_type``,
``label``, ``param``, ``headers``, ``details``; see ``indexing.errors``), by the one
exception handler ``app.api.setup`` installs, or as the last event of a stream that had
already begun. Nothing here knows an error class by name.
"""

from __future__ import annotations

from typing import Any

from fastapi.responses import JSONResponse

from app.api.guard import Metrics
from indexing.errors import RagtuneError


def openai_error(
    status: int, message: str, kind: str, headers: dict | None = None, **extra: Any
) -> JSONResponse:
    """An error body in OpenAI's shape: ``{"error": {"message", "type", "code", ...extra}}``."""
    body = {"error": {"message": message, "type": kind, "code": status, **extra}}
    return JSONResponse(body, status_code=status, headers=headers)


def error_body(exc: RagtuneError, metrics: Metrics) -> dict[str, dict[str, Any]]:
    """``{"error": {message, type, code, param, ...details}}`` for ``exc``, counted under its label.

    ``code`` is the HTTP status, as in every error body this API sends.
    """
    metrics.errors.labels(exc.label).inc()
    fields = {
        "message": exc.user_message,
        "type": exc.error_type,
        "code": exc.status,
        "param": exc.param,
    }
    return {"error": fields | (exc.details or {})}


def error_response(exc: RagtuneError, metrics: Metrics) -> JSONResponse:
    """The answer to ``exc``: its status and headers, the OpenAI error body (counted)."""
    return JSONResponse(error_body(exc, metrics), status_code=exc.status, headers=exc.headers)
