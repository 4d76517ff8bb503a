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

import csv
import json
import os
import random
import re
import shutil
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from indexing.errors import Conflict, NotFound
from training.data import DatasetError
from training.qa_filters import near_duplicate_groups

SPLITS = ("train", "dev", "test")
MANIFEST = "manifest.json"
DROPPED = "dropped.jsonl"  # synthesised pairs the filters dropped, each with its reason
FRACTIONS = (0.8, 0.1, 0.1)
_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,62}")
_ALIASES = {"reference": "answer"}  # a QA suite line's field names work too


class DatasetNotFound(NotFound):
    """No dataset of that name; the message lists the ones there are."""


class DatasetExists(Conflict):
    """A dataset of that name exists already (delete it, or save with overwrite)."""


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


def validate_dataset_name(name: str) -> str:
    """``name`` if it is a valid dataset folder name; raises ``DatasetError`` otherwise."""
    if not _NAME.fullmatch(name or ""):
        raise DatasetError(
            f"invalid dataset name {name!r}: use 1-63 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    return name


class Dataset:
    """One saved dataset: its manifest and its split files in ``folder``."""

    def __init__(self, folder: Path, manifest: DatasetManifest) -> None:
        self.folder = folder
        self.manifest = manifest

    @property
    def name(self) -> str:
        """The dataset's name (its folder's)."""
        return self.manifest.name

    def split(self, name: str) -> list[QAPair]:
        """The pairs of split ``name`` (one of ``SPLITS``), in file order.

        Raises ``DatasetError`` for an unknown split or a damaged split file.
        """
        if name not in SPLITS:
            raise DatasetError(f"unknown split {name!r}; choose one of {', '.join(SPLITS)}")
        path = self.folder / f"{name}.jsonl"
        pairs, problems = read_pairs(path)
        if problems:
            raise DatasetError(f"dataset {self.name!r} is damaged: {problems[0]}")
        return pairs

    def pairs(self) -> dict[str, list[QAPair]]:
        """Every split's pairs, by split name."""
        return {name: self.split(name) for name in SPLITS}


class DatasetStore:
    """The datasets folder (``Settings.datasets_dir``): one folder per dataset.

    ``near_duplicate_ratio`` (rapidfuzz token_sort_ratio, 0-100) decides which questions
    ``save`` keeps in one split.
    """

    def __init__(self, root: Path, near_duplicate_ratio: float = 90) -> None:
        self.root = root
        self.near_duplicate_ratio = near_duplicate_ratio

    def exists(self, name: str) -> bool:
        """True when a dataset ``name`` is saved."""
        return (self.root / validate_dataset_name(name) / MANIFEST).is_file()

    def get(self, name: str) -> Dataset:
        """The dataset ``name``; raises ``DatasetNotFound`` listing the saved ones."""
        if not self.exists(name):
            known = ", ".join(m.name for m in self.list()) or "none yet"
            raise DatasetNotFound(f"unknown dataset {name!r} (datasets: {known})")
        folder = self.root / name
        data = json.loads((folder / MANIFEST).read_text(encoding="utf-8"))
        return Dataset(folder, DatasetManifest.from_dict(data))

    def list(self) -> list[DatasetManifest]:
        """Manifests of every saved dataset, sorted by name."""
        if not self.root.is_dir():
            return []
        found = []
        for folder in sorted(self.root.iterdir()):
            manifest = folder / MANIFEST
            if not folder.name.startswith(".") and manifest.is_file():
                found.append(DatasetManifest.from_dict(json.loads(manifest.read_text("utf-8"))))
        return found

    def delete(self, name: str) -> None:
        """Remove dataset ``name``; raises ``DatasetNotFound`` when there is none."""
        self.get(name)
        shutil.rmtree(self.root / name)

    def check_free(self, name: str, overwrite: bool = False) -> None:
        """``DatasetExists`` (saying how to go on) when ``name`` is taken and not ``overwrite``."""
        if self.exists(name) and not overwrite:
            raise DatasetExists(
                f"dataset {name!r} exists; give another --name, replace it with --overwrite, "
                "or delete it first (`ragtune data delete`)"
            )

    def save(
        self,
        manifest: DatasetManifest,
        pairs: list[QAPair],
        *,
        fractions: tuple[float, float, float] = FRACTIONS,
        overwrite: bool = False,
        dropped: list[dict[str, Any]] | None = None,
    ) -> Dataset:
        """Split ``pairs`` with ``manifest.seed`` and write the dataset folder atomically.

        ``fractions`` are the train/dev/test shares; ``dropped`` (records with a
        ``reason``) is written as ``dropped.jsonl`` for inspection. Adds the split sizes to
        ``manifest.counts`` and the split settings to ``manifest.filters``. Raises
        ``DatasetExists`` when the name is taken (unless ``overwrite``) and ``DatasetError``
        for an invalid name, no pairs or bad fractions.
        """
        validate_dataset_name(manifest.name)
        if not pairs:
            raise DatasetError(f"dataset {manifest.name!r}: no pairs to save")
        self.check_free(manifest.name, overwrite)
        splits = split_pairs(pairs, manifest.seed, fractions, self.near_duplicate_ratio)
        manifest.counts = {**manifest.counts, **{k: len(v) for k, v in splits.items()}}
        manifest.filters = {
            **manifest.filters,
            "split": {
                "fractions": list(fractions),
                "near_duplicate_ratio": self.near_duplicate_ratio,
            },
        }
        manifest.created = manifest.created or time.strftime("%Y-%m-%dT%H:%M:%S%z")
        self.root.mkdir(parents=True, exist_ok=True)
        staging = self.root / f".staging-{manifest.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir()
        try:
            for split, members in splits.items():
                lines = [json.dumps(p.to_dict(), ensure_ascii=False) + "\n" for p in members]
                (staging / f"{split}.jsonl").write_text("".join(lines), encoding="utf-8")
            if dropped:
                lines = [json.dumps(d, ensure_ascii=False) + "\n" for d in dropped]
                (staging / DROPPED).write_text("".join(lines), encoding="utf-8")
            text = json.dumps(manifest.to_dict(), indent=2, ensure_ascii=False)
            (staging / MANIFEST).write_text(text, encoding="utf-8")
            target = self.root / manifest.name
            if target.exists():
                old = self.root / f".old-{manifest.name}-{uuid.uuid4().hex[:8]}"
                os.replace(target, old)
                shutil.rmtree(old)
            os.replace(staging, target)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return Dataset(target, manifest)


def split_pairs(
    pairs: list[QAPair], seed: int, fractions: tuple[float, float, float], ratio: float
) -> dict[str, list[QAPair]]:
    """Train/dev/test splits of ``pairs``, reproducible from ``seed``.

    Near-duplicate questions (token_sort_ratio >= ``ratio``) form a group that goes to one
    split whole. Groups are shuffled with the seed, the largest placed first, each into
    the split furthest below its target size; dev and test get at least one pair each
    when there are three or more pairs and their fraction is above 0.
    """
    if len(fractions) != 3 or min(fractions) < 0 or sum(fractions) <= 0:
        raise DatasetError(f"split fractions {fractions}: need three shares >= 0, not all 0")
    total = sum(fractions)
    targets = [round(len(pairs) * f / total) for f in fractions]
    for i in (1, 2):
        if len(pairs) >= 3 and fractions[i] > 0:
            targets[i] = max(targets[i], 1)
    targets[0] = len(pairs) - targets[1] - targets[2]
    groups: dict[int, list[QAPair]] = {}
    for label, pair in zip(near_duplicate_groups([p.question for p in pairs], ratio), pairs):
        groups.setdefault(label, []).append(pair)
    ordered = list(groups.values())
    random.Random(seed).shuffle(ordered)
    ordered.sort(key=len, reverse=True)  # stable: equal sizes stay in shuffled order
    splits: dict[str, list[QAPair]] = {name: [] for name in SPLITS}
    for group in ordered:
        gaps = [targets[i] - len(splits[name]) for i, name in enumerate(SPLITS)]
        splits[SPLITS[gaps.index(max(gaps))]].extend(group)
    return splits


def read_pairs(path: Path) -> tuple[list[QAPair], list[str]]:
    """Pairs from a JSONL or CSV file (``question``, ``answer``, optional ``source``).

    ``reference`` is accepted for ``answer`` and a QA suite line's ``relevant`` files
    (the first) for ``source``; ``chunk_id`` and ``chunk`` are read when present. Each bad line is
    skipped with one problem message naming the file and line; raises ``DatasetError`` when the file
    is missing, of another type, or a CSV without a ``question`` and ``answer`` header.
    """
    if not path.is_file():
        raise DatasetError(f"{path}: no such file")
    suffix = path.suffix.lower()
    if suffix in (".jsonl", ".json"):
        rows = _jsonl_rows(path)
    elif suffix == ".csv":
        rows = _csv_rows(path)
    else:
        raise DatasetError(f"{path}: expected a .jsonl or .csv file of question/answer pairs")
    pairs, problems = [], []
    for number, row in rows:
        if isinstance(row, str):
            problems.append(f"{path}, line {number}: {row}")
            continue
        pair = _pair(row)
        if isinstance(pair, str):
            problems.append(f"{path}, line {number}: {pair}")
        else:
            pairs.append(pair)
    return pairs, problems


def _jsonl_rows(path: Path):
    """(line number, dict or problem text) for each non-blank line."""
    for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            yield number, f"not valid JSON ({exc.msg})"
            continue
        yield number, record if isinstance(record, dict) else "expected a JSON object"


def _csv_rows(path: Path):
    """(line number, dict or problem text) for each CSV record after the header."""
    with path.open(encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        header = [(name or "").strip().lower() for name in reader.fieldnames or []]
        names = {_ALIASES.get(name, name) for name in header}
        if not {"question", "answer"} <= names:
            raise DatasetError(
                f"{path}, line 1: the header needs the columns question and answer "
                f"(found: {', '.join(header) or 'nothing'})"
            )
        reader.fieldnames = header
        for row in reader:
            if None in row:
                yield reader.line_num, "more fields than the header has columns"
            else:
                yield reader.line_num, row


def _pair(row: dict[str, Any]) -> QAPair | str:
    """The pair in one row, or the problem with it naming the field at fault."""
    row = {_ALIASES.get(key, key): ("" if value is None else value) for key, value in row.items()}
    relevant = row.pop("relevant", "")
    if isinstance(relevant, list) and relevant and not row.get("source"):
        row["source"] = relevant[0]
    fields = ("question", "answer", "source", "chunk_id", "chunk")
    for name in fields:
        if not isinstance(row.get(name, ""), str):
            return f"'{name}' must be a string"
    for name in ("question", "answer"):
        if not row.get(name, "").strip():
            return f"'{name}' is missing or empty"
    return QAPair(
        **{
            name: row.get(name, "") if name == "chunk" else row.get(name, "").strip()
            for name in fields
        }
    )
