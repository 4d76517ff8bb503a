"""Settings: YAML, profile overlays, env overrides, clear errors."""

from __future__ import annotations

import pytest

from app.settings import SettingsError, load_settings


def test_yaml_profile_and_env_layers(tmp_path, monkeypatch):
    (tmp_path / "settings.yaml").write_text("prompting:\n  top_k: 5\ngenerator:\n  port: 9000\n")
    (tmp_path / "settings-gpu.yaml").write_text("generator:\n  dtype: bfloat16\n")
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(tmp_path))
    monkeypatch.setenv("RAGTUNE_PROFILES", "gpu")
    monkeypatch.setenv("RAGTUNE_GENERATOR__PORT", "9100")
    settings = load_settings()
    assert settings.prompting.top_k == 5
    assert settings.generator.dtype == "bfloat16"
    assert settings.generator.port == 9100  # env beats YAML
    assert settings.generator.served_name == "base"  # untouched default
    assert settings.data_dir == tmp_path / ".ragtune"  # relative to the settings folder


def test_repo_settings_yaml_is_valid(monkeypatch):
    from tests.conftest import REPO

    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(REPO))
    settings = load_settings()
    assert settings.prompting.fewshot_file.exists()
    assert settings.ui.host == "127.0.0.1"


def test_invalid_value_names_the_field(tmp_path, monkeypatch):
    (tmp_path / "settings.yaml").write_text("prompting:\n  top_k: lots\n")
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(tmp_path))
    with pytest.raises(SettingsError, match=r"prompting\.top_k"):
        load_settings()


def test_unknown_key_and_bad_yaml_are_reported(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(tmp_path))
    (tmp_path / "settings.yaml").write_text("generatr:\n  port: 1\n")
    with pytest.raises(SettingsError, match="generatr"):
        load_settings()
    (tmp_path / "settings.yaml").write_text("generator: [unclosed\n")
    with pytest.raises(SettingsError, match="settings.yaml"):
        load_settings()


def test_missing_profile_is_named(tmp_path, monkeypatch):
    monkeypatch.setenv("RAGTUNE_SETTINGS_DIR", str(tmp_path))
    monkeypatch.setenv("RAGTUNE_PROFILES", "nope")
    with pytest.raises(SettingsError, match="settings-nope.yaml"):
        load_settings()


def test_data_paths_come_from_the_settings_with_their_overrides(make_settings, tmp_path):
    settings = make_settings()
    data = tmp_path / "data"
    assert {
        "models": settings.models_dir,
        "merged": settings.merged_models_dir,
        "adapters": settings.adapters_root,
        "runs": settings.runs_dir,
        "uploads": settings.uploads_dir,
        "datasets": settings.dataset_uploads_dir,
        "chroma": settings.chroma_dir,
        "indexes": settings.indexes_dir,
        "votes": settings.votes_db,
        "jobs": settings.jobs_dir,
        "evals": settings.evals_dir,
        "logs": settings.logs_dir,
        "engine log": settings.engine_log,
    } == {
        "models": data / "models",
        "merged": data / "models" / "merged",
        "adapters": data / "adapters",
        "runs": data / "runs",
        "uploads": data / "uploads",
        "datasets": data / "uploads" / "datasets",
        "chroma": data / "chroma",
        "indexes": data / "indexes",
        "votes": data / "votes.sqlite3",
        "jobs": data / "jobs",
        "evals": data / "evals",
        "logs": data / "logs",
        "engine log": data / "logs" / "vllm.log",
    }
    moved = make_settings(adapters_dir=tmp_path / "shared", vector_store={"path": tmp_path / "c"})
    assert moved.adapters_root == tmp_path / "shared" and moved.chroma_dir == tmp_path / "c"
