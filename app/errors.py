"""The error types that mean "the user can fix this", shared by every front end.

The CLI prints them as one ``error:`` line, the UI shows them in the page and the API
turns them into HTTP errors; anything else is a bug and keeps its traceback.
"""

from __future__ import annotations


def user_error_types() -> tuple[type[BaseException], ...]:
    """Exception classes whose message is meant for the user."""
    from app.generation.base import GeneratorError
    from app.generation.engine import EngineError
    from app.models import ModelError
    from app.prompting import PromptError
    from app.settings import SettingsError
    from app.variants import VariantError
    from evals.suites import SuiteError
    from indexing.embedding import EmbedderUnavailable
    from indexing.store import StoreError
    from training.config import ConfigError
    from training.data import DatasetError
    from training.registry import RegistryError

    return (
        ConfigError,
        DatasetError,
        RegistryError,
        VariantError,
        SuiteError,
        GeneratorError,
        EngineError,
        ModelError,
        PromptError,
        SettingsError,
        EmbedderUnavailable,
        StoreError,
    )
