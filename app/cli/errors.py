"""Turn the errors users can fix into one clear line and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from indexing.errors import RagtuneError


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report a ``RagtuneError`` as ``error: <message>`` (exit 2), Ctrl-C as exit 130.

    Any other exception is a bug and keeps its traceback.
    """
    try:
        yield
    except RagtuneError as exc:
        fail(exc.user_message)
    except KeyboardInterrupt:
        fail("interrupted", code=130)
