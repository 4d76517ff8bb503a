"""Bottleneck adapter layers (Houlsby et al. 2019) as a method registered with peft.

Each adapted sublayer output ``h`` becomes ``h + up(act(down(dropout(h))))``: a
down-projection to ``r`` features, a nonlinearity and an up-projection back, with the
adapter's own residual, before the decoder layer's residual add. The ``houlsby``
placement adapts the attention output (``self_attn.o_proj``) and the feed-forward output
(``mlp.down_proj``) of every layer; ``pfeiffer`` only the feed-forward output. The
up-projection starts at zero, so a new adapter computes exactly what the base computes.

peft ships no such method, so this module adds one with ``peft.utils.register_peft_method``;
saving, loading, ``disable_adapter`` and trainability then work as for any peft method.
Importing the module registers it (once per process); loaders use
``training.peft_methods.load_peft_model``. Adapters are non-linear, so merging into the
base weights is refused with a ``ValueError``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, ClassVar

import torch
from peft.config import PeftConfig
from peft.mapping import PEFT_TYPE_TO_TUNER_MAPPING
from peft.tuners.tuners_utils import BaseTuner, BaseTunerLayer
from peft.utils import PeftType, register_peft_method
from torch import nn

NAME = "bottleneck"  # peft_type "BOTTLENECK" in adapter_config.json
PREFIX = "bottleneck_"  # peft finds adapter weights by this prefix of their attribute names
PLACEMENTS = {  # module names of Llama-style decoders (SmolLM2, Qwen2, Mistral)
    "houlsby": ["self_attn.o_proj", "mlp.down_proj"],  # after attention and after the FFN
    "pfeiffer": ["mlp.down_proj"],  # after the FFN only
}
ACTIVATIONS = {"relu": nn.ReLU, "gelu": nn.GELU, "silu": nn.SiLU, "tanh": nn.Tanh}
NOT_MERGEABLE = (
    "bottleneck adapters are non-linear and cannot be merged into the base weights; "
    "serve the adapter with transformers + peft"
)


def _peft_type_member(name: str) -> PeftType:
    """The ``PeftType`` member ``name.upper()``, added if missing.

    ``register_peft_method`` requires the type to be a member already
    (peft/utils/peft_types.py), and Python enums have no public way to add one.
    """
    key = name.upper()
    if key in PeftType.__members__:
        return PeftType[key]
    member = str.__new__(PeftType, key)
    member._name_, member._value_ = key, key
    member.__objclass__ = PeftType
    PeftType._member_names_.append(key)
    PeftType._member_map_[key] = member
    PeftType._value2member_map_[key] = member
    type.__setattr__(PeftType, key, member)  # EnumType.__setattr__ refuses member names
    return member


BOTTLENECK = _peft_type_member(NAME)


@dataclass
class BottleneckConfig(PeftConfig):
    """Settings of a bottleneck adapter; ``target_modules`` None means "from ``placement``"."""

    placement: str = field(
        default="houlsby", metadata={"help": "'houlsby' (attention + FFN) or 'pfeiffer' (FFN)"}
    )
    target_modules: list[str] | str | None = field(
        default=None, metadata={"help": "Linear modules whose output is adapted (None: placement)"}
    )
    bottleneck_size: int | None = field(
        default=None, metadata={"help": "r; None: the module's output size // reduction_factor"}
    )
    reduction_factor: int = field(default=16, metadata={"help": "output size / r"})
    non_linearity: str = field(default="relu", metadata={"help": "|".join(ACTIVATIONS)})
    dropout: float = field(default=0.0, metadata={"help": "dropout on the adapter input"})
    init_weights: bool = field(default=True, metadata={"help": "zero up-projection (identity)"})
    # read by peft's generic module matcher (check_target_module_exists)
    layers_to_transform: list[int] | int | None = None
    layers_pattern: list[str] | str | None = None
    exclude_modules: list[str] | str | None = None
    modules_to_save: list[str] | None = None

    def __post_init__(self) -> None:
        super().__post_init__()
        self.peft_type = BOTTLENECK
        if self.placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {', '.join(PLACEMENTS)}")
        if self.non_linearity not in ACTIVATIONS:
            raise ValueError(f"non_linearity must be one of {', '.join(ACTIVATIONS)}")
        if self.reduction_factor < 1 or (
            self.bottleneck_size is not None and self.bottleneck_size < 1
        ):
            raise ValueError("reduction_factor and bottleneck_size must be at least 1")
        if self.target_modules is None:
            self.target_modules = list(PLACEMENTS[self.placement])
        if isinstance(self.target_modules, list):
            self.target_modules = set(self.target_modules)


class BottleneckLayer(BaseTunerLayer):
    """What peft needs to know of the layer: which attributes hold per-adapter state."""

    adapter_layer_names = ("bottleneck_down", "bottleneck_up")  # trainable and saved
    other_param_names = ("bottleneck_act", "bottleneck_dropout")


class BottleneckLinear(nn.Module, BottleneckLayer):
    """An ``nn.Linear`` whose output ``h`` becomes ``h + up(act(down(dropout(h))))``."""

    def __init__(self, base_layer: nn.Linear, adapter_name: str, config: BottleneckConfig) -> None:
        super().__init__()
        self.base_layer = base_layer
        self.bottleneck_down = nn.ModuleDict({})
        self.bottleneck_up = nn.ModuleDict({})
        self.bottleneck_act = nn.ModuleDict({})
        self.bottleneck_dropout = nn.ModuleDict({})
        self._disable_adapters = False
        self.merged_adapters: list[str] = []
        self.in_features, self.out_features = base_layer.in_features, base_layer.out_features
        self._active_adapter = adapter_name  # before update_layer, so a first adapter trains
        self.update_layer(adapter_name, config)

    def update_layer(self, adapter_name: str, config: BottleneckConfig) -> None:
        """Add adapter ``adapter_name``: down (d -> r, Kaiming), up (r -> d, zero)."""
        d = self.out_features
        r = config.bottleneck_size or max(1, d // config.reduction_factor)
        self.bottleneck_down[adapter_name] = nn.Linear(d, r)
        self.bottleneck_up[adapter_name] = nn.Linear(r, d)
        self.bottleneck_act[adapter_name] = ACTIVATIONS[config.non_linearity]()
        self.bottleneck_dropout[adapter_name] = (
            nn.Dropout(config.dropout) if config.dropout > 0 else nn.Identity()
        )
        if config.init_weights:
            nn.init.kaiming_uniform_(self.bottleneck_down[adapter_name].weight, a=math.sqrt(5))
            nn.init.zeros_(self.bottleneck_down[adapter_name].bias)
            nn.init.zeros_(self.bottleneck_up[adapter_name].weight)
            nn.init.zeros_(self.bottleneck_up[adapter_name].bias)
        self._move_adapter_to_device_of_base_layer(adapter_name)
        self.set_adapter(self.active_adapters, inference_mode=config.inference_mode)

    def merge(self, safe_merge: bool = False, adapter_names: list[str] | None = None) -> None:
        """Refused: a non-linear adapter has no equivalent base weight (``ValueError``)."""
        raise ValueError(NOT_MERGEABLE)

    def unmerge(self) -> None:
        """Nothing to undo: never merged."""

    def forward(self, x: torch.Tensor, *args: Any, **kwargs: Any) -> torch.Tensor:
        """The base output plus every active adapter's bottleneck of it (same shape)."""
        h = self.base_layer(x, *args, **kwargs)
        if self.disable_adapters:
            return h
        out = h
        for name in self.active_adapters:
            if name not in self.bottleneck_down:
                continue
            down = self.bottleneck_down[name]
            z = self.bottleneck_dropout[name](h.to(down.weight.dtype))
            out = out + self.bottleneck_up[name](self.bottleneck_act[name](down(z))).to(h.dtype)
        return out

    def __repr__(self) -> str:
        return "bottleneck." + super().__repr__()


