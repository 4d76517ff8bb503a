"""Training arguments as dataclasses, with help text and allowed range on every field.

The CLI, the YAML configs in ``configs/train/`` and (later) the workbench form are all
built from these, so a field documented here is documented everywhere.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml


class ConfigError(ValueError):
    """A config file or value is wrong; the message names the field and allowed range."""


def arg(default: Any, help: str, *, low: float | None = None, high: float | None = None, choices=None):
    """A dataclass field carrying its help text and allowed values."""
    meta = {"help": help, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


@dataclass
class TrainArgs:
    """Arguments every training method shares."""

    name: str = arg("", "Adapter name in the registry (letters, digits, '.', '_', '-').")
    dataset: str = arg("", "Training data file (JSONL for SFT; TSV/CSV/JSONL text,label for classifiers).")
    base_model: str = arg("default", "Base model: 'default' (the generator's model, SmolLM2-135M-Instruct "
                          "unless configured), a folder or a hub id.")
    epochs: float = arg(1.0, "Passes over the training data.", low=0.01, high=100)
    max_steps: int = arg(-1, "Stop after this many optimizer steps (-1: run all epochs).", low=-1, high=1_000_000)
    learning_rate: float = arg(2e-4, "Peak learning rate (linear decay).", low=1e-7, high=1.0)
    batch_size: int = arg(4, "Examples per step on each device.", low=1, high=1024)
    gradient_accumulation: int = arg(1, "Steps accumulated per optimizer update.", low=1, high=1024)
    max_length: int = arg(512, "Tokens per example; longer ones are truncated.", low=16, high=32768)
    seed: int = arg(42, "Random seed for data order, sampling and initialisation.", low=0, high=2**31 - 1)
    logging_steps: int = arg(5, "Log loss every this many steps.", low=1, high=100_000)
    save_steps: int = arg(50, "Checkpoint every this many steps (for --resume).", low=1, high=1_000_000)
    resume: bool = arg(False, "Resume from the last checkpoint of a run with the same name.")
    overwrite: bool = arg(False, "Replace an existing adapter of the same name.")


@dataclass
class SFTArgs(TrainArgs):
    """Instruction tuning (supervised finetuning on chat or instruction data)."""

    method: str = arg("lora", "Adaptation method.", choices=("lora", "ia3", "prefix", "prompt", "full"))
    lora_r: int = arg(8, "LoRA rank (size of the low-rank matrices).", low=1, high=256)
    lora_alpha: int = arg(16, "LoRA scaling numerator (the update is scaled by alpha / r).", low=1, high=1024)
    lora_dropout: float = arg(0.05, "Dropout on the LoRA input.", low=0.0, high=0.9)
    target_modules: list[str] = arg(
        ["q_proj", "k_proj", "v_proj", "o_proj"], "Modules that LoRA adapts (IA3: k_proj, v_proj, down_proj)."
    )
    num_virtual_tokens: int = arg(16, "Learned tokens for prefix and prompt tuning.", low=1, high=512)
    forgetting_check: bool = arg(True, "Score base and tuned model on the general set afterwards.")
    forgetting_task: str = arg(
        "../shared/data/sst2/test.tsv", "Labeled sentiment file for the prompted-accuracy part of the check."
    )
    forgetting_rows: int = arg(64, "Rows of the sentiment file scored.", low=1, high=100_000)


@dataclass
class ClassifyArgs(TrainArgs):
    """Text classification: features + scikit-learn, a new head, LoRA or full finetuning."""

    method: str = arg("features", "Approach.", choices=("features", "head", "lora", "full"))
    text_column: str = arg("", "Text column (default: 'text', else 'sentence').")
    label_column: str = arg("label", "Label column.")
    train_rows: int = arg(2000, "Rows sampled from the training file (0: all).", low=0, high=10_000_000)
    eval_file: str = arg("", "Validation file for model selection (optional).")
    test_file: str = arg("", "Test file the reported accuracy comes from (optional).")
    feature_model: str = arg("embedder", "Features from: 'embedder' (MiniLM) or 'llm' (base model).",
                             choices=("embedder", "llm"))  # fmt: skip
    classifier: str = arg("logistic", "scikit-learn model for features.", choices=("logistic", "forest"))
    lora_r: int = arg(8, "LoRA rank for method 'lora'.", low=1, high=256)
    lora_alpha: int = arg(16, "LoRA alpha for method 'lora'.", low=1, high=1024)


def validate(args: TrainArgs) -> TrainArgs:
    """Check every field's range and choices; raise one error listing all problems."""
    problems = []
    for f in dataclasses.fields(args):
        value, meta = getattr(args, f.name), f.metadata
        if meta.get("choices") and value not in meta["choices"]:
            problems.append(f"{f.name}={value!r} is not one of {', '.join(meta['choices'])}")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            low, high = meta.get("low"), meta.get("high")
            if (low is not None and value < low) or (high is not None and value > high):
                problems.append(f"{f.name}={value} is outside the allowed range {low}..{high}")
    if not args.name:
        problems.append("name is required")
    if not args.dataset:
        problems.append("dataset is required")
    if problems:
        raise ConfigError("; ".join(problems))
    return args


def load_args(cls: type[TrainArgs], config: Path | None, overrides: dict[str, Any]) -> TrainArgs:
    """Build ``cls`` from a YAML file plus overrides (None values are ignored), validated."""
    values: dict[str, Any] = {}
    if config is not None:
        if not config.exists():
            raise ConfigError(f"{config}: no such config file")
        try:
            values = yaml.safe_load(config.read_text()) or {}
        except yaml.YAMLError as exc:
            raise ConfigError(f"{config}: not valid YAML: {exc}") from None
    values.update({k: v for k, v in overrides.items() if v is not None})
    names = {f.name for f in dataclasses.fields(cls)}
    unknown = sorted(set(values) - names)
    if unknown:
        raise ConfigError(f"unknown field(s) {', '.join(unknown)} for {cls.__name__}; known: {', '.join(sorted(names))}")
    try:
        args = cls(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    for f in dataclasses.fields(args):  # YAML gives ints for floats and vice versa
        value = getattr(args, f.name)
        if f.type in ("float", float) and isinstance(value, int) and not isinstance(value, bool):
            setattr(args, f.name, float(value))
    return validate(args)


def help_table(cls: type[TrainArgs]) -> str:
    """Every field with its default, range and help, for --help epilogues and docs."""
    rows = []
    for f in dataclasses.fields(cls):
        meta = f.metadata
        default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
        extra = ""
        if meta.get("choices"):
            extra = f" [{'|'.join(meta['choices'])}]"
        elif meta.get("low") is not None:
            extra = f" [{meta['low']}..{meta['high']}]"
        rows.append(f"{f.name} (default {default!r}){extra}: {meta.get('help', '')}")
    return "\n".join(rows)
