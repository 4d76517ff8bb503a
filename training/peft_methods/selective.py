"""Selective finetuning: train a chosen subset of the model's own weights, through peft.

Each builder returns a peft config, so the result is saved, loaded, disabled (the
forgetting check) and served like any peft adapter:

- ``bitfit``: bias terms only (BitFit, Ben Zaken et al. 2022), with peft's BEFT method, which
  adds a trainable bias vector, starting at zero, to every linear layer except the output
  head. On a model with biases this is BitFit reparameterised (bias + delta). SmolLM2 and
  other Llama-style models have no biases at all, so classic BitFit would train nothing;
  there the method trains newly added biases, the closest meaningful variant. The
  manifest's ``trainable_parameters`` is their count (155,520 on SmolLM2-135M).
- ``layernorm``: the normalisation weights only (peft ``LNTuningConfig``; on Llama the two
  RMSNorms of every block and the final one: 35,136 weights on SmolLM2-135M).
- ``top-blocks``: the last N decoder blocks and the final norm, trained in full (peft's
  ``modules_to_save`` keeps a trained copy next to the frozen original, so the adapter can
  be switched off; it saves the copies, about 14 MB per SmolLM2 block). The config is a
  ``LoraConfig`` with no LoRA weights, so its kind must never reach vLLM's LoRA loader.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from training.config import ConfigError

if TYPE_CHECKING:
    from peft import BeftConfig, LNTuningConfig, LoraConfig

    from training.config import SFTArgs


def bitfit_config(args: SFTArgs) -> BeftConfig:
    """Bias-only training of every linear layer but the output head (peft BEFT)."""
    from peft import BeftConfig, TaskType

    from training.peft_methods import ensure_registered

    ensure_registered()  # silences BEFT's per-layer "base layer has no bias" warning
    return BeftConfig(task_type=TaskType.CAUSAL_LM, target_modules="all-linear")


def layernorm_config(args: SFTArgs) -> LNTuningConfig:
    """Normalisation weights only (peft's default LayerNorm/RMSNorm targets per model type)."""
    from peft import LNTuningConfig, TaskType

    from training.peft_methods import ensure_registered

    ensure_registered()  # silences peft's "Unsupported layer type ...RMSNorm" warning
    return LNTuningConfig(task_type=TaskType.CAUSAL_LM)


def block_count(base_model: str) -> int:
    """Decoder blocks of ``base_model`` (a folder or hub id), from its config.json."""
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(base_model)
    count = getattr(config, "num_hidden_layers", None)
    if not count:
        raise ConfigError(f"top-blocks: {base_model} does not say how many blocks it has")
    return int(count)


def top_blocks_config(args: SFTArgs) -> LoraConfig:
    """The last ``args.top_blocks`` blocks (``model.layers.<i>``) and ``model.norm`` unfrozen.

    Raises ConfigError when the base model has fewer blocks than asked for.
    """
    from peft import LoraConfig, TaskType

    # peft's internal "match nothing" target (used by X-LoRA): no LoRA weights at all
    from peft.utils.constants import DUMMY_TARGET_MODULES

    blocks = block_count(args.base_model)
    if args.top_blocks > blocks:
        raise ConfigError(
            f"top_blocks={args.top_blocks} is more than the {blocks} blocks of {args.base_model}"
        )
    # full paths: peft matches modules_to_save by a bare suffix ("norm" would catch every norm)
    unfrozen = [f"model.layers.{i}" for i in range(blocks - args.top_blocks, blocks)]
    return LoraConfig(
        task_type=TaskType.CAUSAL_LM,
        target_modules=DUMMY_TARGET_MODULES,
        modules_to_save=[*unfrozen, "model.norm"],
    )
