"""The app factory: one FastAPI app with the Gradio workbench mounted at ``/``.

Everything the web process holds (settings, store, embedder, generator, services) is
built here and nowhere else, so tests can build an app on fake components.
"""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from app.api.guard import check_binding
from app.api.setup import install_api
from app.chat import ChatService
from app.components import (
    build_chat_service,
    build_embedder,
    build_generator,
    build_ingest_pipeline,
    build_registry,
    build_store,
)
from app.settings import Settings
from app.ui.arena_tab import build_arena_tabs
from app.ui.chat_tab import build_chat_tab
from app.variants import VariantRunner, load_variants
from evals.votes import VoteStore
from indexing.store import VectorStore
from training.registry import AdapterRegistry


def build_ui(
    chat: ChatService, store: VectorStore, registry: AdapterRegistry, variants: dict, votes: VoteStore
) -> gr.Blocks:
    """The Gradio workbench."""

    def adapters() -> list[str]:
        return registry.generative()

    with gr.Blocks(title="ragtune") as ui:
        gr.Markdown("## ragtune\nAsk your documents with RAG, few-shot or zero-shot prompts, with the base model or a tuned adapter.")
        with gr.Tab("Chat"):
            build_chat_tab(chat, store.collection_names, adapters)
        table, rows = build_arena_tabs(VariantRunner(chat), variants, votes)
        ui.load(rows, outputs=table)
    return ui


def create_app(settings: Settings, *, chat: ChatService | None = None) -> FastAPI:
    """FastAPI app with health endpoint and the Gradio UI at ``/``."""
    check_binding(settings.ui.host, settings.api)
    store = build_store(settings)
    embedder = build_embedder(settings)
    chat = chat or build_chat_service(settings, generator=build_generator(settings), store=store, embedder=embedder)
    api = FastAPI(title="ragtune", description="OpenAI-compatible chat over your documents and adapters.")
    registry = build_registry(settings)
    install_api(api, settings, chat, store, registry, lambda: build_ingest_pipeline(settings, store=store, embedder=embedder))
    variants = load_variants(settings.variants_file) if settings.variants_file.exists() else {}
    votes = VoteStore(settings.data_dir / "votes.sqlite3")
    ui = build_ui(chat, store, registry, variants, votes)
    return gr.mount_gradio_app(api, ui, path="/")
