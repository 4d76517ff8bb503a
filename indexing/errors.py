"""The one base of the errors a user can fix, shared by every package and front end.

It lives in ``indexing``, the lowest layer, so that ``training``, ``evals`` and ``app``
can all derive from it without importing upwards. A subclass sets what the front ends
need: ``status`` (the HTTP status the API answers with), ``error_type`` (OpenAI's
``error.type``) and ``label`` (the API's error metric label). Each front end maps
``RagtuneError`` once: the CLI prints ``error: <message>`` and exits 2
(``app.cli.errors``), the API answers ``status`` with an OpenAI-shaped body
(``app.api.setup``), the UI shows the message in the page (``app.ui.errors``). Anything
that is not a ``RagtuneError`` is a bug and keeps its traceback.

A new error: derive from ``RagtuneError`` (or ``NotFound``, ``Conflict``,
``Unavailable``), keep a builtin base second when callers catch one
(``class XError(RagtuneError, ValueError)``), and set ``status`` and ``label`` when
the defaults (400, ``user_error``) do not fit; no front end needs a change.
"""

from __future__ import annotations

from typing import Any


class RagtuneError(Exception):
    """An error the user can fix; the message names the file, line, field or name and why.

    Class attributes, overridden by subclasses (``param``, ``headers`` and ``details``
    also per instance):
        status: HTTP status of the API's answer (400: the request is wrong).
        error_type: OpenAI ``error.type`` of that answer.
        label: value of the ``reason`` label of the API's error counter.
        param: the request field at fault, when one is (OpenAI ``error.param``).
        headers: extra HTTP headers of the API's answer (``Retry-After``).
        details: extra members of the API's error body (the valid model names).
    """

    status: int = 400
    error_type: str = "invalid_request_error"
    label: str = "user_error"
    param: str | None = None
    headers: dict[str, str] | None = None
    details: dict[str, Any] | None = None

    def __init__(self, *args: object, param: str | None = None) -> None:
        super().__init__(*args)
        if param is not None:
            self.param = param

    @property
    def user_message(self) -> str:
        """The message shown to the user (the exception's text)."""
        return str(self)


class NotFound(RagtuneError):
    """A named thing (adapter, collection, dataset, job, model) does not exist."""

    status = 404
    error_type = "not_found"
    label = "not_found"


class Conflict(RagtuneError):
    """The request clashes with the current state (a collection of another embedder, a taken
    name). A collection busy with an ingest is not one: ``CollectionBusy`` is a 400."""

    status = 409
    error_type = "conflict"
    label = "conflict"


class Unavailable(RagtuneError):
    """A needed service or model is not available right now; retrying later may work."""

    status = 503
    error_type = "service_unavailable"
    label = "unavailable"
