"""The chat service: question -> (retrieve) -> prompt -> stream the answer, with sources.

Shared by the CLI (`ragtune ask`), the Gradio chat and the HTTP API, so every front end
answers the same way. Components arrive by constructor injection (see ``app.components``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from functools import cached_property
from typing import TYPE_CHECKING

from app.generation.base import GenerationParams, Generator
from app.generation.repetition import RepetitionGuard
from app.prompting import (
    Demonstration,
    Mode,
    PromptError,
    build_messages,
    dataset_demonstrations,
    load_demonstrations,
)
from app.settings import PromptingSettings
from indexing.collection import RetrievalChoice
from indexing.lexical import MetadataFilter
from indexing.retrieval import HybridRetriever, RetrievedChunk, Retriever
from indexing.store import StoreError

if TYPE_CHECKING:
    from training.qa_dataset import DatasetStore


@dataclass
class Answer:
    """A finished answer with its sources and timing."""

    question: str
    answer: str
    sources: list[RetrievedChunk] = field(default_factory=list)
    mode: str = "rag"
    latency_s: float = 0.0

    def to_dict(self, *, include_text: bool = True) -> dict:
        """The JSONL record of ``ragtune ask``."""
        return {
            "question": self.question,
            "answer": self.answer,
            "mode": self.mode,
            "sources": [
                {
                    "source": s.source,
                    "page": s.page,
                    "heading": s.heading,
                    "score": s.score,
                    "also_in": s.also_in,
                    **({"text": s.text} if include_text else {}),
                }
                for s in self.sources
            ],
            "latency_s": round(self.latency_s, 3),
        }


@dataclass
class PreparedTurn:
    """Everything decided before generation starts."""

    question: str
    mode: Mode
    messages: list[dict[str, str]]
    sources: list[RetrievedChunk]


class ChatService:
    """Answers questions in zero-shot, few-shot or RAG mode.

    ``tuned`` gives a collection's stored retrieval setting (``VectorStore.tuned_retrieval``,
    written by ``ragtune retrieval tune --apply``); a request's own retriever or k wins over it.
    """

    def __init__(
        self,
        generator: Generator,
        retrievers: dict[str, Retriever],
        prompting: PromptingSettings,
        params: GenerationParams,
        default_collection: str,
        default_retriever: str = "hybrid",
        guard: RepetitionGuard | None = None,
        tuned: Callable[[str], RetrievalChoice | None] | None = None,
        datasets: DatasetStore | None = None,
    ) -> None:
        self.generator = generator
        self.tuned = tuned
        self._fused: dict[tuple[str, float | None], Retriever] = {}
        self.retrievers = retrievers
        self.default_retriever = default_retriever
        self.prompting = prompting
        self.params = params
        self.default_collection = default_collection
        self.guard = guard
        self.datasets = datasets

    @cached_property
    def demonstrations(self) -> list[Demonstration]:
        """Few-shot demonstrations, read once."""
        return load_demonstrations(self.prompting.fewshot_file)

    def demonstrations_for(self, demos: str | None = None) -> list[Demonstration]:
        """The settings' demonstrations, or the train split of dataset ``demos``.

        Raises ``DatasetNotFound`` for an unknown dataset, ``PromptError`` for an empty
        train split or when this service has no dataset store.
        """
        if not demos:
            return self.demonstrations
        if self.datasets is None:
            raise PromptError(f"demos={demos}: this chat service has no dataset store")
        return dataset_demonstrations(self.datasets.get(demos))

    def retrieve(
        self,
        question: str,
        collection: str | None = None,
        k: int | None = None,
        *,
        retriever: str | None = None,
        flt: MetadataFilter | None = None,
    ) -> list[RetrievedChunk]:
        """The sources a RAG answer would use.

        Unset ``retriever`` and ``k`` come from the collection's tuned setting, else from
        the settings; hybrid retrieval on a collection tuned to hybrid uses its fusion.
        """
        collection = collection or self.default_collection
        tuned = self.tuned(collection) if self.tuned else None
        kind = retriever or (tuned.retriever if tuned else self.default_retriever)
        if kind not in self.retrievers:
            raise StoreError(
                f"unknown retriever {kind!r}; choose one of {', '.join(self.retrievers)}"
            )
        k = k or (tuned.k if tuned else self.prompting.top_k)
        return self._retriever(kind, tuned).retrieve(question, collection, k, flt)

    def retrieval_for(self, collection: str | None = None) -> tuple[str, int]:
        """The retriever and k that ``retrieve`` uses on ``collection`` when a request sets
        neither (the collection's tuned setting, else the settings)."""
        tuned = self.tuned(collection or self.default_collection) if self.tuned else None
        if tuned:
            return tuned.retriever, tuned.k
        return self.default_retriever, self.prompting.top_k

    def _retriever(self, kind: str, tuned: RetrievalChoice | None) -> Retriever:
        base = self.retrievers[kind]
        if not (
            tuned and kind == tuned.retriever == "hybrid" and isinstance(base, HybridRetriever)
        ):
            return base
        key = (tuned.fusion, tuned.alpha if tuned.fusion == "convex" else None)
        if key == (base.fusion, base.alpha if base.fusion == "convex" else None):
            return base
        if key not in self._fused:
            self._fused[key] = HybridRetriever(
                base.store,
                base.embedder,
                fusion=tuned.fusion,
                alpha=base.alpha if tuned.alpha is None else tuned.alpha,
                rrf_k=base.rrf_k,
                candidates=base.candidates,
            )
        return self._fused[key]

    def prepare(
        self,
        question: str,
        *,
        mode: Mode | None = None,
        collection: str | None = None,
        k: int | None = None,
        retriever: str | None = None,
        flt: MetadataFilter | None = None,
        fewshot_count: int | None = None,
        demos: str | None = None,
    ) -> PreparedTurn:
        """Retrieve (in RAG mode) and build the messages.

        Few-shot demonstrations come from ``prompting.fewshot_file``, or from the train
        split of dataset ``demos`` when it is given.
        """
        mode = mode or self.prompting.default_mode
        sources = (
            self.retrieve(question, collection, k, retriever=retriever, flt=flt)
            if mode == "rag"
            else []
        )
        count = self.prompting.fewshot_count if fewshot_count is None else fewshot_count
        shown = self.demonstrations_for(demos)[:count] if mode == "few-shot" else []
        messages = self.compose(question, mode, sources=sources, demonstrations=shown)
        return PreparedTurn(question, mode, messages, sources)

    def compose(
        self,
        question: str,
        mode: Mode,
        *,
        sources: list[RetrievedChunk] | None = None,
        demonstrations: list[Demonstration] | None = None,
    ) -> list[dict[str, str]]:
        """The messages ``prepare`` sends for ``question``, given its sources in this order.

        RAFT training (``app.raft``) builds its prompts here, so a RAFT adapter is trained
        on exactly the prompt that a ``rag:`` variant serves.
        """
        return build_messages(
            mode,
            question,
            system_prompt=self.prompting.system_prompt,
            sources=sources,
            demonstrations=demonstrations,
            max_source_chars=self.prompting.max_source_chars,
        )

    def stream(self, turn: PreparedTurn, *, adapter: str | None = None) -> Iterator[str]:
        """Text deltas of the answer to a prepared turn, ended early if it starts to loop."""
        deltas = self.generator.stream(turn.messages, adapter=adapter, params=self.params)
        return self.guard.guard(deltas) if self.guard else deltas

    def answer(self, question: str, *, adapter: str | None = None, **kwargs) -> Answer:
        """Answer in one call (CLI, batch use)."""
        started = time.perf_counter()
        turn = self.prepare(question, **kwargs)
        text = "".join(self.stream(turn, adapter=adapter)).strip()
        return Answer(question, text, turn.sources, turn.mode, time.perf_counter() - started)
