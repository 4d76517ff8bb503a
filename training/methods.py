"""The adaptation methods and the adapter kinds they make: adding a method starts here
(its options, if any, are fields of ``training.config.SFTArgs``).

Each SFT method names a peft config builder (``None`` for full finetuning, saved as a
complete model), the manifest ``kind`` of what it trains and where that kind is served:
vLLM hot-loads ``lora``; every other kind (``ia3``, ``prefix``, ``prompt``, ``ptuning``,
``bottleneck``, ``bitfit``, ``layernorm``, ``top-blocks``, ``full``) goes to the
transformers + peft generator. Methods peft lacks, or builds only with care, live in
``training.peft_methods``. The classifier trainer writes ``classifier`` adapters and
the reward trainer ``reward`` ones, which only score; DPO and PPO write ``lora``
policies. Everything else reads these tables: the ``method`` choices of
``training.config``, ``ragtune train methods``, the Train tab, the registry's list of
chat adapters and the app's adapter service (``app.adapters``), which routes by kind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # training.config reads the method names from here
    from training.config import SFTArgs

VLLM = "vllm"  # hot-loaded into the running vLLM engine (its runtime LoRA API)
PEFT = "transformers+peft"  # generated in the app's process by app.generation.peft_backend


@dataclass(frozen=True)
class SFTMethod:
    """An instruction-tuning method: what it trains, and where its result is served."""

    name: str
    kind: str
    served_by: str
    description: str
    peft_config: Callable[[SFTArgs], Any] | None
    no_resume: str = ""  # why ``--resume`` is refused for this method ("" = it resumes)


def _lora(args: SFTArgs):
    from peft import TaskType

    return args.lora_config(TaskType.CAUSAL_LM)


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


def _ptuning(args: SFTArgs):
    from peft import PromptEncoderConfig, TaskType

    return PromptEncoderConfig(
        task_type=TaskType.CAUSAL_LM,
        num_virtual_tokens=args.num_virtual_tokens,
        encoder_reparameterization_type=args.ptuning_encoder.upper(),
        encoder_hidden_size=args.ptuning_hidden_size or None,  # None: the model's hidden size
    )


def _bottleneck(args: SFTArgs):
    from training.peft_methods.bottleneck import BottleneckConfig

    return BottleneckConfig(
        task_type="CAUSAL_LM",
        placement=args.adapter_placement,
        reduction_factor=args.adapter_reduction_factor,
        non_linearity=args.adapter_non_linearity,
    )


def _bitfit(args: SFTArgs):
    from training.peft_methods.selective import bitfit_config

    return bitfit_config(args)


def _layernorm(args: SFTArgs):
    from training.peft_methods.selective import layernorm_config

    return layernorm_config(args)


def _top_blocks(args: SFTArgs):
    from training.peft_methods.selective import top_blocks_config

    return top_blocks_config(args)


SFT_METHODS: dict[str, SFTMethod] = {
    m.name: m
    for m in (
        SFTMethod(
            "lora", "lora", VLLM, "Low-rank update matrices on the attention projections.", _lora
        ),
        SFTMethod(
            "ia3",
            "ia3",
            PEFT,
            "Learned rescaling of keys, values and feed-forward activations.",
            _ia3,
        ),
        SFTMethod("prefix", "prefix", PEFT, "Learned key/value prefixes at every layer.", _prefix),
        SFTMethod(
            "prompt", "prompt", PEFT, "Learned soft-prompt embeddings before the input.", _prompt
        ),
        SFTMethod(
            "ptuning",
            "ptuning",
            PEFT,
            "P-tuning: soft-prompt embeddings produced by a small trained MLP/LSTM encoder.",
            _ptuning,
            # the Trainer's resume loads the saved (encoded) prompt into the encoder's input
            no_resume="a checkpoint holds the encoded prompt, not its encoder; retrain instead",
        ),
        SFTMethod(
            "bottleneck",
            "bottleneck",
            PEFT,
            "Adapter layers (Houlsby): small down/up projections after attention and FFN.",
            _bottleneck,
        ),
        SFTMethod(
            "bitfit",
            "bitfit",
            PEFT,
            "Bias terms only (BitFit); bias-less models (SmolLM2) get new zero-init biases.",
            _bitfit,
        ),
        SFTMethod(
            "layernorm",
            "layernorm",
            PEFT,
            "Normalisation (LayerNorm/RMSNorm) weights only.",
            _layernorm,
        ),
        SFTMethod(
            "top-blocks",
            "top-blocks",
            PEFT,
            "The last N transformer blocks (and the final norm) trained in full.",
            _top_blocks,
        ),
        SFTMethod("full", "full", PEFT, "All weights trained; saved as a complete model.", None),
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

# Kinds that score instead of generating (every classify method, the reward model), with
# what to run instead of a chat; ``{name}`` is the adapter's name.
SCORING_KINDS = {
    "classifier": "{name!r} is a classifier; use `ragtune classify TEXT --adapter {name}`",
    "reward": "{name!r} is a reward model; use `ragtune reward score --adapter {name}`",
}
# manifest kind -> where adapters of it are served (the DPO and PPO policies are "lora")
SERVED_BY: dict[str, str] = {m.kind: m.served_by for m in SFT_METHODS.values()}
# The known kinds that generate text (chat, A/B, the API), in method order; whether any
# kind, known or not, generates is ``is_generative``.
GENERATIVE_KINDS: tuple[str, ...] = tuple(SERVED_BY)
# Kinds saved as a complete model rather than as an adapter on the base model.
WHOLE_MODEL_KINDS = frozenset(m.kind for m in SFT_METHODS.values() if m.peft_config is None)


def is_generative(kind: str) -> bool:
    """True when adapters of manifest ``kind`` answer chats (everything but ``SCORING_KINDS``).

    A kind this version does not know (a newer ragtune's) counts as generative: it is
    listed as a chat adapter and served by transformers + peft (``served_by``).
    """
    return kind not in SCORING_KINDS


def served_by(kind: str) -> str:
    """Where an adapter of manifest ``kind`` is served: ``VLLM`` or ``PEFT``.

    A kind this version does not know (a newer ragtune's) is tried with transformers +
    peft. Scoring kinds (``SCORING_KINDS``) are not served; callers refuse them first.
    """
    return SERVED_BY.get(kind, PEFT)
