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
