"""The chat service with the fake generator and a real retriever."""

from __future__ import annotations

from app.components import build_chat_service, build_ingest_pipeline
from app.ui.chat_tab import answer_events


def test_rag_answer_streams_and_cites(make_settings, embedder, tmp_path):
    settings = make_settings(generator={"mode": "fake"})
    (tmp_path / "tea.md").write_text("# Tea\n\nGreen tea is steeped at 80 degrees.\n")
    pipeline = build_ingest_pipeline(settings, embedder=embedder)
    pipeline.ingest([tmp_path / "tea.md"], "docs", show_progress=False)
    chat = build_chat_service(settings, store=pipeline.store, embedder=embedder)
    answer = chat.answer("How hot for green tea?", mode="rag", k=2)
    assert answer.sources[0].file_name == "tea.md" and "[1]" in answer.answer
    events = list(answer_events(chat, "How hot for green tea?", "rag", "docs", 2))
    assert len(events) > 2 and events[-1].startswith(events[-2])
    assert "**Sources**" in events[-1] and "tea.md" in events[-1]


def test_ui_shows_known_errors_in_the_chat(make_settings, embedder):
    settings = make_settings(generator={"mode": "fake"})
    chat = build_chat_service(settings, embedder=embedder)
    events = list(answer_events(chat, "anything", "rag", "missing", 2))
    assert events == [
        "⚠️ unknown collection 'missing' (known: none yet); create it with `ragtune ingest`"
    ]


def test_few_shot_uses_configured_demonstrations(make_settings, embedder):
    settings = make_settings(generator={"mode": "fake"}, prompting={"fewshot_count": 2})
    chat = build_chat_service(settings, embedder=embedder)
    turn = chat.prepare("What is 2+2?", mode="few-shot")
    assert len(turn.messages) == 1 + 2 * 2 + 1 and not turn.sources


def test_chat_tab_starts_from_a_collections_tuned_retriever_and_k(make_settings, embedder):
    import gradio as gr

    from app.ui.chat_tab import build_chat_tab
    from indexing.collection import RetrievalChoice

    settings = make_settings(generator={"mode": "fake"})
    chat = build_chat_service(settings, embedder=embedder)
    tuned = {"docs": RetrievalChoice(128, "bm25", "", None, 7)}
    chat.tuned = tuned.get
    with gr.Blocks() as demo:
        build_chat_tab(chat, list_collections=lambda: ["docs", "other"])
    labels = ("Retriever", "Top-k sources")
    values = {c.label: c.value for c in demo.blocks.values() if getattr(c, "label", None) in labels}
    assert values == {"Retriever": "bm25", "Top-k sources": 7}
    (on_change,) = [
        f.fn
        for f in demo.fns.values()
        if [getattr(o, "label", None) for o in f.outputs] == list(labels)
    ]
    assert [u["value"] for u in on_change("docs")] == ["bm25", 7]
    assert [u["value"] for u in on_change("other")] == [
        chat.default_retriever,
        settings.prompting.top_k,
    ]
