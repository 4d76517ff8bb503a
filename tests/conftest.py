"""Shared fixtures: settings on a temporary data folder, the real embedder, sample files."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture
def make_settings(tmp_path, monkeypatch):
    """Build settings on a temporary data folder; keyword arguments override sections."""
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    for name in list(__import__("os").environ):
        if name.startswith("RAGTUNE_") and name != "RAGTUNE_SETTINGS_DIR":
            monkeypatch.delenv(name)

    def build(**overrides) -> Settings:
        overrides.setdefault("data_dir", tmp_path / "data")
        return load_settings(**overrides)

    return build


@pytest.fixture(scope="session")
def embedder():
    """The real default embedder (all-MiniLM-L6-v2 from its PyPI package), loaded once."""
    from indexing.config import EmbeddingSettings
    from indexing.embedding import Embedder

    return Embedder(EmbeddingSettings())


@pytest.fixture(scope="session")
def chroma_server(tmp_path_factory):
    """A real Chroma server (`chroma run`, shipped with chromadb) on a free loopback port."""
    import socket
    import subprocess
    import sys
    import time

    import httpx

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    folder = tmp_path_factory.mktemp("chroma-server")
    chroma = str(Path(sys.executable).with_name("chroma"))
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(
        [chroma, "run", "--path", str(folder / "db"), "--host", "127.0.0.1", "--port", str(port)],
        stdout=log,
        stderr=log,
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/api/v2/heartbeat", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.3)
    else:
        server.kill()
        pytest.fail(f"chroma run did not start: {(folder / 'server.log').read_text()[-2000:]}")
    yield "127.0.0.1", port
    server.terminate()
    server.wait(timeout=30)


@pytest.fixture(params=["embedded", "http"])
def store_mode(request) -> dict:
    """Vector-store settings for both modes; the http server starts empty for each test."""
    if request.param == "embedded":
        return {"mode": "embedded"}
    import chromadb

    host, port = request.getfixturevalue("chroma_server")
    client = chromadb.HttpClient(host=host, port=port)
    for collection in client.list_collections():
        client.delete_collection(collection if isinstance(collection, str) else collection.name)
    return {"mode": "http", "host": host, "port": port}
