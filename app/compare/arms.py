"""The arms of a study: each a way of answering, written as a variant spec.

The six standard arms are zero-shot, few-shot (demonstrations from the train split),
RAG, LoRA (the plain SFT adapter, zero-shot prompt), RAG + LoRA and RAG + RAFT-LoRA;
every extra ``--methods`` entry adds one arm answering zero-shot with an adapter
trained like the LoRA arm. Adapters are named ``<study>-<trained arm>`` in the registry.
"""

from __future__ import annotations

from dataclasses import dataclass

from app.compare.study import StudyError
from training.methods import SFT_METHODS


@dataclass(frozen=True)
class Trained:
    """One adapter a study trains: its stage, registry name, method and data kind."""

    key: str  # lora, raft, or an extra method's name
    adapter: str
    method: str
    raft: bool = False

    @property
    def stage(self) -> str:
        """The name of the stage that trains it."""
        return f"train-{self.key}"


@dataclass(frozen=True)
class Arm:
    """One way of answering the test questions.

    ``spec``: the variant spec (``app.variants.parse_spec`` grammar) without the tuned
    retrieval settings, which the answer stage adds; ``trained``: the adapter it needs.
    """

    name: str
    description: str
    mode: str
    trained: Trained | None = None

    @property
    def stage(self) -> str:
        """The name of the stage where it answers the test split."""
        return f"answer-{self.name}"

    @property
    def rag(self) -> bool:
        """True when it answers from retrieved sources."""
        return self.mode == "rag"

    def spec(self, collection: str) -> str:
        """Its variant spec, e.g. ``rag:docs+docs-quick-raft`` or ``few-shot``."""
        base = f"rag:{collection}" if self.rag else self.mode
        return f"{base}+{self.trained.adapter}" if self.trained else base


def trained_adapters(study: str, methods: tuple[str, ...]) -> list[Trained]:
    """The adapters a study trains: the plain LoRA, the RAFT LoRA and one per extra method.

    Raises ``StudyError`` for a method that ``training.methods`` does not know.
    """
    unknown = [m for m in methods if m not in SFT_METHODS]
    if unknown:
        raise StudyError(
            f"unknown method(s) {', '.join(unknown)}; SFT methods: {', '.join(SFT_METHODS)}"
        )
    out = [Trained("lora", f"{study}-lora", "lora"), Trained("raft", f"{study}-raft", "lora", True)]
    out += [Trained(m, f"{study}-{m}", m) for m in dict.fromkeys(methods) if m != "lora"]
    return out


def study_arms(study: str, methods: tuple[str, ...]) -> list[Arm]:
    """Every arm of a study, in report order."""
    by_key = {t.key: t for t in trained_adapters(study, methods)}
    arms = [
        Arm("zero-shot", "the base model, the question only", "zero-shot"),
        Arm("few-shot", "the base model with demonstrations from the train split", "few-shot"),
        Arm("rag", "the base model with retrieved sources", "rag"),
        Arm("lora", "a LoRA adapter tuned on the train split", "zero-shot", by_key["lora"]),
        Arm("rag+lora", "the LoRA adapter with retrieved sources", "rag", by_key["lora"]),
        Arm(
            "rag+raft",
            "a LoRA adapter tuned RAFT-style (oracle + distractor sources)",
            "rag",
            by_key["raft"],
        ),
    ]
    arms += [
        Arm(t.key, f"a {t.method} adapter tuned on the train split", "zero-shot", t)
        for t in by_key.values()
        if t.key not in ("lora", "raft")
    ]
    return arms
