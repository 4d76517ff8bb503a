"""How much work a study does: every knob of `ragtune compare --budget` in one place.

``quick`` is sized to finish in 30 minutes and ``standard`` in 90 on two CPU cores with
SmolLM2-135M and the shipped docs corpus with ``--synth 200`` (docs/compare.md records
the stage times); ``tiny`` is a smoke test (a handful of items and steps) for the test
suite and for trying the command out. A budget never changes what is compared, only
how many items are answered and how long adapters train.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from indexing.errors import RagtuneError


class BudgetError(RagtuneError, ValueError):
    """An unknown budget name; the message lists the known ones."""


def knob(default: Any, help: str) -> Any:
    """A budget field with its help text (shown by `ragtune compare --help`)."""
    return field(default=default, metadata={"help": help})


@dataclass(frozen=True)
class Budget:
    """The size of one study."""

    name: str = knob("quick", "The budget's name.")
    test_items: int = knob(
        40, "Test questions every arm answers (the first N of the test split or --test file)."
    )
    split: tuple[float, float, float] = knob(
        (0.6, 0.15, 0.25),
        "Train/dev/test shares of a synthesised or imported dataset (the test share is larger "
        "than usual so that intervals are informative on a few hundred pairs).",
    )
    retrieval_grid: str = knob(
        "quick", "Grid of evals.retrieval_tuning ('quick' or 'standard'); '' skips tuning."
    )
    sft_max_steps: int = knob(30, "Optimizer steps of every trained adapter (LoRA, RAFT, extra).")
    sft_max_epochs: float = knob(
        3.0,
        "Passes over the train split at most: fewer steps than sft_max_steps when the split "
        "is small (a few dozen pairs would otherwise be seen ten times and memorised).",
    )
    sft_batch_size: int = knob(
        8, "Examples per step (plain SFT: one short question and answer each)."
    )
    raft_batch_size: int = knob(
        4, "Examples per step of the RAFT adapter (each holds k sources: about 1,500 tokens)."
    )
    sft_learning_rate: float = knob(3e-4, "Peak learning rate (linear decay).")
    sft_max_length: int = knob(
        768, "Tokens per training example (RAFT raises it to its longest example)."
    )
    lora_r: int = knob(8, "LoRA rank of the LoRA and RAFT adapters.")
    raft_oracle_share: float = knob(0.8, "Share of RAFT examples that contain the oracle chunk.")
    perplexity_check: bool = knob(
        False,
        "Also run training/forgetting.py after training (perplexity on general prose and "
        "prompted SST-2, base vs tuned, in the adapter's manifest); about a minute per adapter.",
    )
    forgetting_items: int = knob(
        20, "Questions of the general suite (evals/suites/forgetting.yaml) per adapter and base."
    )
    fewshot_count: int = knob(3, "Demonstrations (from the train split) in few-shot prompts.")
    concurrency: int = knob(8, "Answers in flight at once (the engine batches them).")

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (stored in the study's state)."""
        return dataclasses.asdict(self)


BUDGETS: dict[str, Budget] = {
    "tiny": Budget(
        name="tiny",
        test_items=6,
        split=(0.5, 0.2, 0.3),
        retrieval_grid="",
        sft_max_steps=2,
        sft_batch_size=2,
        raft_batch_size=2,
        sft_max_length=512,
        forgetting_items=3,
        concurrency=4,
    ),
    "quick": Budget(),
    "standard": Budget(
        name="standard",
        test_items=120,
        retrieval_grid="standard",
        sft_max_steps=120,
        perplexity_check=True,
        forgetting_items=40,
    ),
}


def get_budget(name: str) -> Budget:
    """The budget called ``name``; ``BudgetError`` naming the known ones otherwise."""
    if name not in BUDGETS:
        raise BudgetError(f"unknown budget {name!r}; choose one of {', '.join(BUDGETS)}")
    return BUDGETS[name]


def budget_help() -> str:
    """Every knob with its value per budget, for `--help`."""
    lines = []
    for f in dataclasses.fields(Budget):
        if f.name == "name":
            continue
        values = ", ".join(f"{b}={getattr(BUDGETS[b], f.name)!r}" for b in BUDGETS)
        lines.append(f"{f.name} ({values}): {f.metadata['help']}")
    return "\n\n".join(lines)
