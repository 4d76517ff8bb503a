"""The app factory: one FastAPI app with the Gradio workbench mounted at ``/``.

Everything the web process holds (settings, store, embedder, generator, services) is
built here and nowhere else, so tests can build an app on fake components.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

import gradio as gr
from fastapi import FastAPI

from app.api.guard import check_binding, ui_login
from app.api.setup import install_api
from app.chat import ChatService
from app.components import (
    build_chat_service,
    build_embedder,
    build_generator_and_adapters,
    build_ingest_pipeline,
    build_registry,
    build_store,
    generator_url,
)
from app.jobs import JobRunner, JobStore
from app.settings import Settings
from app.ui.adapters_tab import build_adapters_tab
from app.ui.arena_tab import build_arena_tabs
from app.ui.chat_tab import build_chat_tab
from app.ui.compare_tab import build_compare_tab
from app.ui.documents_tab import build_documents_tab
from app.ui.evaluate_tab import build_evaluate_tab
from app.ui.train_tab import build_train_tab
from app.variants import VariantRunner, load_variants
from evals.votes import VoteStore
from indexing.store import VectorStore
from training.registry import AdapterRegistry

if TYPE_CHECKING:
    from app.adapters import AdapterService

REPO = Path(__file__).resolve().parent.parent  # bundled configs, datasets and suites


def build_ui(
    chat: ChatService,
    store: VectorStore,
    registry: AdapterRegistry,
    variants: dict,
    votes: VoteStore,
    *,
    settings: Settings,
    jobs: JobStore,
    pipeline,
    adapter_service: AdapterService | None = None,
) -> gr.Blocks:
    """The Gradio workbench: chat, A/B, leaderboard, documents, training, adapters, evaluation.

    ``adapter_service`` loads adapters for the Adapters tab (None: no engine to load into).
    """

    def adapters() -> list[str]:
        return registry.generative()

    with gr.Blocks(title="ragtune") as ui:
        gr.Markdown(
            "## ragtune\nAsk your documents with RAG, few-shot or zero-shot prompts, with the base "
            "model or a tuned adapter; ingest documents, train and compare adapters."
        )
        with gr.Tab("Chat"):
            build_chat_tab(chat, store.collection_names, adapters)
        table, rows = build_arena_tabs(VariantRunner(chat), variants, votes)
        with gr.Tab("Documents"):
            build_documents_tab(pipeline, settings, store.collection_names)
        with gr.Tab("Train"):
            build_train_tab(jobs, settings, REPO)
        with gr.Tab("Adapters"):
            build_adapters_tab(registry, adapter_service)
        with gr.Tab("Evaluate"):
            build_evaluate_tab(
                jobs, settings, REPO, [n for n, v in variants.items() if not v.classifier]
            )
        with gr.Tab("Compare"):
            build_compare_tab(jobs, settings, store.collection_names)
        ui.load(rows, outputs=table)
    return ui


def job_environment(settings: Settings) -> dict[str, str]:
    """Environment of background jobs: the app's own data folder, registry and engine."""
    env = {
        **os.environ,
        "RAGTUNE_DATA_DIR": str(settings.data_dir.resolve()),
        "RAGTUNE_ADAPTERS_DIR": str(settings.adapters_root.resolve()),
        "RAGTUNE_VARIANTS_FILE": str(settings.variants_file.resolve()),
    }
    if settings.generator.mode == "vllm":
        env["RAGTUNE_GENERATOR__URL"] = generator_url(settings)
    else:
        env["RAGTUNE_GENERATOR__MODE"] = settings.generator.mode
    return env


def create_app(
    settings: Settings,
    *,
    chat: ChatService | None = None,
    adapter_service: AdapterService | None = None,
) -> FastAPI:
    """FastAPI app with health endpoint and the Gradio UI at ``/``.

    Without ``chat``, the chat and the adapter service its generator routes through are
    built from the settings; a given ``chat`` comes with its ``adapter_service``, if any.
    """
    check_binding(settings.ui, settings.api)
    store = build_store(settings)
    embedder = build_embedder(settings)
    registry = build_registry(settings)
    if chat is None:
        generator, adapter_service = build_generator_and_adapters(settings, registry)
        chat = build_chat_service(settings, generator=generator, store=store, embedder=embedder)
    api = FastAPI(
        title="ragtune", description="OpenAI-compatible chat over your documents and adapters."
    )
    install_api(
        api,
        settings,
        chat,
        store,
        registry,
        lambda: build_ingest_pipeline(settings, store=store, embedder=embedder),
    )
    variants = load_variants(settings.variants_file) if settings.variants_file.exists() else {}
    votes = VoteStore(settings.votes_db)
    jobs = JobStore(settings.jobs_dir)
    JobRunner(
        jobs, env=job_environment(settings), cwd=REPO
    ).start()  # a daemon thread; jobs outlive it
    ui = build_ui(
        chat,
        store,
        registry,
        variants,
        votes,
        settings=settings,
        jobs=jobs,
        pipeline=lambda: build_ingest_pipeline(settings, store=store, embedder=embedder),
        adapter_service=adapter_service,
    )
    reports = settings.evals_dir
    reports.mkdir(parents=True, exist_ok=True)
    settings.compare_dir.mkdir(parents=True, exist_ok=True)
    return gr.mount_gradio_app(
        api,
        ui,
        path="/",
        allowed_paths=[str(reports), str(settings.compare_dir)],
        auth=ui_login(settings.ui.users),
        auth_message="ragtune: sign in with a login from ui.users",
    )
