"""Training datasets: read, validate line by line, and say exactly what is wrong.

Validation runs before any model is loaded, so a bad file costs seconds, not a run, and
the registry is never touched.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from indexing.errors import RagtuneError

Messages = list[dict[str, str]]
ROLES = {"system", "user", "assistant"}


class DatasetError(RagtuneError, ValueError):
    """A dataset file, line or column is wrong; the message names it."""


def file_sha256(path: Path) -> str:
    """Content hash recorded in manifests."""
    return hashlib.sha256(path.read_bytes()).hexdigest()


def read_jsonl(path: Path, error: type[Exception] | None = None) -> Iterator[tuple[int, dict]]:
    """(line number, object) for each non-blank line; a bad line raises ``error`` naming it.

    Shared by every JSONL reader in ragtune (datasets, demonstrations, suites, labels),
    so all of them report problems the same way.
    """
    error = error or DatasetError
    if not path.exists():
        raise error(f"{path}: no such file")
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise error(f"{path}, line {number}: not valid JSON ({exc.msg})") from None
        if not isinstance(record, dict):
            raise error(f"{path}, line {number}: expected a JSON object")
        yield number, record


def load_instructions(path: Path) -> list[Messages]:
    """Chat conversations from ``{"messages": [...]}`` or
    ``{"instruction", "input", "output"}`` lines."""
    conversations = []
    for number, record in read_jsonl(path):
        where = f"{path}, line {number}"
        if "messages" in record:
            messages = record["messages"]
            if not isinstance(messages, list) or not messages:
                raise DatasetError(f"{where}: 'messages' must be a non-empty list")
            for turn in messages:
                if not isinstance(turn, dict) or turn.get("role") not in ROLES:
                    raise DatasetError(f"{where}: each message needs a role of {sorted(ROLES)}")
                if not isinstance(turn.get("content"), str) or not turn["content"].strip():
                    raise DatasetError(f"{where}: a message has empty 'content'")
            if messages[-1]["role"] != "assistant":
                raise DatasetError(f"{where}: the last message must be the assistant's answer")
        elif "instruction" in record and "output" in record:
            instruction, output = record["instruction"], record["output"]
            if not str(instruction).strip() or not str(output).strip():
                raise DatasetError(f"{where}: 'instruction' and 'output' must be non-empty")
            prompt = str(instruction) + (f"\n\n{record['input']}" if record.get("input") else "")
            messages = [
                {"role": "user", "content": prompt},
                {"role": "assistant", "content": str(output)},
            ]
        else:
            raise DatasetError(
                f"{where}: expected 'messages', or 'instruction' and 'output' (found: "
                f"{', '.join(record)})"
            )
        conversations.append(messages)
    if not conversations:
        raise DatasetError(f"{path}: no examples")
    return conversations


@dataclass
class LabeledTexts:
    """Texts with integer labels, and the label names in index order."""

    texts: list[str]
    labels: list[int]
    label_names: list[str]

    def sample(self, n: int | None, seed: int) -> LabeledTexts:
        """A seeded random subset of ``n`` rows (all rows when n is None or larger)."""
        if n is None or n >= len(self.texts):
            return self
        rows = random.Random(seed).sample(range(len(self.texts)), n)
        return LabeledTexts(
            [self.texts[i] for i in rows], [self.labels[i] for i in rows], self.label_names
        )


def load_labeled(
    path: Path, text_column: str | None = None, label_column: str = "label"
) -> LabeledTexts:
    """``text,label`` rows from a TSV/CSV with a header, or JSONL objects.

    The text column defaults to ``text``, or ``sentence`` (GLUE's name) when absent.
    """
    if not path.exists():
        raise DatasetError(f"{path}: no such file")
    if path.suffix == ".jsonl":
        rows = [(n, r) for n, r in read_jsonl(path)]
        columns = set().union(*(r.keys() for _, r in rows)) if rows else set()
    else:
        delimiter = "\t" if path.suffix in {".tsv", ".tab"} else ","
        with path.open(encoding="utf-8", newline="") as handle:
            reader = csv.DictReader(handle, delimiter=delimiter, quoting=csv.QUOTE_NONE)
            columns = set(reader.fieldnames or [])
            rows = [(number, row) for number, row in enumerate(reader, 2)]
    text_column = text_column or ("text" if "text" in columns else "sentence")
    for needed in (text_column, label_column):
        if needed not in columns:
            raise DatasetError(
                f"{path}: no {needed!r} column (columns: {', '.join(sorted(columns)) or 'none'})"
            )
    raw_labels, texts = [], []
    for number, row in rows:
        text, label = row.get(text_column), row.get(label_column)
        if text is None or not str(text).strip() or label is None or str(label).strip() == "":
            raise DatasetError(f"{path}, line {number}: empty {text_column!r} or {label_column!r}")
        texts.append(str(text).strip())
        raw_labels.append(str(label).strip())
    if not texts:
        raise DatasetError(f"{path}: no rows")
    names = sorted(
        set(raw_labels),
        key=lambda v: (not v.lstrip("-").isdigit(), int(v) if v.lstrip("-").isdigit() else 0, v),
    )
    index = {name: i for i, name in enumerate(names)}
    return LabeledTexts(texts, [index[label] for label in raw_labels], names)
