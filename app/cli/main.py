"""The `ragtune` command: thin subcommands over the library.

Every known failure (bad settings, unknown collection, server down, bad input file)
is printed as one clear ``error:`` line with exit code 2; tracebacks are for bugs only.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Annotated

import typer

from app.cli.common import CollectionOption, JsonFlag, emit_json, load_cli_settings
from app.cli.errors import fail, user_errors

os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")  # offline machines: never phone home

cli = typer.Typer(
    name="ragtune",
    help="Adapt a pretrained LLM to your data: ingest documents, ask with RAG or few-shot "
    "prompts, serve the chat app. Settings come from settings.yaml (+ RAGTUNE_* env vars).",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
)
models_cli = typer.Typer(
    help="Prepare the generator and embedding models (offline).", no_args_is_help=True
)
cli.add_typer(models_cli, name="models")

from app.cli import adapters as adapters_module
from app.cli import ask as ask_module
from app.cli import compare as compare_module
from app.cli.collections import collections_cli
from app.cli.data import data_cli
from app.cli.evaluate import eval_cli, variants_cli
from app.cli.prefs import prefs_cli
from app.cli.retrieval import retrieval_cli
from app.cli.reward import reward_cli
from app.cli.train import train_cli

cli.command()(ask_module.ask)
cli.command()(adapters_module.classify)
cli.command()(compare_module.compare)
cli.add_typer(collections_cli, name="collections")
cli.add_typer(data_cli, name="data")
cli.add_typer(eval_cli, name="eval")
cli.add_typer(variants_cli, name="variants")
cli.add_typer(prefs_cli, name="prefs")
cli.add_typer(reward_cli, name="reward")
cli.add_typer(retrieval_cli, name="retrieval")
cli.add_typer(train_cli, name="train")
cli.add_typer(adapters_module.adapters_cli, name="adapters")


@models_cli.command("pull")
def models_pull(
    force: Annotated[
        bool, typer.Option(help="Convert again even if the model is prepared.")
    ] = False,
    as_json: JsonFlag = False,
) -> None:
    """Convert the packaged SmolLM2 GGUF to a safetensors folder (once) and check the embedder.

    A generator or embedder set to something other than 'default' in the settings is
    left as configured (a local folder or a hub id the engine loads itself).
    """
    from app.components import build_embedder
    from app.models import (
        default_generator_dir,
        is_pulled,
        pull_default_generator,
        resolve_generator_model,
    )

    settings = load_cli_settings()
    with user_errors():
        if settings.generator.model == "default":
            if force or not is_pulled(default_generator_dir(settings.models_dir)):
                typer.echo(
                    "preparing the default generator (first time: about a minute)...", err=True
                )
            generator = str(pull_default_generator(settings.models_dir, force=force))
        else:
            generator = resolve_generator_model(settings.generator.model, settings.models_dir)
        embedder = build_embedder(settings)
        dimension = len(embedder.embed_query("ready?"))
    result = {"generator": generator, "embedder": embedder.model_id, "embedding_dim": dimension}
    if as_json:
        emit_json(result)
    else:
        typer.echo(f"generator: {generator}\nembedder:  {embedder.model_id} ({dimension} dims)")


@cli.command()
def ingest(
    paths: Annotated[list[Path], typer.Argument(help="Files or folders (read recursively).")],
    collection: CollectionOption = None,
    prune: Annotated[
        bool, typer.Option(help="Remove chunks of files that are gone from the given folders.")
    ] = False,
    tag: Annotated[
        list[str] | None,
        typer.Option("--tag", help="Tag the chunks (repeatable); filter by it in ask."),
    ] = None,
    chunking: Annotated[
        str | None,
        typer.Option(
            help="Chunking strategy: structure (headings, PDF pages) or sentence. "
            "Changing it re-chunks the whole collection."
        ),
    ] = None,
    chunk_size: Annotated[int | None, typer.Option(min=32, help="Chunk size in tokens.")] = None,
    chunk_overlap: Annotated[int | None, typer.Option(min=0, help="Overlap in tokens.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """Read .txt, .md, .pdf and .html files, chunk, embed and store them in Chroma.

    Unchanged files (same content hash) are skipped without computing embeddings; a
    changed file has its chunks replaced. Files that cannot be read are reported with the
    reason and the rest are still ingested. Exit code 1 when any file failed.
    """
    from app.components import build_ingest_pipeline
    from indexing.chunking import STRATEGIES, ChunkingConfig

    settings = load_cli_settings()
    if chunking is not None and chunking not in STRATEGIES:
        fail(f"unknown chunking strategy {chunking!r}; choose one of {', '.join(STRATEGIES)}")
    requested = None
    if chunking or chunk_size or chunk_overlap is not None:
        base = settings.indexing
        requested = ChunkingConfig(
            chunking or base.chunking,
            chunk_size or base.chunk_size,
            base.chunk_overlap if chunk_overlap is None else chunk_overlap,
        )
    with user_errors():
        pipeline = build_ingest_pipeline(settings)
        report = pipeline.ingest(
            paths,
            collection or settings.indexing.default_collection,
            prune=prune,
            tags=tag,
            chunking=requested,
            show_progress=not as_json,
        )
    if as_json:
        emit_json(report.to_dict())
    else:
        for notice in report.notices:
            typer.echo(notice, err=True)
        for result in report.files:
            if result.status == "failed":
                typer.echo(f"failed: {result.path}: {result.reason}", err=True)
            for notice in result.notices:
                typer.echo(f"notice: {result.path}: {notice}", err=True)
        for note in report.passed_over:
            typer.echo(f"passed over: {note.path}: {note.reason}", err=True)
        counts = report.summary()
        noticed = sum(1 for r in report.files if r.notices)
        typer.echo(
            f"{report.collection}: added {counts['added']}, updated {counts['updated']}, "
            f"skipped {counts['skipped']}, failed {counts['failed']}, pruned {counts['pruned']}; "
            f"embeddings computed: {counts['embedded_chunks']}"
            + (f"; {noticed} file(s) read in part (see notices)" if noticed else "")
            + (f"; {len(report.passed_over)} path(s) passed over" if report.passed_over else "")
        )
    raise typer.Exit(1 if report.count("failed") else 0)


@cli.command()
def serve(
    host: Annotated[
        str | None, typer.Option(help="Web app interface (default: settings, 127.0.0.1).")
    ] = None,
    port: Annotated[
        int | None, typer.Option(help="Web app port (default: settings, 7860).")
    ] = None,
    no_engine: Annotated[
        bool, typer.Option("--no-engine", help="Do not start a local vLLM server.")
    ] = False,
) -> None:
    """Start the vLLM server (unless generator.url points elsewhere) and the Gradio app.

    Waits until the engine answers /health, prints the app URL, and stops the engine
    on exit (Ctrl-C). An engine already answering on the configured port is reused.
    """
    from app.serving import run_server

    settings = load_cli_settings()
    if host:
        settings.ui.host = host
    if port:
        settings.ui.port = port
    with user_errors():
        run_server(settings, start_engine=not no_engine)


@cli.command()
def engine() -> None:
    """Run only the vLLM server, in the foreground, with the flags `ragtune serve` uses.

    For a separate engine service (docker/compose.yaml): the app then runs with
    `generator.url` pointing here and `ragtune serve --no-engine`.
    """
    from app.serving import local_engine

    settings = load_cli_settings()
    with user_errors():
        server = local_engine(settings)
    command = server.command()
    typer.echo("exec: " + " ".join(command), err=True)
    os.execvpe(command[0], command, server.environment())


def main() -> None:
    """Console-script entry point."""
    cli()


if __name__ == "__main__":
    main()
