"""Build components from settings; the only place that picks implementations.

Each builder branches on a ``mode`` setting and imports inside the branch, so an
unused backend's dependencies are never imported. Services receive what these return.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from app.chat import ChatService
from app.generation.base import GenerationParams, Generator
from app.generation.repetition import RepetitionGuard
from app.settings import Settings
from indexing.embedding import Embedder
from indexing.pipeline import IngestPipeline
from indexing.retrieval import RETRIEVER_KINDS, Retriever, make_retriever
from indexing.store import VectorStore
from training.qa_dataset import DatasetStore
from training.registry import AdapterRegistry

if TYPE_CHECKING:
    from app.adapters import AdapterService


def generator_url(settings: Settings) -> str:
    """OpenAI base URL of the generator: the remote one if set, else the local engine's."""
    from app.generation.vllm_client import local_url

    g = settings.generator
    return (g.url or local_url(g)).rstrip("/")


def build_registry(settings: Settings) -> AdapterRegistry:
    """The adapter registry."""
    return AdapterRegistry(settings.adapters_root)


def build_adapter_service(
    settings: Settings, registry: AdapterRegistry | None = None
) -> AdapterService:
    """Adapter loading and routing: LoRA into the vLLM server, other kinds into
    transformers + peft."""
    from app.adapters import AdapterService
    from app.generation.peft_backend import PeftGenerator
    from app.generation.vllm_client import VLLMGenerator

    registry = registry or build_registry(settings)
    vllm = VLLMGenerator(
        generator_url(settings),
        settings.generator.served_name,
        settings.generator.request_timeout_s,
    )
    return AdapterService(registry, vllm, PeftGenerator(registry))


def build_generator(settings: Settings, adapters: AdapterService | None = None) -> Generator:
    """The configured generator backend, routing through ``adapters`` (built here when None)."""
    if settings.generator.mode == "fake":
        from app.generation.fake import FakeGenerator

        return FakeGenerator()
    from app.adapters import RoutingGenerator
    from app.generation.vllm_client import VLLMGenerator

    g = settings.generator
    routes = {name: VLLMGenerator(url, name, g.request_timeout_s) for name, url in g.routes.items()}
    return RoutingGenerator(adapters or build_adapter_service(settings), routes)


def build_generator_and_adapters(
    settings: Settings, registry: AdapterRegistry | None = None
) -> tuple[Generator, AdapterService | None]:
    """The web app's generator and the one adapter service it routes through (for the UI too).

    The service is None in fake mode: there is no engine to load adapters into.
    """
    if settings.generator.mode == "fake":
        return build_generator(settings), None
    adapters = build_adapter_service(settings, registry)
    return build_generator(settings, adapters), adapters


def generation_params(settings: Settings) -> GenerationParams:
    """Default sampling parameters from the settings; penalties that are on go in ``extra``."""
    g = settings.generator
    neutral = {"frequency_penalty": 0.0, "presence_penalty": 0.0, "repetition_penalty": 1.0}
    extra = {name: getattr(g, name) for name, off in neutral.items() if getattr(g, name) != off}
    return GenerationParams(
        temperature=g.temperature, max_tokens=g.max_tokens, seed=g.seed, extra=extra or None
    )


def repetition_guard(settings: Settings) -> RepetitionGuard | None:
    """The loop guard of chat answers; None when ``generator.loop_guard_min_distinct`` is 0."""
    g = settings.generator
    if g.loop_guard_min_distinct <= 0:
        return None
    return RepetitionGuard(
        ngram=g.loop_guard_ngram, window=g.loop_guard_window, min_distinct=g.loop_guard_min_distinct
    )


def build_store(settings: Settings) -> VectorStore:
    """The Chroma store (embedded or http)."""
    return VectorStore(
        settings.vector_store,
        settings.chroma_dir,
        settings.indexes_dir,
        bm25_language=settings.indexing.bm25_language,
    )


def build_embedder(settings: Settings) -> Embedder:
    """The embedder (loads its model on first use)."""
    return Embedder(settings.embedding, cache_dir=settings.models_dir)


def build_ingest_pipeline(
    settings: Settings, store: VectorStore | None = None, embedder: Embedder | None = None
) -> IngestPipeline:
    """The ingest pipeline over the configured store and embedder."""
    return IngestPipeline(
        store or build_store(settings), embedder or build_embedder(settings), settings.indexing
    )


def build_chat_service(
    settings: Settings,
    *,
    generator: Generator | None = None,
    store: VectorStore | None = None,
    embedder: Embedder | None = None,
) -> ChatService:
    """The chat service with the configured generator and all three retrievers."""
    store = store or build_store(settings)
    embedder = embedder or build_embedder(settings)
    return ChatService(
        generator or build_generator(settings),
        build_retrievers(settings, store, embedder),
        settings.prompting,
        generation_params(settings),
        settings.indexing.default_collection,
        settings.indexing.retriever,
        guard=repetition_guard(settings),
        tuned=store.tuned_retrieval,
        datasets=DatasetStore(settings.datasets_dir),
    )


def build_retrievers(
    settings: Settings, store: VectorStore, embedder: Embedder
) -> dict[str, Retriever]:
    """Dense, BM25 and hybrid retrievers over one store, by name."""
    return {
        kind: make_retriever(
            kind,
            store,
            embedder,
            fusion=settings.indexing.hybrid_fusion,
            alpha=settings.indexing.hybrid_alpha,
            rrf_k=settings.indexing.rrf_k,
            candidates=settings.indexing.hybrid_candidates,
        )
        for kind in RETRIEVER_KINDS
    }
