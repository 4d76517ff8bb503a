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
