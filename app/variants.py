"""Variants: named answering recipes, generator x prompting mode, defined in YAML.

A variant is what the A/B arena, the eval runner and the API compare: the base model or
an adapter from the registry, in zero-shot, few-shot (N demonstrations) or RAG mode
(collection, retriever, k). ``configs/variants.yaml`` holds the shipped ones.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml

from app.chat import Answer, ChatService
from app.prompting import MODES
from evals.runner import Answerer, Candidate, Predictor, SourcedAnswer
from indexing.errors import RagtuneError
from indexing.retrieval import RETRIEVER_KINDS


class VariantError(RagtuneError, ValueError):
    """A variant definition or reference is wrong; the message names the variant."""


@dataclass(frozen=True)
class Variant:
    """One answering recipe."""

    name: str
    mode: str = "zero-shot"
    adapter: str | None = None
    collection: str | None = None
    retriever: str | None = None
    k: int | None = None
    fewshot_count: int | None = None
    classifier: str | None = None
    description: str = ""

    def to_dict(self) -> dict:
        """JSON-ready form."""
        return {k: v for k, v in asdict(self).items() if v not in (None, "")}

    def label(self) -> str:
        """A short human description, e.g. ``rag(docs, hybrid, k=4) + lora-x``."""
        if self.classifier:
            return f"classifier {self.classifier}"
        mode = self.mode
        if self.mode == "rag":
            mode = f"rag({self.collection or 'default'}, {self.retriever or 'default'}, k={self.k or 'default'})"
        elif self.mode == "few-shot" and self.fewshot_count is not None:
            mode = f"few-shot({self.fewshot_count})"
        return f"{mode} + {self.adapter}" if self.adapter else mode


def load_variants(path: Path) -> dict[str, Variant]:
    """Variants from a YAML file ``variants: {name: {mode, adapter, ...}}``."""
    if not path.exists():
        raise VariantError(f"{path}: no such variants file")
    try:
        raw = (yaml.safe_load(path.read_text()) or {}).get("variants") or {}
    except yaml.YAMLError as exc:
        raise VariantError(f"{path}: not valid YAML: {exc}") from None
    variants = {}
    for name, spec in raw.items():
        spec = spec or {}
        unknown = set(spec) - (set(Variant.__dataclass_fields__) - {"name"})
        if unknown:
            raise VariantError(
                f"{path}: variant {name!r} has unknown field(s) {', '.join(sorted(unknown))}"
            )
        variant = Variant(name=str(name), **spec)
        if variant.mode not in MODES:
            raise VariantError(
                f"{path}: variant {name!r}: mode {variant.mode!r} is not one of {', '.join(MODES)}"
            )
        if variant.retriever and variant.retriever not in RETRIEVER_KINDS:
            raise VariantError(f"{path}: variant {name!r}: unknown retriever {variant.retriever!r}")
        variants[variant.name] = variant
    return variants


def pick(variants: dict[str, Variant], names: list[str]) -> list[Variant]:
    """The named variants, refusing unknown names with the known ones listed."""
    unknown = [n for n in names if n not in variants]
    if unknown:
        raise VariantError(
            f"unknown variant(s) {', '.join(unknown)}; defined: {', '.join(variants)}"
        )
    return [variants[n] for n in names]


class VariantRunner:
    """Answers questions the way a variant says, through the shared chat service."""

    def __init__(self, chat: ChatService) -> None:
        self.chat = chat

    def _kwargs(self, variant: Variant) -> dict:
        return {
            "mode": variant.mode,
            "collection": variant.collection,
            "k": variant.k,
            "retriever": variant.retriever,
            "fewshot_count": variant.fewshot_count,
        }

    def prepare(self, variant: Variant, question: str):
        """Retrieve and build the prompt for ``question``."""
        return self.chat.prepare(question, **self._kwargs(variant))

    def stream(self, variant: Variant, turn) -> Iterator[str]:
        """Deltas of the variant's answer to a prepared turn."""
        return self.chat.stream(turn, adapter=variant.adapter)

    def answer(self, variant: Variant, question: str) -> Answer:
        """The variant's complete answer."""
        return self.chat.answer(question, adapter=variant.adapter, **self._kwargs(variant))

    def answerer(self, variant: Variant) -> Answerer:
        """``variant``'s answers as the eval runner takes them: question -> ``SourcedAnswer``.

        The answer streams (prepare, then stream), so ``tokens`` counts the streamed deltas.
        """

        def answer(question: str) -> SourcedAnswer:
            turn = self.prepare(variant, question)
            deltas = list(self.stream(variant, turn))
            return SourcedAnswer("".join(deltas), list(turn.sources), tokens=len(deltas))

        return answer

    def candidates(
        self,
        variants: list[Variant],
        classifier: Callable[[str], Predictor] | None = None,
    ) -> list[Candidate]:
        """The eval runner's candidates for ``variants``, in order.

        A variant with a ``classifier`` predicts through ``classifier(name)`` (loaded here,
        once per variant; its errors propagate) when that factory is given; every other
        variant answers through the chat service.
        """
        return [
            Candidate(v.name, predict=classifier(v.classifier))
            if v.classifier and classifier
            else Candidate(v.name, answer=self.answerer(v))
            for v in variants
        ]
