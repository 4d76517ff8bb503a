"""``POST /v1/ingest``, ``GET /v1/collections``, ``GET /v1/adapters``."""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, UploadFile
from starlette.concurrency import run_in_threadpool

from app.settings import Settings
from app.uploads import store_upload
from indexing.pipeline import IngestPipeline
from indexing.store import VectorStore
from training.registry import AdapterRegistry


def build_resource_router(
    settings: Settings,
    store: VectorStore,
    registry: AdapterRegistry,
    pipeline: Callable[[], IngestPipeline],
    auth,
) -> APIRouter:
    """Routes for documents, collections and adapters."""
    router = APIRouter(prefix="/v1", dependencies=[Depends(auth)])

    @router.post("/ingest")
    async def ingest(
        files: Annotated[list[UploadFile], File()],
        collection: Annotated[str | None, Form()] = None,
        tags: Annotated[list[str] | None, Form()] = None,
    ) -> dict:
        """Upload files into a collection (created if needed); the same report
        as `ragtune ingest`."""
        name = collection or settings.indexing.default_collection
        paths = []
        for upload in files:
            paths.append(
                await run_in_threadpool(
                    store_upload,
                    upload.file,
                    upload.filename or "upload",
                    name,
                    settings.uploads_dir,
                    allowed=settings.api.upload_types,
                    max_mb=settings.api.max_upload_mb,
                )
            )
        report = await run_in_threadpool(
            lambda: pipeline().ingest(paths, name, tags=tags or None, show_progress=False)
        )
        return report.to_dict()

    @router.get("/collections")
    def collections() -> dict:
        """Every collection with chunk and file counts, embedder and chunking."""
        return {
            "object": "list",
            "data": [store.info(n).to_dict() for n in store.collection_names()],
        }

    @router.get("/adapters")
    def adapters() -> dict:
        """The adapter registry: one manifest per adapter, with its size."""
        rows = [m.to_dict() | {"size_bytes": registry.size_bytes(m.name)} for m in registry.list()]
        return {"object": "list", "data": rows}

    return router
