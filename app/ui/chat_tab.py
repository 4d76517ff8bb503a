"""The Chat tab: mode, collection and top-k controls, streamed answers, sources below."""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterator

import gradio as gr

from app.chat import ChatService
from app.prompting import MODES
from app.ui.errors import warning
from indexing.errors import RagtuneError
from indexing.lexical import MetadataFilter
from indexing.retrieval import RETRIEVER_KINDS, RetrievedChunk


def format_sources_markdown(sources: list[RetrievedChunk], snippet_chars: int = 220) -> str:
    """Sources as a Markdown list: number, file name, page, heading, other files holding the
    same text, and a snippet."""
    if not sources:
        return ""
    lines = ["", "", "**Sources**", ""]
    for number, source in enumerate(sources, 1):
        where = f"`{source.file_name}`"
        if source.page:
            where += f", page {source.page}"
        if source.heading:
            where += f", {html.escape(source.heading)}"
        if source.also_in:
            where += ", also in " + ", ".join(f"`{name}`" for name in source.also_in_names)
        plain = re.sub(r"[#*_`>\[\]]+", " ", source.text)  # Markdown marks would render
        snippet = " ".join(plain.split())[:snippet_chars]
        lines.append(f"{number}. {where} (score {source.score:.2f}): _{html.escape(snippet)}…_")
    return "\n".join(lines)


def answer_events(
    chat: ChatService,
    message: str,
    mode: str,
    collection: str,
    k: int,
    *,
    retriever: str | None = None,
    flt: MetadataFilter | None = None,
    adapter: str | None = None,
) -> Iterator[str]:
    """The growing answer text, then the answer with its sources appended.

    Known errors (server down, unknown collection) end as a visible message in the chat.
    """
    try:
        turn = chat.prepare(
            message,
            mode=mode,
            collection=collection or None,
            k=int(k),
            retriever=retriever,
            flt=flt,
        )
        text = ""
        for delta in chat.stream(turn, adapter=adapter):
            text += delta
            yield text
        yield text + format_sources_markdown(turn.sources)
    except RagtuneError as exc:
        yield warning(exc)


def build_chat_tab(
    chat: ChatService,
    list_collections: Callable[[], list[str]],
    list_adapters: Callable[[], list[str]] = list,
) -> None:
    """Render the chat tab inside the current Blocks context."""
    collections = list_collections()
    default = chat.default_collection if chat.default_collection in collections else None
    with gr.Row():
        mode = gr.Radio(list(MODES), value=chat.prompting.default_mode, label="Mode")
        collection = gr.Dropdown(
            collections,
            value=default or (collections[0] if collections else None),
            label="Collection",
            allow_custom_value=True,
        )
        kind, k = chat.retrieval_for(collection.value)
        retriever = gr.Radio(list(RETRIEVER_KINDS), value=kind, label="Retriever")
        top_k = gr.Slider(1, 12, value=k, step=1, label="Top-k sources")
    # A collection tuned by `ragtune retrieval tune --apply` brings its own retriever and k.
    collection.change(
        lambda name: tuple(gr.update(value=v) for v in chat.retrieval_for(name or None)),
        inputs=collection,
        outputs=[retriever, top_k],
    )
    with gr.Row():
        adapter = gr.Dropdown(
            ["base", *list_adapters()], value="base", label="Answer with (model or adapter)"
        )
        refresh = gr.Button("Refresh lists", size="sm")
    refresh.click(
        lambda: (
            gr.update(choices=["base", *list_adapters()]),
            gr.update(choices=list_collections()),
        ),
        outputs=[adapter, collection],
    )
    with gr.Accordion("Filters", open=False), gr.Row():
        source_glob = gr.Textbox(label="Source path glob", placeholder="e.g. */docs/*.md")
        file_types = gr.CheckboxGroup(["md", "pdf", "html", "txt"], label="File types")
        tags = gr.Textbox(label="Tags (comma separated)")

    def respond(
        message: str,
        history: list,
        mode,
        collection,
        retriever,
        k,
        adapter,
        source_glob,
        file_types,
        tags,
    ) -> Iterator[str]:
        flt = MetadataFilter(
            (source_glob or "").strip() or None,
            list(file_types or []),
            [t.strip() for t in (tags or "").split(",") if t.strip()],
        )
        yield from answer_events(
            chat,
            message,
            mode,
            collection,
            k,
            retriever=retriever,
            flt=None if flt.is_empty() else flt,
            adapter=None if adapter in (None, "base") else adapter,
        )

    gr.ChatInterface(
        respond,
        additional_inputs=[
            mode,
            collection,
            retriever,
            top_k,
            adapter,
            source_glob,
            file_types,
            tags,
        ],
        chatbot=gr.Chatbot(height=480, label="ragtune"),
        textbox=gr.Textbox(placeholder="Ask about your documents…", submit_btn=True),
        examples=None,
        fill_height=True,
    )
