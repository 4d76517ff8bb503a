"""Install the API on the app: routers, error shapes, metrics, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from app.api.catalog import ModelCatalog
from app.api.errors import error_response, openai_error
from app.api.guard import Admission, Auth, Metrics, timer
from app.api.openai_routes import build_openai_router
from app.api.resource_routes import build_resource_router
from app.chat import ChatService
from app.settings import Settings
from indexing.errors import RagtuneError
from indexing.pipeline import IngestPipeline
from indexing.store import VectorStore
from training.registry import AdapterRegistry

MEASURED_PREFIXES = ("/v1/", "/healthz", "/metrics")
OPENAI_PATHS = ("/v1/chat/completions",)


def _field_errors(exc: RequestValidationError) -> str:
    """'body.messages: Field required; ...' from pydantic's error list."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            position = error.get("loc", ("body", "?"))[-1]
            parts.append(
                f"body: malformed JSON at position {position} "
                f"({error.get('ctx', {}).get('error', 'invalid')})"
            )
            continue
        where = ".".join(str(p) for p in error.get("loc", ()))
        parts.append(f"{where}: {error.get('msg', 'invalid')}")
    return "; ".join(parts) or "invalid request"


def install_api(
    app: FastAPI,
    settings: Settings,
    chat: ChatService,
    store: VectorStore,
    registry: AdapterRegistry,
    pipeline: Callable[[], IngestPipeline],
) -> Metrics:
    """Add the /v1 routes, health, metrics and error handlers to ``app``; returns its metrics."""
    metrics = Metrics()
    auth = Auth(settings.api.keys)
    admission = Admission(
        settings.api.max_concurrent, settings.api.max_queue, metrics, settings.api.retry_after_s
    )
    catalog = ModelCatalog(registry, store, settings.generator.served_name)
    app.include_router(build_openai_router(chat, catalog, admission, metrics, settings.api, auth))
    app.include_router(build_resource_router(settings, store, registry, pipeline, auth))
    app.state.admission = admission
    install_error_handlers(app, metrics)

    @app.middleware("http")
    async def measure(request: Request, call_next):
        started = timer()
        response = await call_next(request)
        path = request.url.path
        if path.startswith(MEASURED_PREFIXES):
            route = request.scope.get("route")
            metrics.observe(getattr(route, "path", path), response.status_code, timer() - started)
        return response

    @app.get("/healthz")
    def healthz() -> JSONResponse:
        """200 when the generator and the vector store answer, else 503 saying which does not."""
        generator_ok = chat.generator.health()
        store_ok = store.is_up()
        ok = generator_ok and store_ok
        body = {
            "status": "ok" if ok else "degraded",
            "generator": generator_ok,
            "vector_store": store_ok,
        }
        return JSONResponse(body, status_code=200 if ok else 503)

    @app.get("/metrics", dependencies=[Depends(auth)])
    def prometheus() -> Response:
        """Prometheus text format."""
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(metrics.registry), media_type=CONTENT_TYPE_LATEST)

    return metrics


def install_error_handlers(app: FastAPI, metrics: Metrics) -> None:
    """Answer every error in OpenAI's error shape, counted in ``metrics.errors``.

    A ``RagtuneError`` is answered from its own status, type, label and param
    (``app.api.errors``): this is the API's one mapping of the errors a user can fix.
    """

    @app.exception_handler(RagtuneError)
    def user_error(request: Request, exc: RagtuneError) -> JSONResponse:
        return error_response(exc, metrics)

    @app.exception_handler(RequestValidationError)
    def invalid(request: Request, exc: RequestValidationError) -> JSONResponse:
        """422 naming the field; 400 on the OpenAI routes, as OpenAI clients expect."""
        metrics.errors.labels("validation").inc()
        fields = [".".join(str(p) for p in e.get("loc", ())) for e in exc.errors()]
        param = fields[0] if fields else None
        if request.url.path in OPENAI_PATHS:
            param = param.removeprefix("body.") if param else None
            return openai_error(400, _field_errors(exc), "invalid_request_error", param=param)
        return openai_error(422, _field_errors(exc), "invalid_request_error", param=param)

    @app.exception_handler(HTTPException)
    def http_error(request: Request, exc: HTTPException) -> JSONResponse:
        return openai_error(
            exc.status_code, str(exc.detail), "invalid_request_error", headers=exc.headers
        )
