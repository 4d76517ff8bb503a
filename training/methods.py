"""The adaptation methods, registered by name: adding one touches only this file.

Each SFT method maps to a peft config builder (``None`` for full finetuning) and the
manifest ``kind`` that tells the serving side how to load the result: vLLM hot-loads
``lora``; ``prefix``, ``prompt`` and ``ia3`` go to the transformers + peft generator;
``full`` is served as its own model.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from training.config import SFTArgs


@dataclass(frozen=True)
class SFTMethod:
    """An instruction-tuning method."""

    name: str
    kind: str
    description: str
    peft_config: Callable[[SFTArgs], Any] | None


def _lora(args: SFTArgs):
    from peft import LoraConfig, TaskType

    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.target_modules),
    )


def _ia3(args: SFTArgs):
    from peft import IA3Config, TaskType

    targets = [m for m in args.target_modules if m in {"k_proj", "v_proj", "down_proj"}]
    targets = targets or ["k_proj", "v_proj", "down_proj"]
    feedforward = [m for m in targets if m in {"down_proj", "up_proj", "gate_proj"}]
    return IA3Config(
        task_type=TaskType.CAUSAL_LM, target_modules=targets, feedforward_modules=feedforward
    )


def _prefix(args: SFTArgs):
    from peft import PrefixTuningConfig, TaskType

    return PrefixTuningConfig(
        task_type=TaskType.CAUSAL_LM, num_virtual_tokens=args.num_virtual_tokens
    )


def _prompt(args: SFTArgs):
    from peft import PromptTuningConfig, PromptTuningInit, TaskType

    return PromptTuningConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=args.num_virtual_tokens,
        prompt_tuning_init=PromptTuningInit.RANDOM,
    )


SFT_METHODS: dict[str, SFTMethod] = {
    m.name: m
    for m in (
        SFTMethod("lora", "lora", "Low-rank update matrices on the attention projections.", _lora),
        SFTMethod(
            "ia3", "ia3", "Learned rescaling of keys, values and feed-forward activations.", _ia3
        ),
        SFTMethod("prefix", "prefix", "Learned key/value prefixes at every layer.", _prefix),
        SFTMethod("prompt", "prompt", "Learned soft-prompt embeddings before the input.", _prompt),
        SFTMethod("full", "full", "All weights trained; saved as a complete model.", None),
    )
}

CLASSIFY_METHODS = {
    "features": "Frozen embeddings + a scikit-learn classifier.",
    "head": "A new output layer on the frozen language model.",
    "lora": "LoRA on the language model plus a new output layer.",
    "full": "All weights of the language model plus a new output layer.",
}

# RLHF commands (one method each), shown by `ragtune train methods` as `ragtune train <name>`.
PREFERENCE_METHODS = {
    "reward": {"reward": "Reward model: LoRA + scalar head learns which answer people prefer."},
    "ppo": {"ppo": "PPO: a LoRA policy maximises a reward with a KL penalty to the base."},
    "dpo": {"dpo": "DPO: a LoRA policy learns the preferences directly, no reward model."},
}
