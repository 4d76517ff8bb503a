"""The `ragtune` command: thin subcommands over the library.

Every known failure (bad settings, unknown collection, server down, bad input file)
is printed as one clear ``error:`` line with exit code 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Annotated, Optional

import typer

from app.cli.errors import fail, user_errors
from app.prompting import MODES

cli = typer.Typer(
    name="ragtune",
    help="Adapt a pretrained LLM to your data: ingest documents, ask with RAG or few-shot "
    "prompts, serve the chat app. Settings come from settings.yaml (+ RAGTUNE_* env vars).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_cli = typer.Typer(help="Prepare the generator and embedding models (offline).", no_args_is_help=True)
cli.add_typer(models_cli, name="models")

JsonFlag = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")]


def _settings():
    from app.settings import load_settings

    with user_errors():
        return load_settings()


def _emit_json(payload: object) -> None:
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


@models_cli.command("pull")
def models_pull(
    force: Annotated[bool, typer.Option(help="Convert again even if the model is prepared.")] = False,
    as_json: JsonFlag = False,
) -> None:
    """Convert the packaged SmolLM2 GGUF to a safetensors folder (once) and check the embedder.

    A generator or embedder set to something other than 'default' in the settings is
    left as configured (a local folder or a hub id the engine loads itself).
    """
    from app.models import pull_default_generator, resolve_generator_model
    from indexing.embedding import Embedder

    settings = _settings()
    with user_errors():
        if settings.generator.model == "default":
            typer.echo("preparing the default generator (first time: about a minute)...", err=True)
            generator = str(pull_default_generator(settings.models_dir, force=force))
        else:
            generator = resolve_generator_model(settings.generator.model, settings.models_dir)
        embedder = Embedder(settings.embedding)
        dimension = len(embedder.embed_query("ready?"))
    result = {"generator": generator, "embedder": embedder.model_id, "embedding_dim": dimension}
    if as_json:
        _emit_json(result)
    else:
        typer.echo(f"generator: {generator}\nembedder:  {embedder.model_id} ({dimension} dims)")


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (read recursively).")],
    collection: Annotated[
        Optional[str], typer.Option("--collection", "-c", help="Target collection (default: settings).")
    ] = None,
    prune: Annotated[
        bool, typer.Option(help="Remove chunks of files that are gone from the given folders.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Read .txt, .md, .pdf and .html files, chunk, embed and store them in Chroma.

    Unchanged files (same content hash) are skipped without computing embeddings; a
    changed file has its chunks replaced. Files that cannot be read are reported with the
    reason and the rest are still ingested. Exit code 1 when any file failed.
    """
    from app.components import build_ingest_pipeline

    settings = _settings()
    with user_errors():
        pipeline = build_ingest_pipeline(settings)
        report = pipeline.ingest(
            paths, collection or settings.indexing.default_collection, prune=prune, show_progress=not as_json
        )
    if as_json:
        _emit_json(report.to_dict())
    else:
        for result in report.files:
            if result.status == "failed":
                typer.echo(f"failed: {result.path}: {result.reason}", err=True)
        counts = report.summary()
        typer.echo(
            f"{report.collection}: added {counts['added']}, updated {counts['updated']}, "
            f"skipped {counts['skipped']}, failed {counts['failed']}, pruned {counts['pruned']}; "
            f"embeddings computed: {counts['embedded_chunks']}"
        )
    raise typer.Exit(1 if report.count("failed") else 0)


def _read_questions(path: Path) -> list[str]:
    """Questions of a JSONL file; bad lines are reported by number and skipped."""
    if not path.exists():
        fail(f"{path}: no such file")
    questions = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            question = record["question"] if isinstance(record, dict) else None
            if not isinstance(question, str) or not question.strip():
                raise ValueError("'question' must be a non-empty string")
            questions.append(question)
        except (json.JSONDecodeError, KeyError, ValueError) as exc:
            typer.echo(f"warning: {path}, line {number}: skipped ({exc})", err=True)
    return questions


