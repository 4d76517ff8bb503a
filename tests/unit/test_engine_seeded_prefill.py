"""A request with ``seed`` and a long prompt must not kill the CPU engine (chunked prefill off)."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.generation.engine import VLLMEngine
from app.settings import GeneratorSettings

torch = pytest.importorskip("torch")


def test_cpu_generators_cannot_be_rewound_which_is_why_chunked_prefill_is_off():
    # vLLM 0.32 rewinds a partially-prefilled seeded request's generator with set_offset.
    with pytest.raises(RuntimeError, match="does not use offset"):
        torch.Generator().set_offset(0)


def test_the_engine_runs_without_chunked_prefill_by_default(tmp_path: Path):
    command = VLLMEngine(GeneratorSettings(), "m", tmp_path / "log").command()
    assert "--no-enable-chunked-prefill" in command
    assert "--enable-chunked-prefill" not in command


def test_chunked_prefill_can_be_turned_back_on_for_a_cuda_engine(tmp_path: Path):
    command = VLLMEngine(GeneratorSettings(chunked_prefill=True), "m", tmp_path / "log").command()
    assert "--no-enable-chunked-prefill" not in command


def test_the_installed_vllm_accepts_the_flag_and_batches_whole_prompts():
    arg_utils = pytest.importorskip("vllm.engine.arg_utils")
    from vllm.utils.argparse_utils import FlexibleArgumentParser

    parser = arg_utils.EngineArgs.add_cli_args(FlexibleArgumentParser())
    args = parser.parse_args(["--no-enable-chunked-prefill", "--max-model-len", "4096"])
    assert args.enable_chunked_prefill is False
