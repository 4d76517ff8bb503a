"""Evaluation suites: what to ask and how to score it, in YAML.

``kind: qa`` items are ``{"question", "reference", "relevant"?}`` lines scored with ROUGE,
BLEU, exact match, token F1, embedding similarity and (when sources are labeled)
retrieval hit@k / MRR. ``kind: classification`` reads a labeled text file; chat variants
answer a prompt and the label is read from the answer, classifier variants predict it.

Where a suite is expected, ``load_suite_or_data`` also takes a QA dataset's name (one of
its splits, ``suite_from_dataset``) or a plain QA file (JSONL or CSV lines with
``question`` and ``answer`` or ``reference``, optional ``source``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from indexing.errors import RagtuneError
from training.data import DatasetError, load_labeled, read_jsonl
from training.qa_dataset import SPLITS, Dataset, DatasetNotFound, DatasetStore, QAPair, read_pairs

SUITE_SUFFIXES = (".yaml", ".yml")


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
    """A named list of items plus how to treat them.

    ``problems``: one message per line of a plain QA file that was skipped (file, line, why).
    """

    name: str
    kind: str
    items: list[Item]
    prompt: str = "{text}"
    labels: dict[str, str] = field(default_factory=dict)
    description: str = ""
    problems: list[str] = field(default_factory=list)


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


def _pair_item(pair: QAPair) -> Item:
    return Item(pair.question, pair.answer, [pair.source] if pair.source else [])


def suite_from_dataset(dataset: Dataset, split: str = "test") -> Suite:
    """A QA suite of one split of a dataset, named ``<dataset>-<split>``.

    Each pair's ``source`` labels the document that answers it (retrieval hit@k, MRR).
    Raises ``SuiteError`` when the split is empty, ``DatasetError`` for an unknown split.
    """
    pairs = dataset.split(split)
    if not pairs:
        raise SuiteError(f"dataset {dataset.name!r}: the {split} split is empty")
    return Suite(
        name=f"{dataset.name}-{split}",
        kind="qa",
        items=[_pair_item(p) for p in pairs],
        description=f"the {split} split of dataset {dataset.name} ({len(pairs)} questions)",
    )


def load_suite_or_data(
    ref: str | Path, *, datasets: DatasetStore | None = None, split: str = "test"
) -> Suite:
    """The suite ``ref`` names: a suite YAML, a plain QA file, or a dataset's ``split``.

    A path ending in .yaml/.yml is a suite (``load_suite``); any other existing file is a
    QA file read with ``training.qa_dataset.read_pairs``, whose bad lines are skipped and
    listed in ``Suite.problems``; otherwise ``ref`` is a dataset name in ``datasets``.
    Raises ``SuiteError`` when it is none of these or a QA file has no good line,
    ``DatasetNotFound`` for an unknown dataset name.
    """
    if split not in SPLITS:
        raise SuiteError(f"unknown split {split!r}; choose one of {', '.join(SPLITS)}")
    path = Path(ref)
    if path.suffix.lower() in SUITE_SUFFIXES:
        return load_suite(path)
    if path.is_file():
        try:
            pairs, problems = read_pairs(path)
        except DatasetError as exc:
            raise SuiteError(str(exc)) from None
        if not pairs:
            first = f": {problems[0]}" if problems else ""
            raise SuiteError(f"{path}: no question/answer line to evaluate{first}")
        return Suite(
            name=path.stem,
            kind="qa",
            items=[_pair_item(p) for p in pairs],
            description=f"QA file {path}",
            problems=problems,
        )
    looks_like_a_file = "/" in str(ref) or path.suffix.lower() in (".jsonl", ".json", ".csv")
    if datasets is None or looks_like_a_file:
        raise SuiteError(f"{ref}: no such suite file or QA file")
    try:
        dataset = datasets.get(str(ref))
    except DatasetNotFound as exc:
        raise SuiteError(f"{ref}: no such suite file, QA file or dataset; {exc}") from None
    return suite_from_dataset(dataset, split)


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
