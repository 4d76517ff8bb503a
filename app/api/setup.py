"""Install the API on the app: routers, error shapes, metrics, ``/healthz`` and ``/metrics``."""

from __future__ import annotations

from collections.abc import Callable

from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response

from app.api.catalog import ModelCatalog
from app.api.guard import Admission, Auth, Metrics, timer
from app.api.openai_routes import build_openai_router, openai_error
from app.api.resource_routes import build_resource_router
from app.chat import ChatService
from app.generation.base import GeneratorError, GeneratorRefused, GeneratorUnavailable
from app.settings import Settings
from app.uploads import UploadError
from indexing.pipeline import IngestPipeline
from indexing.store import EmbedderMismatch, StoreError, VectorStore
from training.registry import AdapterRegistry, RegistryError

MEASURED_PREFIXES = ("/v1/", "/healthz", "/metrics")
OPENAI_PATHS = ("/v1/chat/completions",)


def _field_errors(exc: RequestValidationError) -> str:
    """'body.messages: Field required; ...' from pydantic's error list."""
    parts = []
    for error in exc.errors():
        if error.get("type") == "json_invalid":
            position = error.get("loc", ("body", "?"))[-1]
            parts.append(
                f"body: malformed JSON at position {position} ({error.get('ctx', {}).get('error', 'invalid')})"
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
    admission = Admission(settings.api.max_concurrent, settings.api.max_queue, metrics)
    catalog = ModelCatalog(registry, store, settings.generator.served_name)
    app.include_router(build_openai_router(chat, catalog, admission, metrics, settings.api, auth))
    app.include_router(build_resource_router(settings, store, registry, pipeline, auth))
    app.state.admission = admission

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
        try:
            store.client.heartbeat()
            store_ok = True
        except Exception:  # noqa: BLE001 (any failure to reach Chroma is "down" here)
            store_ok = False
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

    def handler(status: int, kind: str, label: str):
        def handle(request: Request, exc: Exception) -> JSONResponse:
            metrics.errors.labels(label).inc()
            return openai_error(status, str(exc), kind)

        return handle

    app.add_exception_handler(EmbedderMismatch, handler(409, "conflict", "embedder_mismatch"))
    app.add_exception_handler(StoreError, handler(400, "invalid_request_error", "store"))
    app.add_exception_handler(RegistryError, handler(404, "not_found", "registry"))
    app.add_exception_handler(
        GeneratorUnavailable, handler(503, "generator_unavailable", "generator_unavailable")
    )
    app.add_exception_handler(GeneratorError, handler(502, "generator_error", "generator_error"))

    @app.exception_handler(GeneratorRefused)
    def refused(request: Request, exc: GeneratorRefused) -> JSONResponse:
        metrics.errors.labels("engine_refused").inc()
        return openai_error(400, str(exc), "invalid_request_error", param=exc.param)

    @app.exception_handler(UploadError)
    def upload_error(request: Request, exc: UploadError) -> JSONResponse:
        metrics.errors.labels("upload").inc()
        return openai_error(exc.status, str(exc), "invalid_upload")

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

    return metrics
