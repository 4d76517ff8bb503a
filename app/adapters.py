"""Serving trained adapters: hot-load LoRA into vLLM, route the rest to transformers + peft.

The registry is the only source of adapters. A LoRA adapter is loaded into the running
vLLM server through its runtime API (no restart); after loading, a probe prompt is
answered greedily by base and adapter, and an adapter whose answer is identical is
flagged, since a silently ignored adapter is a known failure of serving stacks.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from dataclasses import dataclass

import httpx

from app.generation.base import GenerationParams, GeneratorError, Message, ModelNotServed
from app.generation.peft_backend import PeftGenerator, folder_name
from app.generation.vllm_client import VLLMGenerator
from training.registry import AdapterRegistry, RegistryError

PROBE = [{"role": "user", "content": "In one sentence, what is ragtune?"}]
PROBE_PARAMS = GenerationParams(temperature=0.0, max_tokens=32, seed=0)


class AdapterError(GeneratorError):
    """An adapter cannot be served; the message names it and the reason."""


@dataclass
class LoadResult:
    """What loading an adapter did."""

    name: str
    kind: str
    served_by: str
    changed_output: bool | None = None
    base_answer: str = ""
    adapter_answer: str = ""

    @property
    def warning(self) -> str:
        """Non-empty when the probe suggests the adapter changes nothing."""
        if self.changed_output is False:
            return (
                f"adapter {self.name!r} answered the probe exactly like the base model; "
                "it may not be applied (check its rank, target modules and training)"
            )
        return ""


class AdapterService:
    """Loads registry adapters where they can be served and routes generation to them."""

    def __init__(
        self, registry: AdapterRegistry, vllm: VLLMGenerator | None, peft: PeftGenerator
    ) -> None:
        self.registry = registry
        self.vllm = vllm
        self.peft = peft
        self._served_by: dict[str, str] = {}  # adapters already made servable in this process
        self._loading = threading.Lock()

    def _root(self) -> str:
        return self.vllm.base_url.removesuffix("/v1")

    def server_model(self) -> str:
        """The model path the vLLM server runs (its base model)."""
        try:
            data = httpx.get(f"{self.vllm.base_url}/models", timeout=10).json()["data"]
        except (httpx.HTTPError, KeyError, ValueError) as exc:
            raise AdapterError(f"cannot ask the vLLM server which model it runs: {exc}") from None
        for entry in data:
            if entry["id"] == self.vllm.served_name:
                return entry.get("root") or entry["id"]
        raise AdapterError(f"the vLLM server does not serve {self.vllm.served_name!r}")

    def loaded(self) -> list[str]:
        """Adapters currently loaded in the vLLM server."""
        return [m for m in self.vllm.models() if m != self.vllm.served_name] if self.vllm else []

    def load(self, name: str, *, probe: bool = True) -> LoadResult:
        """Make adapter ``name`` servable; refuses a base-model mismatch by name."""
        if not probe and name in self._served_by and self.registry.exists(name):
            return LoadResult(name, self.registry.get(name).kind, self._served_by[name])
        try:
            manifest = self.registry.get(name)
        except RegistryError as exc:
            raise AdapterError(str(exc)) from None
        if manifest.kind == "classifier":
            raise AdapterError(
                f"{name!r} is a classifier; use `ragtune classify TEXT --adapter {name}`"
            )
        if manifest.kind == "reward":
            raise AdapterError(
                f"{name!r} is a reward model; use `ragtune reward score --adapter {name}`"
            )
        if manifest.kind != "lora":
            self._served_by[name] = "transformers+peft"
            return LoadResult(name, manifest.kind, "transformers+peft")
        if self.vllm is None:
            raise AdapterError("no vLLM server is configured to load LoRA adapters into")
        server = self.server_model()
        if folder_name(manifest.base_model) != folder_name(server):
            raise AdapterError(
                f"adapter {name!r} was trained on {folder_name(manifest.base_model)!r} but the "
                f"server runs {folder_name(server)!r}; refused"
            )
        with self._loading:  # concurrent first requests for one adapter load it once
            if name not in self.loaded():
                response = httpx.post(
                    f"{self._root()}/v1/load_lora_adapter",
                    json={"lora_name": name, "lora_path": str(self.registry.path(name).resolve())},
                    timeout=120,
                )
                if response.status_code != 200:
                    raise AdapterError(
                        f"the vLLM server refused adapter {name!r}: {response.text[:300]}"
                    )
        self._served_by[name] = "vllm"
        result = LoadResult(name, "lora", "vllm")
        if probe:
            result.base_answer = "".join(self.vllm.stream(PROBE, params=PROBE_PARAMS))
            result.adapter_answer = "".join(
                self.vllm.stream(PROBE, adapter=name, params=PROBE_PARAMS)
            )
            result.changed_output = result.base_answer != result.adapter_answer
        return result

    def forget(self, name: str) -> None:
        """Drop what this process remembers about ``name`` being served (the engine restarted)."""
        self._served_by.pop(name, None)

    def unload(self, name: str) -> None:
        """Remove a LoRA adapter from the vLLM server."""
        self._served_by.pop(name, None)
        response = httpx.post(
            f"{self._root()}/v1/unload_lora_adapter", json={"lora_name": name}, timeout=60
        )
        if response.status_code != 200:
            raise AdapterError(f"the vLLM server could not unload {name!r}: {response.text[:300]}")

    def choices(self) -> list[str]:
        """Adapters a chat can answer with (not classifiers or reward models)."""
        return self.registry.generative()


class RoutingGenerator:
    """The app's generator: base and LoRA requests to vLLM, other adapters to peft."""

    def __init__(
        self, service: AdapterService, routes: dict[str, VLLMGenerator] | None = None
    ) -> None:
        self.service = service
        self.routes = routes or {}  # names served by engines of their own (generator.routes)

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Route by name (``generator.routes``), then by the adapter's kind; LoRA loads on first use."""
        return self._route("stream", messages, adapter, params=params)

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        """The API's chunks, routed like ``stream`` (the adapter is loaded now, not at the first chunk)."""
        return self._route("complete_stream", messages, adapter, params=params, fields=fields)

    def _route(self, method: str, messages: list[Message], adapter: str | None, **kwargs):
        """Call ``method`` of the backend serving ``adapter``."""
        backend, name = self._backend(adapter)
        if backend is not self.service.vllm or name is None:
            return getattr(backend, method)(messages, adapter=name, **kwargs)
        return self._through_lora(method, messages, name, kwargs)

    def _through_lora(self, method: str, messages: list[Message], adapter: str, kwargs: dict):
        """Generate through a LoRA adapter; reload it once if the engine lost it (it was restarted)."""
        call = getattr(self.service.vllm, method)
        try:
            yield from call(messages, adapter=adapter, **kwargs)
        except ModelNotServed:
            self.service.forget(adapter)
            self.service.load(adapter, probe=False)
            yield from call(messages, adapter=adapter, **kwargs)

    def _backend(self, adapter: str | None):
        """The generator serving ``adapter`` and the adapter name to hand it (None for a whole engine)."""
        name = adapter or "base"
        if name in self.routes:
            return self.routes[name], None
        if name == "base":
            return self.service.vllm, None
        if self.service.load(adapter, probe=False).served_by == "vllm":
            return self.service.vllm, adapter
        return self.service.peft, adapter

    def health(self) -> bool:
        return self.service.vllm.health()

    def models(self) -> list[str]:
        return ["base", *self.service.choices()]
