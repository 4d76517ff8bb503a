"""The methods table (benchmarks/methods_table.py) renders every row, failures included."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from benchmarks.methods_table import DATA, METHODS, methods_table_section
from tests.conftest import REPO


def test_the_table_has_a_row_per_method_with_intervals_and_its_command():
    family = {"acc": {"delta": -0.02, "delta_ci95": [-0.05, 0.01], "p": 0.3}}
    row = {
        "method": "lora",
        "adapter": "tbl-lora",
        "trainable_parameters": 1_000,
        "seconds_per_step": 1.5,
        "peak_memory_mb": 2000.0,
        "adapter_mb": 3.5,
        "qa_rougeL": {"mean": 0.2, "ci": [0.15, 0.25], "n": 40},
        "forgetting": {"results": {"arc_easy": family}},
    }
    results = {
        "model": "SmolLM2-135M-Instruct",
        "machine": {"cpus": 2},
        "steps": 20,
        "tasks": ["arc_easy", "mmlu"],
        "limit": 100,
        "qa_items": 40,
        "base_qa_rougeL": {"mean": 0.1, "ci": [0.05, 0.15], "n": 40},
        "wall_s": 10.0,
        "command": "python -m benchmarks.methods_table --steps 20",
        "rows": [row, {"method": "full", "adapter": "tbl-full", "error": "out of memory"}],
    }
    text = methods_table_section(results)
    assert "`python -m benchmarks.methods_table --steps 20`" in text
    assert (
        "| lora | 1,000 | 1.50 | 2,000 | 3.5 | 0.200 [0.150, 0.250] | -0.020 [-0.050, +0.010] | – |"
        in text
    )
    assert "| full | failed: 'out of memory' |" in text


def test_every_sft_method_of_the_issue_has_a_bundled_config():
    from tests.conftest import REPO

    assert len(METHODS) == 12
    for _, config in METHODS:
        assert (REPO / "configs/train" / f"{config}.yaml").exists(), config


@pytest.mark.skipif(
    not (REPO / ".git").exists() or not shutil.which("git"), reason="needs the git checkout"
)
def test_the_runs_data_folder_is_ignored():
    """Its trained adapters hold READMEs with code that `ruff format --check .` (make lint)
    would flag, and git would list them as untracked."""
    ignored = subprocess.run(["git", "check-ignore", "-q", str(DATA)], cwd=REPO, check=False)
    assert ignored.returncode == 0
