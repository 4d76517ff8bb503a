"""Where each adapter kind is served is decided once (training.methods), and one
client talks to vLLM."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.adapters import AdapterError, AdapterService
from app.components import generator_url
from app.generation.base import GeneratorUnavailable
from app.generation.engine import VLLMEngine
from app.generation.peft_backend import PeftGenerator
from app.generation.vllm_client import VLLMGenerator
from app.settings import GeneratorSettings
from app.ui.train_tab import RECIPES
from training.config import ClassifyArgs, SFTArgs
from training.methods import (
    CLASSIFY_METHODS,
    GENERATIVE_KINDS,
    PEFT,
    SCORING_KINDS,
    SFT_METHODS,
    VLLM,
    is_generative,
    served_by,
)
from training.registry import AdapterRegistry, Manifest

UNREACHABLE = "http://127.0.0.1:9/v1"


def _choices(args) -> tuple[str, ...]:
    return args.__dataclass_fields__["method"].metadata["choices"]


def test_the_method_names_come_from_the_method_registry():
    assert _choices(SFTArgs) == tuple(SFT_METHODS)
    assert _choices(ClassifyArgs) == tuple(CLASSIFY_METHODS)
    assert {f"sft / {m}" for m in SFT_METHODS} | {
        f"classify / {m}" for m in CLASSIFY_METHODS
    } <= set(RECIPES)


def test_every_generative_kind_has_one_engine_and_scoring_kinds_have_none():
    assert {served_by(m.kind) for m in SFT_METHODS.values()} <= {VLLM, PEFT}
    assert served_by("lora") == VLLM and served_by("ia3") == PEFT and served_by("full") == PEFT
    assert not set(GENERATIVE_KINDS) & set(SCORING_KINDS)


def _service(tmp_path: Path, kind: str) -> AdapterService:
    registry = AdapterRegistry(tmp_path / "adapters")
    registry.commit(
        registry.staging("x"), Manifest(name="x", kind=kind, method=kind, base_model="/m/base")
    )
    return AdapterService(registry, VLLMGenerator(UNREACHABLE, "base"), PeftGenerator(registry))


def test_a_scoring_adapter_is_refused_with_what_to_use_instead(tmp_path):
    with pytest.raises(AdapterError, match=r"'x' is a classifier; use `ragtune classify"):
        _service(tmp_path, "classifier").load("x")


def test_a_peft_kind_is_served_by_transformers_without_asking_the_engine(tmp_path):
    result = _service(tmp_path, "prefix").load("x")
    assert (result.kind, result.served_by) == ("prefix", PEFT)


def test_one_predicate_decides_what_generates_and_unknown_kinds_go_to_peft(tmp_path):
    assert all(is_generative(kind) for kind in GENERATIVE_KINDS)
    assert not any(is_generative(kind) for kind in SCORING_KINDS)
    service = _service(tmp_path, "newer-kind")  # a kind a later ragtune may write
    assert is_generative("newer-kind") and served_by("newer-kind") == PEFT
    assert service.registry.generative() == ["x"] == service.peft.models()
    assert service.load("x").served_by == PEFT
    assert _service(tmp_path / "r", "reward").registry.generative() == []


def test_an_unreachable_engine_is_reported_as_unavailable(tmp_path):
    service = _service(tmp_path, "lora")
    with pytest.raises(AdapterError, match="cannot ask the vLLM server which model it runs"):
        service.server_model()
    with pytest.raises(GeneratorUnavailable, match="not reachable"):
        service.unload("x")


def test_the_engine_url_is_built_once_and_split_once(tmp_path, make_settings):
    client = VLLMGenerator("http://gpu-box:8000/v1/", "base")
    assert (client.base_url, client.root) == ("http://gpu-box:8000/v1", "http://gpu-box:8000")
    engine = VLLMEngine(GeneratorSettings(port=8123), "m", tmp_path / "log")
    assert engine.url == engine.client.base_url == "http://127.0.0.1:8123/v1"
    assert generator_url(make_settings(generator={"port": 8123})) == engine.url


class _Engine(VLLMGenerator):
    """The engine's LoRA table in memory: what ``AdapterService`` loads and unloads."""

    def __init__(self) -> None:
        super().__init__(UNREACHABLE, "/m/base")
        self.table: dict[str, str] = {}
        self.calls: list[str] = []

    def served_model(self) -> str:
        return "/m/base"

    def models(self) -> list[str]:
        return [self.served_name, *self.table]

    def load_lora(self, name: str, folder: str) -> None:
        self.calls.append(f"load {name}")
        self.table[name] = (Path(folder) / "weights").read_text()

    def unload_lora(self, name: str) -> None:
        self.calls.append(f"unload {name}")
        del self.table[name]


def _commit_lora(registry: AdapterRegistry, weights: str) -> None:
    staging = registry.staging("x")
    (staging / "weights").write_text(weights)
    registry.commit(
        staging,
        Manifest(name="x", kind="lora", method="lora", base_model="/m/base"),
        overwrite=True,
    )


def test_a_retrained_adapter_is_reloaded_so_the_engine_never_serves_old_weights(tmp_path):
    registry = AdapterRegistry(tmp_path / "adapters")
    _commit_lora(registry, "v1")
    engine = _Engine()
    service = AdapterService(registry, engine, PeftGenerator(registry))
    service.load("x", probe=False)
    service.load("x", probe=False)
    assert engine.calls == ["load x"] and engine.table == {"x": "v1"}
    _commit_lora(registry, "v2")  # `ragtune train ... --name x --overwrite`
    service.load("x", probe=False)
    assert engine.calls == ["load x", "unload x", "load x"] and engine.table == {"x": "v2"}
    other = AdapterService(registry, engine, PeftGenerator(registry))  # another process
    other.load("x", probe=False)
    assert engine.table == {"x": "v2"} and engine.calls[-2:] == ["unload x", "load x"]
