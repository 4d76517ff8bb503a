"""Turn the errors users can fix into one clear line and exit code 2."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import NoReturn

import typer

from app.errors import user_error_types


def fail(message: str, code: int = 2) -> NoReturn:
    """Print ``error: message`` to stderr and exit."""
    typer.echo(f"error: {message}", err=True)
    raise typer.Exit(code)


@contextmanager
def user_errors() -> Iterator[None]:
    """Report known, user-fixable errors without a traceback."""
    try:
        yield
    except user_error_types() as exc:
        fail(str(exc))
    except KeyboardInterrupt:
        fail("interrupted", code=130)
