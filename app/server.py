"""The app factory: one FastAPI app with the Gradio workbench mounted at ``/``.

Everything the web process holds (settings, store, embedder, generator, services) is
built here and nowhere else, so tests can build an app on fake components.
"""

from __future__ import annotations

import gradio as gr
from fastapi import FastAPI

from app.chat import ChatService
from app.components import (
    build_chat_service,
    build_embedder,
    build_generator,
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
    store = build_store(settings)
    generator = build_generator(settings)
    chat = chat or build_chat_service(
        settings, generator=generator, store=store, embedder=build_embedder(settings)
    )
    api = FastAPI(title="ragtune")

    @api.get("/healthz")
    def healthz() -> dict:
        generator_ok = chat.generator.health()
        return {"status": "ok" if generator_ok else "degraded", "generator": generator_ok}

    variants = load_variants(settings.variants_file) if settings.variants_file.exists() else {}
    votes = VoteStore(settings.data_dir / "votes.sqlite3")
    ui = build_ui(chat, store, build_registry(settings), variants, votes)
    return gr.mount_gradio_app(api, ui, path="/")
