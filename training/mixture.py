"""Multi-task instruction data: several files mixed by weight, and replay of a general set.

A mixture is a list of tasks ``{"path", "weight", "task"}`` (SFTArgs ``mixture``, CLI
``--mix PATH:WEIGHT:TASK``). Each file is read and validated by the one instruction loader
(``training.data.load_instructions``), shuffled with the run's seed, and the tasks are
interleaved by ``datasets.interleave_datasets`` with the normalised weights as sampling
probabilities, until the first task runs out: no example repeats, and each task's share of
the mixture is its weight (up to sampling noise).

Replay (``replay``, a share in [0, 0.9]) adds examples of the bundled general instruction
set (``GENERAL_INSTRUCTIONS``) to whatever data the run has, so that they make up that share
of the training rows; the set is cycled when the share asks for more rows than it holds.

Every record keeps its task name (column ``task``; the replayed rows are ``replay``), and
``describe`` / the returned record say what was drawn; the manifest stores the record under
``metrics["mixture"]``.
"""

from __future__ import annotations

import math
from collections import Counter
from pathlib import Path
from typing import TYPE_CHECKING, Any

from training.config import ConfigError
from training.data import file_sha256, load_instructions

if TYPE_CHECKING:
    from datasets import Dataset

GENERAL_INSTRUCTIONS = Path(__file__).parent / "datasets" / "general_instructions.jsonl"
REPLAY_TASK = "replay"
MIX_KEYS = ("path", "weight", "task")


def parse_mix(spec: str) -> dict[str, Any]:
    """``"PATH:WEIGHT:TASK"`` (CLI ``--mix``) as a mixture entry ``{"path", "weight", "task"}``.

    The path may itself hold colons (the last two fields are split off). The values are
    checked later with the rest of the config (``mixture_problems``). Raises ConfigError when
    the spec has fewer than three fields or the weight is not a number.
    """
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not all(p.strip() for p in parts):
        raise ConfigError(f"--mix expects PATH:WEIGHT:TASK, got {spec!r}")
    path, weight, task = (p.strip() for p in parts)
    try:
        value = float(weight)
    except ValueError:
        raise ConfigError(f"--mix {spec!r}: weight {weight!r} is not a number") from None
    return {"path": path, "weight": value, "task": task}


def mixture_problems(mixture: Any, dataset: str) -> list[str]:
    """What is wrong with a ``mixture`` value (and with ``dataset`` beside it), each problem
    naming its entry as ``mixture[i].key``; an empty list when it is fine (or empty)."""
    if not mixture:
        return []
    if not isinstance(mixture, list):
        return ["mixture must be a list of {path, weight, task}"]
    problems = []
    if dataset:
        problems.append("give either dataset or mixture, not both")
    seen: set[str] = set()
    for i, entry in enumerate(mixture):
        where = f"mixture[{i}]"
        if not isinstance(entry, dict):
            problems.append(f"{where} must be a mapping {{path, weight, task}}")
            continue
        unknown = sorted(set(entry) - set(MIX_KEYS))
        missing = [k for k in MIX_KEYS if k not in entry]
        if unknown:
            problems.append(f"{where} has unknown key(s) {', '.join(unknown)}")
        if missing:
            problems.append(f"{where} lacks {', '.join(missing)}")
        path, weight, task = (entry.get(k) for k in MIX_KEYS)
        if "path" in entry and not Path(str(path)).is_file():
            problems.append(f"{where}.path={path!r}: no such file")
        if "weight" in entry and (
            isinstance(weight, bool)
            or not isinstance(weight, (int, float))
            or not math.isfinite(weight)
            or weight <= 0
        ):
            problems.append(f"{where}.weight={weight!r} must be a number > 0")
        if "task" in entry:
            if not isinstance(task, str) or not task.strip():
                problems.append(f"{where}.task must be a non-empty name")
            elif task == REPLAY_TASK:
                problems.append(f"{where}.task={task!r} is reserved for the replayed rows")
            elif task in seen:
                problems.append(f"{where}.task={task!r} is a duplicate task name")
            else:
                seen.add(task)
    return problems


