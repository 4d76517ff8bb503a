"""Variants: answering recipes, generator x prompting mode, named in YAML or written inline.

A variant is what the A/B arena, the eval runner and the API compare: the base model or
an adapter from the registry, in zero-shot, few-shot (N demonstrations) or RAG mode
(collection, retriever, k). ``configs/variants.yaml`` holds the named recipes; any other
variant is written inline as a *spec* (``parse_spec``), in the grammar of the API's model
names extended with the prompting mode and options::

    SPEC   := HEAD ["+" ADAPTER] {"@" OPTION}
    HEAD   := "zero-shot" | "few-shot" | "rag:" COLLECTION    (or the API's "base" | ADAPTER)
    OPTION := "k=" 1..50 | "retriever=" dense|bm25|hybrid      (rag: only)
            | "shots=" 0..32 | "demos=" DATASET                  (few-shot only)

e.g. ``rag:docs+my-lora@k=6@retriever=bm25`` or ``few-shot@shots=4@demos=mydata`` (the
demonstrations then come from the dataset's train split). ``@``, ``=``, ``:`` and ``+``
need no quoting in a shell, never appear in a collection, adapter or dataset name, and
leave ``,`` free to separate the specs of ``eval run --variants``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterator
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


class SpecError(VariantError):
    """A spec that does not parse; the message names the spec and the part at fault.

    ``part`` is ``mode``, ``collection`` or ``adapter`` (the spec names nothing that
    could exist) or ``option`` (a recognisable variant with a wrong option).
    """

    def __init__(self, spec: str, part: str = "mode", reason: str = "does not parse") -> None:
        super().__init__(f"variant spec {spec!r}: {reason}", param="model")
        self.spec, self.part, self.reason = spec, part, reason


@dataclass(frozen=True)
class Variant:
    """One answering recipe; ``demos`` names the dataset whose train split gives the
    few-shot demonstrations."""

    name: str
    mode: str = "zero-shot"
    adapter: str | None = None
    collection: str | None = None
    retriever: str | None = None
    k: int | None = None
    fewshot_count: int | None = None
    demos: str | None = None
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
            mode = (
                f"rag({self.collection or 'default'}, {self.retriever or 'default'}, "
                f"k={self.k or 'default'})"
            )
        elif self.mode == "few-shot" and (self.fewshot_count is not None or self.demos):
            shots = "default" if self.fewshot_count is None else self.fewshot_count
            mode = f"few-shot({shots}{f', from {self.demos}' if self.demos else ''})"
        return f"{mode} + {self.adapter}" if self.adapter else mode


_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
# option -> (Variant field, the mode it applies to, parser of its value or None for a name)
_OPTIONS: dict[str, tuple[str, str, tuple[int, int] | tuple[str, ...] | None]] = {
    "k": ("k", "rag", (1, 50)),
    "retriever": ("retriever", "rag", RETRIEVER_KINDS),
    "shots": ("fewshot_count", "few-shot", (0, 32)),
    "demos": ("demos", "few-shot", None),
}
SPEC_HELP = (
    "zero-shot | few-shot | rag:COLLECTION, then +ADAPTER and @k=N @retriever=dense|bm25|hybrid "
    "(rag:) or @shots=N @demos=DATASET (few-shot), e.g. rag:docs+my-lora@k=6@retriever=bm25"
)


def parse_spec(spec: str) -> Variant:
    """The variant a spec names (grammar in the module docstring); its ``name`` is ``spec``.

    Only the syntax is checked: whether the collection, adapter or dataset exists is the
    caller's question. ``base`` is the base model zero-shot and a bare name an adapter
    zero-shot (the API's model names); neither takes ``+`` or options. Raises
    ``SpecError`` naming the part at fault.
    """
    head, *options = spec.split("@")
    mode_part, plus, adapter = head.partition("+")
    fields: dict = {}
    if mode_part in ("zero-shot", "few-shot"):
        fields["mode"] = mode_part
    elif mode_part.startswith("rag:"):
        collection = mode_part[4:]
        if not collection:
            raise SpecError(spec, "collection", "rag: names no collection")
        if not _NAME.match(collection):
            raise SpecError(spec, "collection", f"{collection!r} is not a collection name")
        fields.update(mode="rag", collection=collection)
    elif _NAME.match(mode_part) and not plus and not options:
        return Variant(spec, adapter=None if mode_part == "base" else mode_part)
    elif _NAME.match(mode_part):
        what = "the base model" if mode_part == "base" else f"adapter {mode_part!r}"
        raise SpecError(
            spec,
            "mode",
            f"{what} takes no '+' or '@' options; start with zero-shot, few-shot or rag:COLLECTION",
        )
    else:
        raise SpecError(spec, "mode", f"{mode_part!r} is not a mode ({SPEC_HELP})")
    if plus:
        if not adapter:
            raise SpecError(spec, "adapter", "'+' names no adapter")
        if not _NAME.match(adapter):
            raise SpecError(spec, "adapter", f"{adapter!r} is not an adapter name (one adapter)")
        fields["adapter"] = adapter
    for option in options:
        key, equals, value = option.partition("=")
        _set_option(spec, fields, key, value if equals else None)
    return Variant(spec, **fields)


def _set_option(spec: str, fields: dict, key: str, value: str | None) -> None:
    if key not in _OPTIONS:
        known = ", ".join(_OPTIONS)
        raise SpecError(spec, "option", f"unknown option {key!r} after '@'; options: {known}")
    field, mode, allowed = _OPTIONS[key]
    if value in (None, ""):
        raise SpecError(spec, "option", f"option {key!r} needs a value: @{key}=...")
    if fields["mode"] != mode:
        where = "rag:COLLECTION" if mode == "rag" else mode
        raise SpecError(spec, "option", f"@{key} applies to {where} only")
    if field in fields:
        raise SpecError(spec, "option", f"@{key} is given twice")
    if isinstance(allowed, tuple) and isinstance(allowed[0], int):
        low, high = allowed
        if not value.isdigit() or not low <= int(value) <= high:
            raise SpecError(spec, "option", f"@{key}={value}: a whole number from {low} to {high}")
        fields[field] = int(value)
    elif allowed and value not in allowed:
        raise SpecError(spec, "option", f"@{key}={value}: one of {', '.join(allowed)}")
    elif not allowed and not _NAME.match(value):
        raise SpecError(spec, "option", f"@{key}={value}: not a dataset name")
    else:
        fields[field] = value


def resolve(
    name_or_spec: str,
    named_variants: dict[str, Variant],
    *,
    adapters: Collection[str] | None = None,
) -> Variant:
    """A named variant (from ``configs/variants.yaml``) or else the variant a spec names.

    With ``adapters`` (the registry's generative adapters) a bare name that is neither a
    named variant nor an adapter is refused here, naming both lists. Raises
    ``VariantError`` (``SpecError`` for a spec that does not parse).
    """
    if name_or_spec in named_variants:
        return named_variants[name_or_spec]
    variant = parse_spec(name_or_spec)
    bare = variant.mode == "zero-shot" and variant.name == (variant.adapter or "base")
    if bare and variant.adapter and adapters is not None and variant.adapter not in adapters:
        raise VariantError(
            f"unknown variant {name_or_spec!r}: not a named variant "
            f"({', '.join(named_variants) or 'none'}) nor an adapter "
            f"({', '.join(sorted(adapters)) or 'none'}); or write a spec: {SPEC_HELP}"
        )
    return variant


def resolve_list(
    text: str, named_variants: dict[str, Variant], *, adapters: Collection[str] | None = None
) -> list[Variant]:
    """The variants of a comma-separated list of names and specs, in order, duplicates refused."""
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise VariantError("no variants given")
    if len(set(names)) < len(names):
        raise VariantError(f"variants listed twice: {', '.join(sorted(names))}")
    return [resolve(n, named_variants, adapters=adapters) for n in names]


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
            "demos": variant.demos,
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
