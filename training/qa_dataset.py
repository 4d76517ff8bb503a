"""Question/answer datasets built from a user's documents: one folder per dataset.

A dataset folder (``<datasets_dir>/<name>/``) holds ``manifest.json`` (what it was made
from and how: collection, origin, seed, generator, filters, counts) and one JSONL file per
split, ``train.jsonl``, ``dev.jsonl`` and ``test.jsonl``, one ``QAPair`` per line. Splits
are made with a seed, and near-duplicate questions always land in the same split, so
that a test question never has a paraphrase in the training data.

Used by ``ragtune data`` (synth, import, list, show, delete), by ``eval run`` (a dataset
where a suite is expected), by RAFT training and by ``ragtune compare``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from indexing.errors import NotFound

SPLITS = ("train", "dev", "test")
MANIFEST = "manifest.json"


class DatasetNotFound(NotFound):
    """No dataset of that name; the message lists the ones there are."""


@dataclass
class QAPair:
    """One question with its reference answer and where the answer comes from.

    ``source`` is the file (as stored in the collection's ``source`` metadata) that
    answers it; ``chunk_id`` and ``chunk`` the chunk a synthesised pair was written from
    (the RAFT oracle); both are empty for imported pairs without a source.
    """

    question: str
    answer: str
    source: str = ""
    chunk_id: str = ""
    chunk: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, empty fields left out."""
        return {k: v for k, v in asdict(self).items() if v != ""}

    def as_suite_item(self) -> dict[str, Any]:
        """The QA suite line of this pair: ``{question, reference, relevant}``."""
        return {
            "question": self.question,
            "reference": self.answer,
            "relevant": [self.source] if self.source else [],
        }


@dataclass
class DatasetManifest:
    """What a dataset is and how it was made; written as ``manifest.json``.

    ``origin`` is ``synth`` or ``import``; ``generator`` names the model and endpoint
    that wrote synthesised pairs; ``filters`` the thresholds in force; ``counts`` holds
    ``generated``, ``kept``, ``dropped`` (by reason) and one entry per split.
    """

    name: str
    collection: str = ""
    origin: str = "synth"
    seed: int = 0
    created: str = ""
    generator: dict[str, Any] = field(default_factory=dict)
    filters: dict[str, Any] = field(default_factory=dict)
    counts: dict[str, Any] = field(default_factory=dict)
    source_file: str = ""

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> DatasetManifest:
        """Parse a manifest, ignoring unknown keys from newer versions."""
        return cls(**{k: v for k, v in data.items() if k in cls.__dataclass_fields__})
