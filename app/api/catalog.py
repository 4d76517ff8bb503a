"""Which ``model`` names the API accepts and what each one means.

- ``base``: the served base model, the client's messages as they are;
- an adapter name from the registry: the same, through that adapter;
- ``rag:<collection>``: the last user message is answered from the collection's
  retrieved sources (cited), with the base model;
- ``rag:<collection>+<adapter>``: the same through an adapter.
"""

from __future__ import annotations

from dataclasses import dataclass

from indexing.store import VectorStore
from training.registry import AdapterRegistry


class UnknownModel(LookupError):
    """A model name that is none of the above; carries the valid names."""

    def __init__(self, name: str, valid: list[str]) -> None:
        super().__init__(f"unknown model {name!r}; valid models: {', '.join(valid)} "
                         "(and rag:<collection>+<adapter>)")  # fmt: skip
        self.valid = valid


@dataclass(frozen=True)
class Target:
    """What a model name resolves to."""

    name: str
    adapter: str | None = None
    collection: str | None = None


class ModelCatalog:
    """Resolves and lists model names from the registry and the store, live."""

    def __init__(self, registry: AdapterRegistry, store: VectorStore, base_name: str = "base") -> None:
        self.registry = registry
        self.store = store
        self.base_name = base_name

    def names(self) -> list[str]:
        """Every servable name (RAG combinations with adapters are valid but not listed)."""
        return [self.base_name, *self.registry.generative(), *(f"rag:{c}" for c in self.store.collection_names())]

    def resolve(self, name: str) -> Target:
        """The target of ``name``; ``UnknownModel`` with the valid names otherwise."""
        adapters = set(self.registry.generative())
        if name == self.base_name:
            return Target(name)
        if name in adapters:
            return Target(name, adapter=name)
        if name.startswith("rag:"):
            collection, _, adapter = name[4:].partition("+")
            if collection in self.store.collection_names() and (not adapter or adapter in adapters):
                return Target(name, adapter=adapter or None, collection=collection)
        raise UnknownModel(name, self.names())