def _task_rows(path: Path, task: str | None) -> Dataset:
    """One file's conversations as prompt/completion rows, tagged with ``task`` if given."""
    from datasets import Dataset

    tag = {"task": task} if task is not None else {}
    conversations = load_instructions(path)
    return Dataset.from_list(
        [{"prompt": c[:-1], "completion": [c[-1]], **tag} for c in conversations]
    )


def training_rows(
    dataset: str, mixture: list[dict[str, Any]], replay: float, seed: int
) -> tuple[Dataset, dict[str, Any] | None]:
    """The SFT training rows (``prompt``, ``completion``; ``task`` for mixtures and replay)
    and the record of how they were drawn (None for a single dataset without replay).

    A single dataset without replay gives its rows in file order, as it always has. Every
    file is read and validated before any row is drawn. Raises DatasetError naming the file
    and line of a bad example.
    """
    from datasets import concatenate_datasets, interleave_datasets

    if not mixture and not replay:
        return _task_rows(Path(dataset), None), None

    entries = mixture or [{"path": dataset, "weight": 1.0, "task": Path(dataset).stem}]
    parts = [_task_rows(Path(e["path"]), e["task"]) for e in entries]
    general = _task_rows(GENERAL_INSTRUCTIONS, REPLAY_TASK) if replay else None

    parts = [p.shuffle(seed=seed) for p in parts]
    total = sum(float(e["weight"]) for e in entries)
    mixed = interleave_datasets(
        parts,
        probabilities=[float(e["weight"]) / total for e in entries],
        seed=seed,
        stopping_strategy="first_exhausted",
    )
    drawn = Counter(mixed["task"])
    record: dict[str, Any] = {
        "seed": seed,
        "sampling": "interleave_datasets (first_exhausted)",
        "tasks": [
            {
                "task": e["task"],
                "path": str(e["path"]),
                "sha256": file_sha256(Path(e["path"])),
                "weight": float(e["weight"]),
                "rows_available": len(part),
                "rows_drawn": drawn[e["task"]],
            }
            for e, part in zip(entries, parts)
        ],
        "replay": None,
    }
    if general is not None:
        wanted = round(replay * len(mixed) / (1 - replay))
        order = general.shuffle(seed=seed)
        replayed = order.select([i % len(order) for i in range(wanted)])
        mixed = concatenate_datasets([mixed, replayed]).shuffle(seed=seed)
        record["replay"] = {
            "share": replay,
            "path": str(GENERAL_INSTRUCTIONS.relative_to(Path(__file__).parents[1])),
            "sha256": file_sha256(GENERAL_INSTRUCTIONS),
            "rows_available": len(general),
            "rows_drawn": wanted,
        }
    record["rows"] = len(mixed)
    return mixed, record


def describe(record: dict[str, Any]) -> list[str]:
    """A mixture record (``training_rows``) as table lines for the CLI."""
    lines = [f"{'task':<20} {'weight':>7} {'available':>10} {'drawn':>7}  sha256        path"]
    for t in record["tasks"]:
        lines.append(
            f"{t['task']:<20} {t['weight']:>7.3g} {t['rows_available']:>10} "
            f"{t['rows_drawn']:>7}  {t['sha256'][:12]}  {t['path']}"
        )
    replay = record.get("replay")
    if replay:
        lines.append(
            f"{REPLAY_TASK:<20} {replay['share']:>7.3g} {replay['rows_available']:>10} "
            f"{replay['rows_drawn']:>7}  {replay['sha256'][:12]}  {replay['path']} "
            "(weight: the replay share of all rows)"
        )
    lines.append(f"{record['rows']} training rows, drawn with seed {record['seed']}")
    return lines
