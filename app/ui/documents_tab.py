"""The Documents tab: upload or point at a folder, ingest with progress, browse, delete.

Ingest runs in the web process (it is the same pipeline as `ragtune ingest`, bounded by
the upload limits); the per-file summary is the CLI's. Deleting a file or a collection
asks for a confirmation tick first.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import gradio as gr

from app.settings import Settings
from app.ui.errors import warning
from app.ui.upload_field import NamedUploads
from app.uploads import UploadError, copy_local, display_name
from indexing.chunking import STRATEGIES, ChunkingConfig
from indexing.errors import RagtuneError
from indexing.pipeline import IngestPipeline, IngestReport

SUMMARY_COLUMNS = ["file", "status", "chunks", "reason", "notices"]


def ingest_files(
    pipeline: IngestPipeline,
    settings: Settings,
    uploads: list[str | tuple[str, str]] | None,
    folder: str,
    collection: str,
    chunking: str,
    progress=None,
) -> tuple[str, list[list]]:
    """Store uploads safely, ingest them (and a server folder), return (summary line, rows).

    ``uploads`` are temporary paths, or (temporary path, name the user uploaded) pairs.
    """
    collection = (collection or "").strip() or settings.indexing.default_collection
    paths, rows = [], []
    for upload in uploads or []:
        path, name = upload if isinstance(upload, tuple | list) else (upload, Path(upload).name)
        try:
            paths.append(
                copy_local(
                    Path(path),
                    collection,
                    settings.uploads_dir,
                    name=name,
                    allowed=settings.api.upload_types,
                    max_mb=settings.api.max_upload_mb,
                )
            )
        except UploadError as exc:
            rows.append([display_name(name), "failed", 0, str(exc), ""])
    if (folder or "").strip():
        paths.append(Path(folder.strip()).expanduser())
    if not paths:
        return "nothing ingested: " + (
            "every upload was refused" if rows else "upload files or give a folder"
        ), rows
    s = settings.indexing

    def on_file(index: int, total: int, result) -> None:
        if progress is not None:
            progress((index, total), desc=f"ingesting {Path(result.path).name}")

    report = pipeline.ingest(
        paths,
        collection,
        chunking=ChunkingConfig(chunking, s.chunk_size, s.chunk_overlap),
        show_progress=False,
        on_file=on_file,
    )
    refused = len(rows)
    rows += [
        [Path(r.path).name, r.status, r.chunks, r.reason, "; ".join(r.notices)]
        for r in report.files
    ]
    rows += [[n.path, "passed over", 0, n.reason, ""] for n in report.passed_over]
    c = report.summary()
    return (
        f"**{collection}**: added {c['added']}, updated {c['updated']}, skipped {c['skipped']}, "
        f"failed {c['failed'] + refused}; embeddings computed: {c['embedded_chunks']}. "
        + " ".join(report.notices)
        + "".join(f"\n\n{line}" for line in _partial_lines(report))
    ), rows


def _partial_lines(report: IngestReport) -> list[str]:
    """One line per file read in part and one for the paths a folder walk passed over."""
    lines = [f"⚠️ {Path(r.path).name}: {n}." for r in report.files for n in r.notices]
    if report.passed_over:
        lines.append(f"{len(report.passed_over)} path(s) passed over (see the table).")
    return lines


def build_documents_tab(
    pipeline: Callable[[], IngestPipeline],
    settings: Settings,
    list_collections: Callable[[], list[str]],
) -> None:
    """Render the Documents tab inside the current Blocks context."""
    store = pipeline().store
    with gr.Row():
        with gr.Column(scale=2):
            uploads = NamedUploads(
                label=f"Upload files ({', '.join(settings.api.upload_types)}; "
                f"up to {settings.api.max_upload_mb:g} MB each)",
                file_count="multiple",
                file_types=list(settings.api.upload_types),
            )
            folder = gr.Textbox(label="…or a folder on the server", placeholder="/path/to/docs")
        with gr.Column(scale=1):
            collection = gr.Dropdown(
                list_collections(),
                value=settings.indexing.default_collection,
                allow_custom_value=True,
                label="Collection (type a new name to create one)",
            )
            chunking = gr.Radio(
                list(STRATEGIES), value=settings.indexing.chunking, label="Chunking"
            )
            ingest = gr.Button("Ingest", variant="primary")
    summary = gr.Markdown(elem_id="ingest-summary")
    table = gr.Dataframe(headers=SUMMARY_COLUMNS, label="Per-file result", interactive=False)

    def run_ingest(files, folder_path, name, strategy, progress=gr.Progress()):  # noqa: B008 (Gradio injects it)
        try:
            text, rows = ingest_files(
                pipeline(), settings, files, folder_path, name, strategy, progress
            )
        except RagtuneError as exc:
            return warning(exc), [], gr.update()
        return text, rows, gr.update(choices=list_collections())

    ingest.click(run_ingest, [uploads, folder, collection, chunking], [summary, table, collection])

    gr.Markdown("### Browse")
    with gr.Row():
        browse = gr.Dropdown(list_collections(), label="Collection", allow_custom_value=True)
        refresh = gr.Button("Refresh", size="sm")
    files = gr.Dataframe(headers=["file", "chunks"], label="Files", interactive=False)
    with gr.Row():
        chosen_file = gr.Dropdown([], label="File", allow_custom_value=True)
        confirm = gr.Checkbox(label="Yes, delete", value=False)
        delete_file = gr.Button("Delete file", variant="stop", size="sm")
        delete_collection = gr.Button("Delete collection", variant="stop", size="sm")
    chunks = gr.Markdown()
    status = gr.Markdown()

    def show_collection(name):
        """(file rows, file choices, status): the status shows why a collection won't open."""
        if not name or name not in store.collection_names():
            return [], gr.update(choices=[], value=None), gr.update()
        try:
            collection = store.collection(name, embedding_model=pipeline().embedder.name)
        except RagtuneError as exc:
            return [], gr.update(choices=[], value=None), warning(exc)
        counts = collection.file_counts()
        rows = [[source, n] for source, n in counts.items()]
        return rows, gr.update(choices=list(counts), value=None), gr.update()

    def show_chunks(name, source):
        if not name or not source:
            return ""
        try:
            collection = store.collection(name, embedding_model=pipeline().embedder.name)
        except RagtuneError as exc:
            return warning(exc)
        texts = collection.chunk_texts(source, 20)
        return "\n\n---\n\n".join(f"**chunk {i}**\n\n{t}" for i, t in enumerate(texts, 1))

    def remove_file(name, source, sure):
        if not sure:
            return "Tick “Yes, delete” first.", *show_collection(name)[:2]
        try:
            removed = pipeline().remove_file(name, source)
        except RagtuneError as exc:
            return warning(exc), *show_collection(name)[:2]
        return f"Deleted {source} ({removed} chunks) from {name}.", *show_collection(name)[:2]

    def remove_collection(name, sure):
        if not sure:
            return "Tick “Yes, delete” first.", gr.update(), [], gr.update()
        try:
            store.delete_collection(name)
        except RagtuneError as exc:
            return warning(exc), gr.update(), [], gr.update()
        return (
            f"Deleted collection {name}.",
            gr.update(choices=list_collections(), value=None),
            [],
            gr.update(choices=[]),
        )

    refresh.click(lambda: gr.update(choices=list_collections()), outputs=browse)
    browse.change(show_collection, browse, [files, chosen_file, status])
    chosen_file.change(show_chunks, [browse, chosen_file], chunks)
    delete_file.click(remove_file, [browse, chosen_file, confirm], [status, files, chosen_file])
    delete_collection.click(
        remove_collection, [browse, confirm], [status, browse, files, chosen_file]
    )
