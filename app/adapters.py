"""Serving trained adapters: hot-load LoRA into vLLM, route the rest to transformers + peft.

The registry is the only source of adapters, and ``training.methods`` says where each
kind is served (``served_by``) and which kinds only score. A LoRA adapter is loaded into
the running vLLM server through its runtime API (no restart); after loading, a probe
prompt is answered greedily by base and adapter, and an adapter whose answer is identical
is flagged, since a silently ignored adapter is a known failure of serving stacks.
``app.components`` builds one ``AdapterService`` per process and hands it to the
``RoutingGenerator``, the Adapters tab and the CLI.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from app.generation.base import (
    GenerationParams,
    GeneratorError,
    GeneratorUnavailable,
    Message,
    ModelNotServed,
)
from app.generation.peft_backend import PeftGenerator, folder_name
from app.generation.vllm_client import VLLMGenerator
from training.methods import SCORING_KINDS, VLLM, is_generative, served_by
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
    """Loads registry adapters where they can be served and routes generation to them.

    ``stream`` and ``complete_stream`` answer with the base model (``adapter=None``) or a
    registry adapter, on the engine that serves its kind.
    """

    def __init__(self, registry: AdapterRegistry, vllm: VLLMGenerator, peft: PeftGenerator) -> None:
        self.registry = registry
        self.vllm = vllm
        self.peft = peft
        self._served_by: dict[str, str] = {}  # adapters already made servable in this process
        self._revisions: dict[str, int] = {}  # registry revision of each LoRA loaded from here
        self._loading = threading.Lock()

    def server_model(self) -> str:
        """The model path the vLLM server runs (its base model); ``AdapterError`` if unknown."""
        with _refusals():
            return self.vllm.served_model()

    def loaded(self) -> list[str]:
        """Adapters currently loaded in the vLLM server."""
        return [m for m in self.vllm.models() if m != self.vllm.served_name]

    def load(self, name: str, *, probe: bool = True) -> LoadResult:
        """Make adapter ``name`` servable; refuses a base-model mismatch by name.

        An adapter retrained under the same name (``--overwrite``) since this process
        loaded it, or loaded into the engine by another process, is loaded again, so the
        engine never serves stale weights under a current name.
        """
        if (
            not probe
            and name in self._served_by
            and self.registry.exists(name)
            and self._revisions.get(name) == self._revision(name)
        ):
            return LoadResult(name, self.registry.get(name).kind, self._served_by[name])
        try:
            manifest = self.registry.get(name)
        except RegistryError as exc:
            raise AdapterError(str(exc)) from None
        if not is_generative(manifest.kind):
            raise AdapterError(SCORING_KINDS[manifest.kind].format(name=name))
        where = served_by(manifest.kind)
        if where != VLLM:
            self._served_by[name] = where
            return LoadResult(name, manifest.kind, where)
        server = self.server_model()
        if folder_name(manifest.base_model) != folder_name(server):
            raise AdapterError(
                f"adapter {name!r} was trained on {folder_name(manifest.base_model)!r} but the "
                f"server runs {folder_name(server)!r}; refused"
            )
        with self._loading:  # concurrent first requests for one adapter load it once
            revision = self._revision(name)
            if self._revisions.get(name) != revision:
                with _refusals():
                    if name in self.loaded():
                        self.vllm.unload_lora(name)
                    self.vllm.load_lora(name, str(self.registry.path(name).resolve()))
                self._revisions[name] = revision
            elif name not in self.loaded():
                with _refusals():
                    self.vllm.load_lora(name, str(self.registry.path(name).resolve()))
        self._served_by[name] = VLLM
        result = LoadResult(name, manifest.kind, VLLM)
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
        self._revisions.pop(name, None)

    def unload(self, name: str) -> None:
        """Remove a LoRA adapter from the vLLM server."""
        self.forget(name)
        with _refusals():
            self.vllm.unload_lora(name)

    def _revision(self, name: str) -> int | None:
        try:
            return self.registry.revision(name)
        except RegistryError:
            return None

    def choices(self) -> list[str]:
        """Adapters a chat can answer with (not classifiers or reward models)."""
        return self.registry.generative()

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Text deltas from the base model or ``adapter``; a LoRA adapter loads on first use."""
        return self._generate("stream", messages, adapter, params=params)

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        """The API's chunks, served like ``stream`` (the adapter is loaded now, not at
        the first chunk)."""
        return self._generate("complete_stream", messages, adapter, params=params, fields=fields)

    def health(self) -> bool:
        """True when the vLLM server answers ``/health``."""
        return self.vllm.health()

    def _generate(self, method: str, messages: list[Message], adapter: str | None, **kwargs):
        """Call ``method`` of the engine serving ``adapter`` (the base model when None)."""
        if adapter is None:
            return getattr(self.vllm, method)(messages, adapter=None, **kwargs)
        if self.load(adapter, probe=False).served_by != VLLM:
            return getattr(self.peft, method)(messages, adapter=adapter, **kwargs)
        return self._through_lora(method, messages, adapter, kwargs)

    def _through_lora(self, method: str, messages: list[Message], adapter: str, kwargs: dict):
        """Generate through a LoRA adapter; reload it once if the engine lost it (it
        was restarted)."""
        call = getattr(self.vllm, method)
        try:
            yield from call(messages, adapter=adapter, **kwargs)
        except ModelNotServed:
            self.forget(adapter)
            self.load(adapter, probe=False)
            yield from call(messages, adapter=adapter, **kwargs)


@contextmanager
def _refusals() -> Iterator[None]:
    """The engine's refusals as ``AdapterError``; an unreachable engine stays
    ``GeneratorUnavailable``."""
    try:
        yield
    except GeneratorUnavailable:
        raise
    except GeneratorError as exc:
        raise AdapterError(str(exc)) from None


class RoutingGenerator:
    """The app's generator: engines of their own by name (``generator.routes``), then the
    adapter service."""

    def __init__(
        self, service: AdapterService, routes: dict[str, VLLMGenerator] | None = None
    ) -> None:
        self.service = service
        self.routes = routes or {}  # names served by engines of their own (generator.routes)

    def stream(
        self, messages: list[Message], *, adapter: str | None = None, params: GenerationParams
    ) -> Iterator[str]:
        """Route by name (``generator.routes``), then by the adapter's kind; LoRA
        loads on first use."""
        backend, name = self._backend(adapter)
        return backend.stream(messages, adapter=name, params=params)

    def complete_stream(
        self,
        messages: list[Message],
        *,
        adapter: str | None = None,
        params: GenerationParams,
        fields: dict,
    ) -> Iterator[dict]:
        """The API's chunks, routed like ``stream`` (the adapter is loaded now, not at
        the first chunk)."""
        backend, name = self._backend(adapter)
        return backend.complete_stream(messages, adapter=name, params=params, fields=fields)

    def _backend(self, adapter: str | None):
        """The generator serving ``adapter`` and the adapter name to hand it (None: a whole
        engine or the base)."""
        name = adapter or "base"
        if name in self.routes:
            return self.routes[name], None
        return self.service, None if name == "base" else adapter

    def health(self) -> bool:
        return self.service.health()

    def models(self) -> list[str]:
        return ["base", *self.service.choices()]
