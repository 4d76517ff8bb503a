"""`ragtune collections list|show|delete`."""

from __future__ import annotations

from typing import Annotated

import typer

from app.cli.common import JsonFlag, emit_json, load_cli_settings
from app.cli.errors import user_errors

collections_cli = typer.Typer(
    help="List, inspect and delete document collections.", no_args_is_help=True
)


def _store():
    from app.components import build_store

    return build_store(load_cli_settings())


def _human(size: int) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


@collections_cli.command("list")
def list_collections(as_json: JsonFlag = False) -> None:
    """Every collection with its chunk and file counts, chunking, embedder and size."""
    with user_errors():
        store = _store()
        infos = [store.info(name) for name in store.collection_names()]
    if as_json:
        emit_json([info.to_dict() for info in infos])
        return
    if not infos:
        typer.echo("no collections yet; create one with `ragtune ingest PATH --collection NAME`")
        return
    typer.echo(f"{'name':<24} {'chunks':>7} {'files':>6} {'size':>9}  {'chunking':<18} embedder")
    for i in infos:
        typer.echo(
            f"{i.name:<24} {i.chunks:>7} {i.files:>6} {_human(i.size_bytes):>9}  "
            f"{i.chunking:<18} {i.embedding_model}"
        )


@collections_cli.command("show")
def show(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    as_json: JsonFlag = False,
) -> None:
    """Details of one collection, with its files."""
    with user_errors():
        store = _store()
        info = store.info(name)
        files = sorted(store.collection(name, embedding_model=None).sources())
    if as_json:
        emit_json(info.to_dict() | {"file_list": files})
        return
    for key, value in info.to_dict().items():
        typer.echo(f"{key:<16} {_human(value) if key == 'size_bytes' else value}")
    typer.echo("files:")
    for path in files:
        typer.echo(f"  {path}")


@collections_cli.command("delete")
def delete(
    name: Annotated[str, typer.Argument(help="Collection name.")],
    yes: Annotated[bool, typer.Option("--yes", "-y", help="Do not ask for confirmation.")] = False,
) -> None:
    """Delete a collection, its chunks and its BM25 index (the files stay where they are)."""
    with user_errors():
        store = _store()
        info = store.info(name)
        if not yes:
            typer.confirm(
                f"delete {name!r} ({info.chunks} chunks from {info.files} files)?", abort=True
            )
        store.delete_collection(name)
    typer.echo(f"deleted {name}")
