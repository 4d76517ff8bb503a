"""Evaluation suites: what to ask and how to score it, in YAML.

``kind: qa`` items are ``{"question", "reference", "relevant"?}`` lines scored with ROUGE,
BLEU, exact match, token F1, embedding similarity and (when sources are labeled)
retrieval hit@k / MRR. ``kind: classification`` reads a labeled text file; chat variants
answer a prompt and the label is read from the answer, classifier variants predict it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from indexing.errors import RagtuneError
from training.data import DatasetError, load_labeled, read_jsonl


class SuiteError(RagtuneError, ValueError):
    """A suite file or its data is wrong; the message names the file and line."""


@dataclass
class Item:
    """One question (or text to classify) with what a good answer looks like."""

    question: str
    reference: str = ""
    relevant: list[str] = field(default_factory=list)
    label: str | None = None


@dataclass
class Suite:
    """A named list of items plus how to treat them."""

    name: str
    kind: str
    items: list[Item]
    prompt: str = "{text}"
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""


def load_suite(path: Path, base: Path | None = None) -> Suite:
    """Read a suite YAML; data paths are relative to ``base`` (default: the current dir)."""
    if not path.exists():
        raise SuiteError(f"{path}: no such suite file")
    try:
        spec = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as exc:
        raise SuiteError(f"{path}: not valid YAML: {exc}") from None
    base = base or Path.cwd()
    kind = spec.get("kind", "qa")
    data = base / str(spec.get("data", ""))
    if kind == "qa":
        items = _qa_items(data)
    elif kind == "classification":
        items = _classification_items(data, spec)
    else:
        raise SuiteError(f"{path}: kind {kind!r} is not 'qa' or 'classification'")
    limit = spec.get("limit")
    return Suite(
        name=spec.get("name", path.stem),
        kind=kind,
        items=items[:limit] if limit else items,
        prompt=spec.get("prompt", "{text}"),
        labels={str(k): str(v) for k, v in (spec.get("labels") or {}).items()},
        description=spec.get("description", ""),
    )


def _qa_items(path: Path) -> list[Item]:
    if not path.exists():
        raise SuiteError(f"{path}: no such data file")
    items = []
    for number, record in read_jsonl(path, SuiteError):
        if not isinstance(record.get("question"), str):
            raise SuiteError(f"{path}, line {number}: expected {{question, reference}}")
        items.append(
            Item(
                record["question"],
                str(record.get("reference", "")),
                list(record.get("relevant", [])),
            )
        )
    return items


def _classification_items(path: Path, spec: dict) -> list[Item]:
    try:
        data = load_labeled(path).sample(spec.get("limit"), seed=int(spec.get("seed", 0)))
    except DatasetError as exc:
        raise SuiteError(str(exc)) from None
    return [
        Item(text, label=data.label_names[label]) for text, label in zip(data.texts, data.labels)
    ]
