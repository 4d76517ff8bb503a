"""Training under `accelerate launch` (2 CPU processes) writes the same adapter as one process."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from safetensors import safe_open

from tests.conftest import REPO
from tests.unit.test_training import sft_data  # noqa: F401  (fixture; tiny_model comes from conftest)

BIN = Path(sys.executable).parent


def _train(command: list[str], data_dir: Path, tiny: str, data: Path) -> dict:
    env = {**os.environ, "RAGTUNE_SETTINGS_DIR": str(REPO), "RAGTUNE_DATA_DIR": str(data_dir)}
    args = [
        "train",
        "sft",
        "--name",
        "acc",
        "--dataset",
        str(data),
        "--method",
        "lora",
        "--max-steps",
        "2",
        "--set",
        f"base_model={tiny}",
        "--set",
        "batch_size=2",
        "--set",
        "forgetting_check=false",
        "--json",
    ]
    result = subprocess.run(
        [*command, *args],
        env=env,
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=600,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads((data_dir / "adapters" / "acc" / "manifest.json").read_text())


def _shapes(folder: Path) -> dict[str, tuple]:
    with safe_open(str(folder / "adapter_model.safetensors"), "pt") as handle:
        return {k: tuple(handle.get_slice(k).get_shape()) for k in handle.keys()}  # noqa: SIM118 (safe_open is not iterable)


def test_two_process_run_matches_single_process(tmp_path, tiny_model, sft_data):  # noqa: F811
    single = _train([str(BIN / "ragtune")], tmp_path / "single", tiny_model, sft_data)
    multi = _train(
        [
            str(BIN / "accelerate"),
            "launch",
            "--config_file",
            str(REPO / "configs/accelerate/cpu_2proc.yaml"),
            "--num_processes",
            "2",
            "-m",
            "app.cli.main",
        ],
        tmp_path / "multi",
        tiny_model,
        sft_data,
    )
    assert _shapes(tmp_path / "single/adapters/acc") == _shapes(tmp_path / "multi/adapters/acc")
    assert set(single) == set(multi)
    for key in ("kind", "method", "base_model", "dataset_sha256", "trainable_parameters"):
        assert single[key] == multi[key]
    assert single["hyperparameters"] == multi["hyperparameters"]
    assert multi["metrics"]["max_weight_change"] > 0
