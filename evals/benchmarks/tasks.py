"""Benchmark task families as data: one YAML per family in ``evals/benchmarks/tasks/``.

A family names its data files (relative to the benchmarks data folder, which is read in
place and never copied), the prompt template (Jinja, rendered the way
lm-evaluation-harness renders ``description`` / ``doc_to_text``), the answer choices,
where few-shot examples come from and which metrics it reports. ``requests`` turns one
item into the (context, continuation) pairs that ``scoring.loglikelihoods`` scores,
exactly as lm-eval 0.4.13 builds them for ``output_type: multiple_choice``.
"""

from __future__ import annotations

import functools
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jinja2
import yaml

from indexing.errors import RagtuneError

TASKS_DIR = Path(__file__).parent / "tasks"
METRICS = ("acc", "acc_norm")

# lm-eval's own Jinja environment (lm_eval/utils.py): strict, keeps trailing newlines.
_JINJA = jinja2.Environment(
    loader=jinja2.BaseLoader(), undefined=jinja2.StrictUndefined, keep_trailing_newline=True
)


@functools.lru_cache(maxsize=64)
def _template(source: str) -> jinja2.Template:
    return _JINJA.from_string(source)


class BenchmarkError(RagtuneError, ValueError):
    """A benchmark task, data file or option is wrong; the message names it."""


@dataclass
class Item:
    """One multiple-choice question: ``answer`` indexes ``choices``; ``where`` is file:line."""

    question: str
    choices: list[str]
    answer: int
    subject: str = ""
    where: str = ""

    def doc(self) -> dict[str, Any]:
        """The fields a template sees."""
        return {
            "question": self.question,
            "choices": self.choices,
            "answer": self.answer,
            "subject": self.subject,
        }


def _hellaswag(item: Item) -> Item:
    """lm-eval's hellaswag ``preprocess`` on "<activity label>: <context>" and each ending."""

    def clean(text: str) -> str:
        text = text.strip().replace(" [title]", ". ")
        return re.sub(r"\[.*?\]", "", text).replace("  ", " ")

    return Item(
        clean(f"{item.subject}: {item.question}"),
        [clean(c) for c in item.choices],
        item.answer,
        item.subject,
        item.where,
    )


NORMALISERS = {"hellaswag": _hellaswag}


@dataclass
class TaskSpec:
    """One task family as its YAML describes it."""

    name: str
    test: list[str]
    doc_to_text: str
    doc_to_choice: str | list[str]
    description_text: str = ""
    fewshot: str | None = None
    group_by: str | None = None
    num_fewshot: int = 0
    fixed_shots: bool = False
    description: str = ""
    normalise: str | None = None
    target_delimiter: str = " "
    fewshot_delimiter: str = "\n\n"
    metrics: list[str] = field(default_factory=lambda: ["acc"])
    source: str = ""

    def choices(self, item: Item) -> list[str]:
        """The choice texts scored for ``item`` (without the target delimiter)."""
        if isinstance(self.doc_to_choice, list):
            return list(self.doc_to_choice)
        return list(getattr(item, self.doc_to_choice))

    def render(self, template: str, item: Item) -> str:
        """``template`` rendered against ``item``'s fields."""
        return _template(template).render(**item.doc())

    def context(self, item: Item, shots: list[Item]) -> str:
        """description + each shot with its answer + the question (lm-eval's plain-text path)."""
        parts = [self.render(self.description, item)] if self.description else []
        for shot in shots:
            answer = self.choices(shot)[shot.answer]
            parts.append(
                self.render(self.doc_to_text, shot)
                + self.target_delimiter
                + answer
                + self.fewshot_delimiter
            )
        parts.append(self.render(self.doc_to_text, item))
        return "".join(parts)

    def requests(self, item: Item, shots: list[Item]) -> list[tuple[str, str]]:
        """(context, continuation) for each choice of ``item``."""
        context = self.context(item, shots)
        return [(context, self.target_delimiter + c) for c in self.choices(item)]


def known_tasks() -> list[str]:
    """Names of the bundled task families."""
    return sorted(p.stem for p in TASKS_DIR.glob("*.yaml"))


def load_task(name: str) -> TaskSpec:
    """The bundled family ``name``; ``BenchmarkError`` listing the known ones otherwise."""
    path = TASKS_DIR / f"{name}.yaml"
    if not path.is_file():
        raise BenchmarkError(f"unknown benchmark task {name!r}; known: {', '.join(known_tasks())}")
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    try:
        spec = TaskSpec(**raw, source=path.read_text(encoding="utf-8"))
    except TypeError as exc:
        raise BenchmarkError(f"{path}: {exc}") from None
    if spec.normalise and spec.normalise not in NORMALISERS:
        raise BenchmarkError(f"{path}: unknown normalise {spec.normalise!r}")
    unknown = set(spec.metrics) - set(METRICS)
    if unknown:
        raise BenchmarkError(f"{path}: unknown metrics {sorted(unknown)}; known: {METRICS}")
    return spec


def parse_tasks(names: str) -> list[TaskSpec]:
    """Comma-separated family names to specs, in the order given, duplicates dropped."""
    chosen = list(dict.fromkeys(n.strip() for n in names.split(",") if n.strip()))
    if not chosen:
        raise BenchmarkError(f"no benchmark task given; known: {', '.join(known_tasks())}")
    return [load_task(name) for name in chosen]


def read_items(path: Path, spec: TaskSpec) -> tuple[list[Item], list[str]]:
    """Items of one data file and a problem line for each malformed line (which is skipped).

    Lines are checked one by one (not with ``training.data.read_jsonl``, which stops at the
    first bad line) so that one bad line costs that item only.
    """
    if not path.is_file():
        raise BenchmarkError(
            f"{path}: benchmark data file not found (set benchmarks_dir or "
            "RAGTUNE_BENCHMARKS_DIR to the folder of the data README)"
        )
    items, problems = [], []
    fixed = spec.doc_to_choice if isinstance(spec.doc_to_choice, list) else None
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        if not line.strip():
            continue
        where = f"{path}, line {number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            problems.append(f"{where}: not valid JSON ({exc.msg})")
            continue
        problem = _check(record, fixed)
        if problem:
            problems.append(f"{where}: {problem}")
            continue
        item = Item(
            record["question"],
            list(record["choices"]),
            record["answer"],
            str(record.get("subject") or ""),
            f"{path.parent.name}/{path.name}:{number}",
        )
        items.append(NORMALISERS[spec.normalise](item) if spec.normalise else item)
    return items, problems


def _check(record: Any, fixed: list[str] | None) -> str | None:
    if not isinstance(record, dict):
        return "expected a JSON object"
    if not isinstance(record.get("question"), str) or not record["question"].strip():
        return "'question' must be a non-empty string"
    choices = record.get("choices")
    if not isinstance(choices, list) or len(choices) < 2:
        return "'choices' must be a list of at least 2 strings"
    if not all(isinstance(c, str) and c.strip() for c in choices):
        return "every choice must be a non-empty string"
    if fixed is not None and len(choices) != len(fixed):
        return f"the template scores {len(fixed)} choices, the line has {len(choices)}"
    answer = record.get("answer")
    if isinstance(answer, bool) or not isinstance(answer, int) or not 0 <= answer < len(choices):
        return f"'answer' must be an index into 'choices' (0..{len(choices) - 1})"
    return None


def sha256(path: Path) -> str:
    """Hex SHA-256 of a data file, recorded with every result."""
    return hashlib.sha256(path.read_bytes()).hexdigest()
