"""Pieces shared by the subcommands: settings loading, JSON output, common options."""

from __future__ import annotations

import json
from typing import Annotated

import typer

from app.cli.errors import user_errors

JsonFlag = Annotated[
    bool, typer.Option("--json", help="Print machine-readable JSON instead of text.")
]
CollectionOption = Annotated[
    str | None,
    typer.Option(
        "--collection", "-c", help="Collection name (default: indexing.default_collection)."
    ),
]
RetrieverOption = Annotated[
    str | None,
    typer.Option(help="Retriever: dense, bm25 or hybrid (default: indexing.retriever)."),
]
SourceOption = Annotated[
    str | None,
    typer.Option("--source", help="Only sources matching this glob, e.g. 'docs/*.md'."),
]
FileTypeOption = Annotated[
    list[str] | None,
    typer.Option("--file-type", help="Only these file types (md, pdf, html, txt)."),
]
TagOption = Annotated[
    list[str] | None, typer.Option("--tag", help="Only chunks with this tag (repeatable).")
]


def load_cli_settings():
    """The settings tree, or one clear error line."""
    from app.settings import load_settings

    with user_errors():
        return load_settings()


def resolve_base_model(settings, base_model: str = "default") -> str:
    """'default' means the model the generator serves, so adapters match the server."""
    from app.models import resolve_generator_model

    name = settings.generator.model if base_model == "default" else base_model
    return resolve_generator_model(name, settings.models_dir)


def emit_json(payload: object) -> None:
    """Print ``payload`` as indented JSON on stdout."""
    typer.echo(json.dumps(payload, indent=2, ensure_ascii=False))


def make_filter(source: str | None, file_types: list[str] | None, tags: list[str] | None):
    """A metadata filter from the CLI options (None when no option is given)."""
    from indexing.lexical import MetadataFilter

    flt = MetadataFilter(source, list(file_types or []), list(tags or []))
    return None if flt.is_empty() else flt