@cli.command()
def ask(
    question: Annotated[Optional[str], typer.Argument(help="The question (or use --file).")] = None,
    collection: Annotated[
        Optional[str], typer.Option("--collection", "-c", help="Collection to retrieve from (RAG).")
    ] = None,
    mode: Annotated[
        Optional[str], typer.Option(help=f"Prompting mode: {', '.join(MODES)} (default: settings).")
    ] = None,
    k: Annotated[Optional[int], typer.Option("--k", min=1, max=50, help="Chunks retrieved (RAG).")] = None,
    file: Annotated[
        Optional[Path], typer.Option("--file", "-f", help='JSONL with one {"question": ...} per line.')
    ] = None,
    output: Annotated[
        Optional[Path], typer.Option("--output", "-o", help="Write JSONL here instead of stdout.")
    ] = None,
    retrieve_only: Annotated[
        bool, typer.Option("--retrieve-only", help="Only retrieve sources; no generation.")
    ] = False,
    adapter: Annotated[Optional[str], typer.Option(help="Adapter to answer with (default: base).")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Answer a question (or a file of them) with its sources.

    With --file the answers are written as JSONL records
    {"question", "answer", "sources": [{"source", "page", "score", "text"}], "latency_s"}.
    """
    from app.chat import Answer
    from app.components import build_chat_service

    if (question is None) == (file is None):
        fail("give either a QUESTION or --file")
    if mode is not None and mode not in MODES:
        fail(f"unknown mode {mode!r}; choose one of {', '.join(MODES)}")
    if retrieve_only and mode not in (None, "rag"):
        fail("--retrieve-only needs --mode rag")
    settings = _settings()
    questions = _read_questions(file) if file else [question]
    batch = file is not None
    sink = output.open("w", encoding="utf-8") if output else sys.stdout
    with user_errors():
        chat = build_chat_service(settings)
        for text in questions:
            if retrieve_only:
                import time

                started = time.perf_counter()
                sources = chat.retrieve(text, collection, k)
                result = Answer(text, "", sources, "rag", time.perf_counter() - started)
                record = result.to_dict() | {"answer": None}
            elif batch or as_json:
                result = chat.answer(text, adapter=adapter, mode=mode, collection=collection, k=k)
                record = result.to_dict()
            else:
                _stream_to_terminal(chat, text, adapter=adapter, mode=mode, collection=collection, k=k)
                continue
            if batch:
                sink.write(json.dumps(record, ensure_ascii=False) + "\n")
                sink.flush()
            elif as_json:
                _emit_json(record)
            else:
                _print_sources(result.sources)
    if output:
        sink.close()
        typer.echo(f"wrote {len(questions)} answers to {output}", err=True)


def _stream_to_terminal(chat, text: str, *, adapter: str | None, **kwargs) -> None:
    turn = chat.prepare(text, **kwargs)
    for delta in chat.stream(turn, adapter=adapter):
        typer.echo(delta, nl=False)
    typer.echo()
    _print_sources(turn.sources)


def _print_sources(sources) -> None:
    if not sources:
        return
    typer.echo("\nSources:")
    for number, source in enumerate(sources, 1):
        page = f", page {source.page}" if source.page else ""
        heading = f" - {source.heading}" if source.heading else ""
        typer.echo(f"  [{number}] {source.source}{page}{heading} (score {source.score:.3f})")


@cli.command()
def serve(
    host: Annotated[Optional[str], typer.Option(help="Web app interface (default: settings, 127.0.0.1).")] = None,
    port: Annotated[Optional[int], typer.Option(help="Web app port (default: settings, 7860).")] = None,
    no_engine: Annotated[
        bool, typer.Option("--no-engine", help="Do not start a local vLLM server.")
    ] = False,
) -> None:
    """Start the vLLM server (unless generator.url points elsewhere) and the Gradio app.

    Waits until the engine answers /health, prints the app URL, and stops the engine
    on exit (Ctrl-C). An engine already answering on the configured port is reused.
    """
    from app.serving import run_server

    settings = _settings()
    if host:
        settings.ui.host = host
    if port:
        settings.ui.port = port
    with user_errors():
        run_server(settings, start_engine=not no_engine)


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
