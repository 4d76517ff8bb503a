"""Which ``model`` names the API accepts and what each one means.

- ``base``: the served base model, the client's messages as they are;
- an adapter name from the registry: the same, through that adapter;
- ``rag:<collection>``: the last user message is answered from the collection's
  retrieved sources (cited), with the base model;
- ``rag:<collection>+<adapter>``: the same through an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexing.errors import NotFound
from indexing.store import VectorStore
from training.registry import AdapterRegistry


class UnknownModel(NotFound, LookupError):
    """A model name that is none of the above; says why and carries the valid names (404)."""

    error_type = "invalid_request_error"
    label = "unknown_model"

    def __init__(self, name: str, valid: list[str], reason: str = "") -> None:
        why = f" ({reason})" if reason else ""
        super().__init__(
            f"unknown model {name!r}{why}; valid models: {', '.join(valid)} "
            "(and rag:<collection>+<adapter>)",
            param="model",
        )
        self.valid = valid
        self.details = {"valid_models": valid}


@dataclass(frozen=True)
class Target:
    """What a model name resolves to."""

    name: str
    adapter: str | None = None
    collection: str | None = None


class ModelCatalog:
    """Resolves and lists model names from the registry and the store, live."""

    def __init__(
        self, registry: AdapterRegistry, store: VectorStore, base_name: str = "base"
    ) -> None:
        self.registry = registry
        self.store = store
        self.base_name = base_name

    def names(self) -> list[str]:
        """Every servable name (RAG combinations with adapters are valid but not listed)."""
        return [
            self.base_name,
            *self.registry.generative(),
            *(f"rag:{c}" for c in self.store.collection_names()),
        ]

    def resolve(self, name: str) -> Target:
        """The target of ``name``; ``UnknownModel`` (with the reason and valid names) otherwise.

        Parsed strictly: ``rag:`` needs a collection that exists, ``+`` an adapter that
        does; nothing falls back to another model.
        """
        adapters = set(self.registry.generative())
        if name == self.base_name:
            return Target(name)
        if name in adapters:
            return Target(name, adapter=name)
        if not name.startswith("rag:"):
            reason = "adapters combine only with rag:<collection>" if "+" in name else ""
            raise UnknownModel(name, self.names(), reason)
        collection, plus, adapter = name[4:].partition("+")
        collections = self.store.collection_names()
        if not collection:
            raise UnknownModel(name, self.names(), "rag: names no collection")
        if collection not in collections:
            raise UnknownModel(name, self.names(), f"no collection {collection!r}")
        if plus and not adapter:
            raise UnknownModel(name, self.names(), "'+' names no adapter")
        if plus and adapter not in adapters:
            known = ", ".join(sorted(adapters)) or "none"
            raise UnknownModel(
                name, self.names(), f"no generative adapter {adapter!r}; adapters: {known}"
            )
        return Target(name, adapter=adapter or None, collection=collection)
