"""One error base: every user-facing error is a RagtuneError, mapped once per front end."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys

import pytest
import typer
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.guard import Metrics
from app.api.setup import install_error_handlers
from app.cli.errors import user_errors
from app.ui.errors import warning
from indexing.errors import RagtuneError

PACKAGES = ("indexing", "training", "evals", "app")
# Exceptions that never reach a user, with the reason.
INTERNAL = {
    "indexing.readers.FileRejected": "the pipeline turns it into a file's 'failed' row",
}
# Errors whose constructor takes more than a message.
MAKE = {
    "UploadError": lambda cls: cls("boom", 413),
    "FieldRefused": lambda cls: cls("boom", "functions"),
    "UnknownModel": lambda cls: cls("boom", ["base"]),
    "Overloaded": lambda cls: cls(7),
}


def _exception_classes() -> list[type[BaseException]]:
    """Every exception class defined in the four packages (each module imported)."""
    for package in PACKAGES:
        root = importlib.import_module(package)
        for info in pkgutil.walk_packages(root.__path__, f"{package}."):
            importlib.import_module(info.name)
    found = []
    for name, module in list(sys.modules.items()):
        if name.split(".")[0] not in PACKAGES:
            continue
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == name and issubclass(cls, BaseException):
                found.append(cls)
    return sorted(set(found), key=lambda c: f"{c.__module__}.{c.__qualname__}")


CLASSES = _exception_classes()
USER_ERRORS = [c for c in CLASSES if issubclass(c, RagtuneError)]


def _make(cls: type[RagtuneError]) -> RagtuneError:
    return MAKE.get(cls.__name__, lambda c: c("boom"))(cls)


def _api(errors: list[RagtuneError]) -> tuple[TestClient, Metrics]:
    """An app with only the API's error handlers and a route raising ``errors[i]``."""
    app = FastAPI()
    metrics = Metrics()
    install_error_handlers(app, metrics)

    @app.get("/raise/{index}")
    def fail(index: int):
        raise errors[index]

    return TestClient(app, raise_server_exceptions=False), metrics


def test_every_exception_in_the_tree_is_a_ragtune_error_or_internal():
    qualified = {f"{c.__module__}.{c.__qualname__}": c for c in CLASSES}
    outside = sorted(q for q, c in qualified.items() if not issubclass(c, RagtuneError))
    assert outside == sorted(INTERNAL), "a user-facing error must derive from RagtuneError"
    assert len(USER_ERRORS) >= 25


@pytest.mark.parametrize("cls", USER_ERRORS, ids=lambda c: c.__name__)
def test_each_error_is_one_api_answer_one_cli_line_and_one_ui_message(cls, capsys):
    exc = _make(cls)
    message = exc.user_message
    assert message and 400 <= exc.status < 600 and exc.error_type and exc.label

    client, metrics = _api([exc])
    response = client.get("/raise/0")
    assert response.status_code == exc.status
    error = response.json()["error"]
    assert error["message"] == message and error["type"] == exc.error_type
    assert error["code"] == exc.status and error["param"] == exc.param
    assert metrics.errors.labels(exc.label)._value.get() == 1
    for header, value in (exc.headers or {}).items():
        assert response.headers[header] == value

    with pytest.raises(typer.Exit) as stopped, user_errors():
        raise exc
    assert stopped.value.exit_code == 2
    assert capsys.readouterr().err == f"error: {message}\n"

    assert warning(exc) == f"⚠️ {message}"


def test_statuses_stay_what_the_api_answered_before_the_one_base():
    from app.adapters import AdapterError
    from app.api.bridge import StreamTimeout
    from app.api.catalog import UnknownModel
    from app.api.fields import FieldRefused
    from app.api.guard import Overloaded
    from app.generation.base import (
        GeneratorError,
        GeneratorRefused,
        GeneratorUnavailable,
        ModelNotServed,
    )
    from app.uploads import UploadError
    from indexing.locks import CollectionBusy
    from indexing.store import EmbedderMismatch, StoreError
    from training.registry import RegistryError

    expected = [
        (StoreError("m"), 400, "invalid_request_error", "store", None),
        (CollectionBusy("m"), 400, "invalid_request_error", "store", None),
        (EmbedderMismatch("m"), 409, "conflict", "embedder_mismatch", None),
        (RegistryError("m"), 404, "not_found", "registry", None),
        (GeneratorError("m"), 502, "generator_error", "generator_error", None),
        (ModelNotServed("m"), 502, "generator_error", "generator_error", None),
        (AdapterError("m"), 502, "generator_error", "generator_error", None),
        (GeneratorUnavailable("m"), 503, "generator_unavailable", "generator_unavailable", None),
        (GeneratorRefused("m", "tools"), 400, "invalid_request_error", "engine_refused", "tools"),
        (UploadError("m", 415), 415, "invalid_upload", "upload", None),
        (UploadError("m", 413), 413, "invalid_upload", "upload", None),
        (FieldRefused("m", "store"), 400, "invalid_request_error", "invalid_field", "store"),
        (UnknownModel("x", ["base"]), 404, "invalid_request_error", "unknown_model", "model"),
        (Overloaded(7), 503, "overloaded", "overloaded", None),
        (StreamTimeout("m"), 504, "timeout", "timeout", None),
    ]
    client, metrics = _api([e for e, *_ in expected])
    for index, (exc, status, kind, label, param) in enumerate(expected):
        response = client.get(f"/raise/{index}")
        error = response.json()["error"]
        assert (response.status_code, error["type"], error["param"]) == (status, kind, param), exc
        assert metrics.errors.labels(label)._value.get() >= 1, exc
    kinds = [type(e) for e, *_ in expected]
    unknown = client.get(f"/raise/{kinds.index(UnknownModel)}")
    assert unknown.json()["error"]["valid_models"] == ["base"]
    busy = client.get(f"/raise/{kinds.index(Overloaded)}")
    assert busy.headers["Retry-After"] == "7" and "busy" in busy.json()["error"]["message"]


def test_an_unavailable_embedder_is_503_not_500(make_settings, tmp_path):
    from app.components import build_chat_service, build_embedder, build_store
    from app.generation.fake import FakeGenerator
    from app.server import create_app

    settings = make_settings(
        generator={"mode": "fake"},
        embedding={"model": str(tmp_path / "no-such-model"), "backend": "onnx"},
    )
    chat = build_chat_service(
        settings,
        generator=FakeGenerator(),
        store=build_store(settings),
        embedder=build_embedder(settings),
    )
    with TestClient(create_app(settings, chat=chat)) as client:
        response = client.post(
            "/v1/ingest", files=[("files", ("a.txt", b"hello there", "text/plain"))]
        )
        metrics = client.get("/metrics").text
    assert response.status_code == 503, response.text
    error = response.json()["error"]
    assert error["type"] == "service_unavailable" and "no-such-model" in error["message"]
    assert 'ragtune_errors_total{reason="embedder_unavailable"} 1.0' in metrics
