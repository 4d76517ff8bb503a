"""Training arguments as dataclasses, with help text and allowed range on every field.

The CLI (its options and ``--help``) and the YAML configs in ``configs/train/`` are built
from these, so a field documented here is documented everywhere; the workbench's Train
form takes its defaults from them and checks its values against their ranges.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

from indexing.errors import RagtuneError
from training.methods import CLASSIFY_METHODS, SFT_METHODS

if TYPE_CHECKING:
    from peft import LoraConfig


class ConfigError(RagtuneError, ValueError):
    """A config file or value is wrong; the message names the field and allowed range."""


def arg(
    default: Any, help: str, *, low: float | None = None, high: float | None = None, choices=None
) -> Any:
    """A dataclass field carrying its help text and allowed values.

    Returns a ``dataclasses.Field`` (typed ``Any`` so it can stand as a field's default);
    list and dict defaults get a factory that copies them."""
    meta = {"help": help, "low": low, "high": high, "choices": choices}
    if isinstance(default, (list, dict)):
        return field(default_factory=lambda: type(default)(default), metadata=meta)
    return field(default=default, metadata=meta)


def same_as(cls: type, name: str, default: Any = dataclasses.MISSING) -> Any:
    """Field ``name`` of dataclass ``cls`` again (same help, range and choices), optionally
    with another default; for args that share a field without sharing a whole group.

    Returns a ``dataclasses.Field`` like ``arg`` (typed ``Any`` to stand as a default)."""
    source = next(f for f in dataclasses.fields(cls) if f.name == name)
    if default is dataclasses.MISSING:
        has_default = source.default is not dataclasses.MISSING
        default = source.default if has_default else source.default_factory()
    meta = source.metadata
    return arg(default, meta["help"], low=meta["low"], high=meta["high"], choices=meta["choices"])


@dataclass
class LoraOptions:
    """The LoRA settings, mixed into the args of every trainer that builds a LoRA adapter.

    List it before ``TrainArgs`` among the bases (``class X(LoraOptions, TrainArgs)``) so
    the shared fields come first; the fields stay flat (``lora_r``, not ``lora.r``), so
    configs, ``--set`` and manifests name them as before.
    """

    lora_r: int = arg(
        8,
        "LoRA rank (size of the low-rank matrices; vLLM serves chat adapters up to "
        "generator.max_lora_rank).",
        low=1,
        high=256,
    )
    lora_alpha: int = arg(
        16, "LoRA scaling numerator (the update is scaled by alpha / r).", low=1, high=1024
    )
    lora_dropout: float = arg(0.0, "Dropout on the LoRA input.", low=0.0, high=0.9)
    target_modules: list[str] = arg(
        ["q_proj", "k_proj", "v_proj", "o_proj"],
        "Modules that LoRA adapts (`sft --method ia3` adapts the listed ones of k_proj, "
        "v_proj, down_proj).",
    )

    def lora_config(self, task_type: str) -> LoraConfig:
        """These settings as a peft ``LoraConfig`` for ``task_type`` (e.g.
        "CAUSAL_LM", "SEQ_CLS")."""
        from peft import LoraConfig

        return LoraConfig(
            task_type=task_type,
            r=self.lora_r,
            lora_alpha=self.lora_alpha,
            lora_dropout=self.lora_dropout,
            target_modules=list(self.target_modules),
        )


@dataclass
class TrainArgs:
    """Arguments every training method shares."""

    name: str = arg("", "Adapter name in the registry (letters, digits, '.', '_', '-').")
    dataset: str = arg(
        "", "Training data file (JSONL for SFT; TSV/CSV/JSONL text,label for classifiers)."
    )
    base_model: str = arg(
        "default",
        "Base model: 'default' (the generator's model, SmolLM2-135M-Instruct "
        "unless configured), a folder or a hub id.",
    )
    epochs: float = arg(1.0, "Passes over the training data.", low=0.01, high=100)
    max_steps: int = arg(
        -1, "Stop after this many optimizer steps (-1: run all epochs).", low=-1, high=1_000_000
    )
    learning_rate: float = arg(2e-4, "Peak learning rate (linear decay).", low=1e-7, high=1.0)
    batch_size: int = arg(4, "Examples per step on each device.", low=1, high=1024)
    gradient_accumulation: int = arg(1, "Steps accumulated per optimizer update.", low=1, high=1024)
    max_length: int = arg(512, "Tokens per example; longer ones are truncated.", low=16, high=32768)
    seed: int = arg(
        42, "Random seed for data order, sampling and initialisation.", low=0, high=2**31 - 1
    )
    logging_steps: int = arg(5, "Log loss every this many steps.", low=1, high=100_000)
    save_steps: int = arg(
        50, "Checkpoint every this many steps (for --resume).", low=1, high=1_000_000
    )
    resume: bool = arg(False, "Resume from the last checkpoint of a run with the same name.")
    overwrite: bool = arg(False, "Replace an existing adapter of the same name.")

    def problems(self) -> list[str]:
        """Mistakes no single field's range shows (subclasses add theirs); none here."""
        return []


@dataclass
class SFTArgs(LoraOptions, TrainArgs):
    """Instruction tuning (supervised finetuning on chat or instruction data)."""

    method: str = arg("lora", "Adaptation method.", choices=tuple(SFT_METHODS))
    lora_dropout: float = same_as(LoraOptions, "lora_dropout", 0.05)  # SFT: 0.05, RLHF: 0.0
    num_virtual_tokens: int = arg(
        16, "Learned tokens for prefix, prompt and p-tuning.", low=1, high=512
    )
    ptuning_encoder: str = arg(
        "mlp", "P-tuning: the encoder that produces the prompt embeddings.", choices=("mlp", "lstm")
    )
    ptuning_hidden_size: int = arg(
        0, "P-tuning: hidden size of the prompt encoder (0: the model's).", low=0, high=16384
    )
    adapter_placement: str = arg(
        "houlsby",
        "Adapter layers (bottleneck): 'houlsby' after attention and feed-forward, 'pfeiffer' "
        "after feed-forward only.",
        choices=("houlsby", "pfeiffer"),
    )
    adapter_reduction_factor: int = arg(
        16,
        "Adapter layers: bottleneck size = hidden size / this (16: 576 -> 36 on SmolLM2).",
        low=1,
        high=4096,
    )
    adapter_non_linearity: str = arg(
        "relu", "Adapter layers: the nonlinearity.", choices=("relu", "gelu", "silu", "tanh")
    )
    top_blocks: int = arg(
        2,
        "top-blocks: how many of the last transformer blocks are trained (at most the "
        "model's; SmolLM2-135M has 30).",
        low=1,
        high=1024,
    )
    mixture: list[dict[str, Any]] = arg(
        [],
        "Multi-task data instead of dataset: a list of {path, weight, task}, one instruction "
        "file per task, sampled by weight with the run's seed until the first task runs out "
        "(CLI: --mix PATH:WEIGHT:TASK, repeatable).",
    )
    replay: float = arg(
        0.0,
        "Share of the training rows drawn from the bundled general instruction set "
        "(training/datasets/general_instructions.jsonl), against forgetting.",
        low=0.0,
        high=0.9,
    )
    forgetting_check: bool = arg(True, "Score base and tuned model on the general set afterwards.")
    forgetting_task: str = arg(
        "../shared/data/sst2/test.tsv",
        "Labeled sentiment file for the prompted-accuracy part of the check.",
    )
    forgetting_rows: int = arg(64, "Rows of the sentiment file scored.", low=1, high=100_000)

    def problems(self) -> list[str]:
        """Method-specific mistakes (``resume`` with a method that cannot resume) and a
        wrong ``mixture`` (``training.mixture.mixture_problems``)."""
        from training.mixture import mixture_problems  # it imports this module

        problems = mixture_problems(self.mixture, self.dataset)
        method = SFT_METHODS.get(self.method)
        if self.resume and method is not None and method.no_resume:
            problems.append(
                f"resume is not supported for method={self.method!r}: {method.no_resume}"
            )
        return problems


@dataclass
class ClassifyArgs(TrainArgs):
    """Text classification: features + scikit-learn, a new head, LoRA or full finetuning."""

    method: str = arg("features", "Approach.", choices=tuple(CLASSIFY_METHODS))
    text_column: str = arg("", "Text column (default: 'text', else 'sentence').")
    label_column: str = arg("label", "Label column.")
    train_rows: int = arg(
        2000, "Rows sampled from the training file (0: all).", low=0, high=10_000_000
    )
    eval_file: str = arg("", "Validation file for model selection (optional).")
    test_file: str = arg("", "Test file the reported accuracy comes from (optional).")
    feature_model: str = arg(
        "embedder",
        "Features from: 'embedder' (MiniLM) or 'llm' (base model).",
        choices=("embedder", "llm"),
    )
    classifier: str = arg(
        "logistic", "scikit-learn model for features.", choices=("logistic", "forest")
    )
    lora_r: int = same_as(LoraOptions, "lora_r")  # method 'lora' (its targets: q_proj, v_proj)
    lora_alpha: int = same_as(LoraOptions, "lora_alpha")


@dataclass
class PreferenceArgs(LoraOptions, TrainArgs):
    """Training on preference pairs {"prompt", "chosen", "rejected"}."""

    eval_fraction: float = arg(
        0.2, "Share of pairs held out for the reported accuracy / win rate.", low=0.0, high=0.9
    )
    skip_invalid: bool = arg(False, "Skip bad pairs (listed) instead of refusing the file.")


@dataclass
class RewardArgs(PreferenceArgs):
    """A reward model: the base model with a scalar head, LoRA-tuned on preferences
    (trl RewardTrainer)."""

    center_rewards: float = arg(
        0.01, "Weight pulling mean rewards towards 0 (0: off).", low=0.0, high=1.0
    )


@dataclass
class DPOArgs(PreferenceArgs):
    """Direct preference optimisation with a LoRA policy (trl DPOTrainer); the frozen base
    is the reference."""

    beta: float = arg(
        0.1, "Strength of the implicit KL penalty to the base model.", low=0.001, high=10.0
    )
    reward: str = arg(
        "", "Optional reward adapter/classifier to judge held-out prompts (win rate vs base)."
    )
    reward_label: str = arg("1", "For classifier rewards: the label whose log-odds is the reward.")
    max_new_tokens: int = arg(
        64, "Tokens generated per held-out prompt for the win rate.", low=1, high=4096
    )


@dataclass
class PPOArgs(LoraOptions, TrainArgs):
    """PPO against a reward adapter or classifier, with a KL penalty to the frozen base."""

    reward: str = arg("", "Reward: a 'reward' adapter or a classifier in the registry.")
    reward_label: str = arg("1", "For classifier rewards: the label whose log-odds is the reward.")
    prompt_column: str = arg(
        "", "Prompt column of a TSV/CSV/JSONL file (default: prompt, text or sentence)."
    )
    prompt_words: int = arg(
        0, "Use only the first N words of each prompt (review openings); 0: all.", low=0, high=1000
    )
    min_prompt_words: int = arg(0, "Skip prompts with fewer words than this.", low=0, high=1000)
    chat_template: bool = arg(False, "Wrap prompts as a user message with the chat template.")
    prompt_rows: int = arg(
        2000, "Training prompts sampled from the file (0: all).", low=0, high=10_000_000
    )
    eval_dataset: str = arg("", "Held-out prompt file scored before and after training.")
    eval_prompts: int = arg(64, "Held-out prompts scored before and after.", low=1, high=100_000)
    max_new_tokens: int = arg(24, "Tokens generated per prompt.", low=1, high=4096)
    temperature: float = arg(1.0, "Sampling temperature for rollouts.", low=0.01, high=5.0)
    kl_coef: float = arg(0.05, "KL penalty per token, against the frozen base.", low=0.0, high=10.0)
    ppo_epochs: int = arg(4, "Optimisation passes over each batch of rollouts.", low=1, high=100)
    mini_batch_size: int = arg(
        8, "Rollouts per gradient step inside a PPO epoch.", low=1, high=1024
    )
    clip_range: float = arg(0.2, "Policy ratio clipping.", low=0.01, high=1.0)
    value_clip_range: float = arg(0.2, "Value prediction clipping.", low=0.01, high=100.0)
    value_coef: float = arg(0.1, "Weight of the value loss.", low=0.0, high=100.0)
    gamma: float = arg(1.0, "Discount factor.", low=0.0, high=1.0)
    lam: float = arg(0.95, "GAE lambda.", low=0.0, high=1.0)
    whiten_scores: bool = arg(
        False, "Normalise reward scores per batch before adding the KL penalty."
    )


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
    if not args.dataset and not getattr(args, "mixture", None):
        problems.append("dataset is required")
    problems += args.problems()
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
        raise ConfigError(
            f"unknown field(s) {', '.join(unknown)} for {cls.__name__}; known: "
            f"{', '.join(sorted(names))}"
        )
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
