"""The routing generator: named engines first (generator.routes), then adapters by kind."""

from __future__ import annotations

from types import SimpleNamespace

from app.adapters import AdapterService, RoutingGenerator
from app.components import build_generator
from app.generation.base import GenerationParams, ModelNotServed

PARAMS = GenerationParams(temperature=0, max_tokens=4)
MESSAGES = [{"role": "user", "content": "hi"}]


class Engine:
    """Answers with its own tag and the model it was asked for."""

    def __init__(self, tag: str, forget_once: str | None = None) -> None:
        self.tag, self.forget_once = tag, forget_once

    def stream(self, messages, *, adapter=None, params):
        if adapter is not None and adapter == self.forget_once:
            self.forget_once = None
            raise ModelNotServed(f"the server does not know model {adapter!r}")
        yield f"{self.tag}:{adapter or 'base'}"


class Service(AdapterService):
    def __init__(self, engine: Engine) -> None:
        super().__init__(registry=None, vllm=engine, peft=None)
        self.loads, self.forgotten = [], []

    def load(self, name, probe=False):
        self.loads.append(name)
        return SimpleNamespace(served_by="vllm")

    def forget(self, name):
        self.forgotten.append(name)


def test_routes_send_base_and_merged_adapters_to_their_own_engines():
    service = Service(Engine("lora-engine"))
    routing = RoutingGenerator(
        service, {"base": Engine("base-engine"), "merged": Engine("merged-engine")}
    )
    assert "".join(routing.stream(MESSAGES, params=PARAMS)) == "base-engine:base"
    assert (
        "".join(routing.stream(MESSAGES, adapter="merged", params=PARAMS)) == "merged-engine:base"
    )
    assert "".join(routing.stream(MESSAGES, adapter="other", params=PARAMS)) == "lora-engine:other"
    assert service.loads == ["other"]


def test_an_adapter_the_engine_lost_is_loaded_again_once():
    service = Service(Engine("lora-engine", forget_once="ad"))
    assert (
        "".join(RoutingGenerator(service).stream(MESSAGES, adapter="ad", params=PARAMS))
        == "lora-engine:ad"
    )
    assert service.forgotten == ["ad"] and service.loads == ["ad", "ad"]


def test_routes_come_from_the_settings(make_settings):
    generator = build_generator(
        make_settings(generator={"routes": {"base": "http://127.0.0.1:8101/v1"}})
    )
    assert generator.routes["base"].base_url == "http://127.0.0.1:8101/v1"
    assert generator.routes["base"].served_name == "base"