class BottleneckModel(BaseTuner):
    """The peft tuner: wraps each targeted ``nn.Linear`` in a ``BottleneckLinear``."""

    prefix: str = PREFIX
    tuner_layer_cls = BottleneckLayer
    target_module_mapping: ClassVar[dict[str, list[str]]] = {
        "llama": PLACEMENTS["houlsby"]
    }  # when target_modules is None

    def _create_and_replace(
        self, peft_config, adapter_name, target, target_name, parent, current_key, **kwargs
    ) -> None:
        if isinstance(target, BottleneckLinear):
            target.update_layer(adapter_name, peft_config)
            return
        if not isinstance(target, nn.Linear):
            raise TypeError(
                f"bottleneck adapters wrap nn.Linear modules; {current_key} is "
                f"{type(target).__name__}"
            )
        new_module = BottleneckLinear(target, adapter_name, peft_config)
        if adapter_name not in self.active_adapters:
            new_module.requires_grad_(False)
        self._replace_module(parent, target_name, new_module, target)

    def _check_merge_allowed(self) -> None:
        raise ValueError(NOT_MERGEABLE)


if BOTTLENECK not in PEFT_TYPE_TO_TUNER_MAPPING:  # registering twice raises KeyError
    register_peft_method(
        name=NAME, config_cls=BottleneckConfig, model_cls=BottleneckModel, prefix=PREFIX
    )
if PEFT_TYPE_TO_TUNER_MAPPING[BOTTLENECK].__module__ != __name__:  # a newer peft's own
    raise ImportError(
        f"peft already has a {BOTTLENECK.value!r} method of its own "
        f"({PEFT_TYPE_TO_TUNER_MAPPING[BOTTLENECK].__module__}); ragtune's cannot register"
    )
