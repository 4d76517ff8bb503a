"""A study's data: the train/dev/test pairs, the leakage check of a user's test file, and
the files later stages read (SFT conversations, few-shot demonstrations).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from evals.suites import Item, Suite
from indexing.errors import RagtuneError
from training.qa_dataset import SPLITS, QAPair


class LeakageError(RagtuneError, ValueError):
    """The test file shares questions with the training data; the message names them."""


@dataclass
class StudyData:
    """The pairs a study uses, by split, and where they came from.

    ``test_source``: ``split`` (the dataset's test split) or the ``--test`` file's path;
    ``leakage``: test questions that had a near-duplicate in train/dev (what was done).
    """

    dataset: str
    splits: dict[str, list[QAPair]]
    test_source: str = "split"
    counts: dict[str, Any] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    leakage: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """The dataset stage's result (the pairs included, so later stages need nothing else)."""
        return {
            "dataset": self.dataset,
            "test_source": self.test_source,
            "counts": self.counts,
            "problems": self.problems,
            "leakage": self.leakage,
            "splits": {k: [p.to_dict() for p in v] for k, v in self.splits.items()},
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StudyData:
        """Parse the dataset stage's result."""
        splits = {k: [QAPair(**p) for p in data["splits"].get(k, [])] for k in SPLITS}
        return cls(
            data["dataset"],
            splits,
            data.get("test_source", "split"),
            data.get("counts", {}),
            data.get("problems", []),
            data.get("leakage", {}),
        )


def find_leakage(
    training: list[QAPair], test: list[QAPair], ratio: float
) -> tuple[list[int], list[int]]:
    """(indices of test pairs, indices of training pairs) that share a near-duplicate group.

    Near-duplicates: rapidfuzz token_sort_ratio >= ``ratio`` (0-100) directly or through a
    chain of such questions, the rule that keeps paraphrases in one split of a dataset.
    """
    from training.qa_filters import near_duplicate_groups

    groups = near_duplicate_groups([p.question for p in training + test], ratio)
    train_groups, test_groups = groups[: len(training)], groups[len(training) :]
    shared = set(train_groups) & set(test_groups)
    return (
        [i for i, g in enumerate(test_groups) if g in shared],
        [i for i, g in enumerate(train_groups) if g in shared],
    )


def apply_test_file(
    data: StudyData, test: list[QAPair], path: str, ratio: float, *, drop_overlap: bool
) -> StudyData:
    """``data`` with ``test`` (the user's fixed test set, from ``path``) as its test split.

    A test question with a near-duplicate in the train or dev split is leakage: refused
    with ``LeakageError`` (naming up to five) unless ``drop_overlap``, which removes the
    overlapping pairs from train and dev instead (the test set is never trained on) and
    records what it removed in ``data.leakage``. The dataset's own test split is not
    needed for testing then, so it joins the training pairs (checked for leakage like
    them). ``data.counts`` gets the split sizes actually used.
    """
    moved = len(data.splits["test"])
    train = data.splits["train"] + data.splits["test"]
    dev = data.splits["dev"]
    leaked, overlapping = find_leakage(train + dev, test, ratio)
    if leaked and not drop_overlap:
        shown = "; ".join(f"item {i + 1}: {test[i].question!r}" for i in leaked[:5])
        raise LeakageError(
            f"{path}: {len(leaked)} test question(s) have a near-duplicate in the training "
            f"data (leakage): {shown}. Use another test file, or --drop-overlap to remove "
            "those pairs from the training data"
        )
    removed = set(overlapping)
    data.splits = {
        "train": [p for i, p in enumerate(train) if i not in removed],
        "dev": [p for i, p in enumerate(dev) if i + len(train) not in removed],
        "test": test,
    }
    data.test_source = path
    data.leakage = {
        "test_questions_with_overlap": len(leaked),
        "training_pairs_removed": len(removed),
        "examples": [test[i].question for i in leaked[:5]],
    }
    data.counts = {
        **data.counts,
        **{split: len(pairs) for split, pairs in data.splits.items()},
        "dataset_test_pairs_trained_on": moved,
    }
    return data


def suite_of(name: str, pairs: list[QAPair]) -> Suite:
    """A QA suite of ``pairs`` (reference: the answer; relevant: the source, when known)."""
    return Suite(name=name, kind="qa", items=[Item(**p.as_suite_item()) for p in pairs])


def write_jsonl(path: Path, records: list[dict[str, Any]]) -> Path:
    """Write one JSON object per line (whole file, for a stage's own work folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records)
    path.write_text(text, encoding="utf-8")
    return path


def sft_records(pairs: list[QAPair], system_prompt: str) -> list[dict[str, Any]]:
    """Chat SFT records in the zero-shot prompt the LoRA arms are served with."""
    return [
        {
            "messages": [
                {"role": "system", "content": system_prompt},
                {"role": "user", "content": p.question},
                {"role": "assistant", "content": p.answer},
            ]
        }
        for p in pairs
    ]


def demonstration_records(pairs: list[QAPair], count: int) -> list[dict[str, str]]:
    """The few-shot arm's demonstrations: the first ``count`` train pairs."""
    return [{"question": p.question, "answer": p.answer} for p in pairs[:count]]
