"""Which ``model`` names the API accepts and what each one means.

- ``base``: the served base model, the client's messages as they are;
- an adapter name from the registry: the same, through that adapter;
- ``rag:<collection>``: the last user message is answered from the collection's
  retrieved sources (cited), with the base model;
- ``rag:<collection>+<adapter>``: the same through an adapter;
- any other variant spec (``app.variants.parse_spec``): ``zero-shot`` (as ``base``),
  ``few-shot`` (the demonstrations go before the client's turns), each with
  ``+<adapter>``, and the options ``@k=N``, ``@retriever=R`` (rag:), ``@shots=N``,
  ``@demos=DATASET`` (few-shot), e.g. ``rag:docs+my-lora@k=6@retriever=bm25``.

``/v1/models`` lists base, the adapters and ``rag:<collection>``; the other specs are
valid without being listed. A name that names nothing that exists is a 404 saying why; a
recognisable spec with a wrong option is a 400 naming the option.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.variants import SPEC_HELP, SpecError, Variant, parse_spec
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
            f"(and specs: {SPEC_HELP})",
            param="model",
        )
        self.valid = valid
        self.details = {"valid_models": valid}


@dataclass(frozen=True)
class Target:
    """What a model name resolves to: the variant (mode, adapter, collection, options)."""

    name: str
    variant: Variant

    @property
    def adapter(self) -> str | None:
        """The adapter that generates (None: the base model)."""
        return self.variant.adapter

    @property
    def collection(self) -> str | None:
        """The collection a RAG answer retrieves from (None: no retrieval)."""
        return self.variant.collection


class ModelCatalog:
    """Resolves and lists model names from the registry and the store, live."""

    def __init__(
        self, registry: AdapterRegistry, store: VectorStore, base_name: str = "base"
    ) -> None:
        self.registry = registry
        self.store = store
        self.base_name = base_name

    def names(self) -> list[str]:
        """Every listed name (specs, such as RAG with an adapter, are valid but not listed)."""
        return [
            self.base_name,
            *self.registry.generative(),
            *(f"rag:{c}" for c in self.store.collection_names()),
        ]

    def resolve(self, name: str) -> Target:
        """The target of ``name``, parsed strictly with ``app.variants.parse_spec``.

        Raises ``UnknownModel`` (404, with the reason and the valid names) when the name is
        no spec or names a collection or adapter that does not exist, and ``SpecError``
        (400, ``param: model``) for a wrong option; nothing falls back to another model.
        A few-shot ``@demos`` dataset is looked up when the request is answered (404).
        """
        if name == self.base_name:
            return Target(name, Variant(name))
        try:
            variant = parse_spec(name)
        except SpecError as exc:
            if exc.part == "option":
                raise
            raise UnknownModel(name, self.names(), exc.reason) from None
        adapters = set(self.registry.generative())
        if variant.collection and variant.collection not in self.store.collection_names():
            raise UnknownModel(name, self.names(), f"no collection {variant.collection!r}")
        if variant.adapter and variant.adapter not in adapters:
            bare = variant.name == variant.adapter
            known = ", ".join(sorted(adapters)) or "none"
            reason = "" if bare else f"no generative adapter {variant.adapter!r}; adapters: {known}"
            raise UnknownModel(name, self.names(), reason)
        return Target(name, variant)
