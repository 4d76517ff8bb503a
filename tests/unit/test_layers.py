"""The seams of docs/architecture.md hold in the source: one owner for each decision.

Read from the source with ``ast`` (imports inside functions count too), so a new module
that crosses a layer or talks to Chroma or the engine on its own fails here.
"""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import REPO

PACKAGES = ("app", "indexing", "training", "evals")


def _modules(*packages: str) -> list[Path]:
    return sorted(p for pkg in packages for p in (REPO / pkg).rglob("*.py"))


def _imports(path: Path) -> set[str]:
    """Top-level names of every module ``path`` imports, at any depth of its code."""
    names = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module.split(".")[0])
    return names


def _offenders(paths: list[Path], forbidden: set[str]) -> list[str]:
    return [str(p.relative_to(REPO)) for p in paths if _imports(p) & forbidden]


def test_lower_layers_never_import_higher_ones():
    assert _offenders(_modules("indexing"), {"training", "evals", "app"}) == []
    assert _offenders(_modules("training"), {"evals", "app"}) == []
    assert _offenders(_modules("evals"), {"app"}) == []


def test_only_indexing_talks_to_chroma():
    assert _offenders(_modules("app", "training", "evals"), {"chromadb"}) == []


def test_one_client_talks_http_to_the_engine():
    client = REPO / "app/generation/vllm_client.py"
    others = [p for p in _modules("app", "training", "evals") if p != client]
    assert _offenders(others, {"httpx", "requests"}) == []
    # the OpenAI SDK's types may shape API answers, but only the engine client opens one
    assert [str(p.relative_to(REPO)) for p in others if "OpenAI(" in p.read_text()] == []


def test_every_trainer_runs_inside_the_one_training_run():
    for name in ("sft", "reward", "dpo", "ppo", "classify"):
        source = (REPO / "training" / f"{name}.py").read_text()
        assert "TrainingRun(" in source, name
        assert ".staging(" not in source and "registry.commit(" not in source, name


def test_data_paths_are_built_only_in_the_settings():
    settings = REPO / "app/settings.py"
    offenders = [
        str(p.relative_to(REPO))
        for p in _modules(*PACKAGES)
        if p != settings and "data_dir /" in p.read_text()
    ]
    assert offenders == []
