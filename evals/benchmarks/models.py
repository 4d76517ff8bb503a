"""Load the model a benchmark run scores: a base model, a registry adapter, or a full model.

Adapters load as the transformers + peft generator loads them (``PeftModel`` on the
adapter's base through ``training.peft_methods.load_peft_model``, which knows ragtune's
own peft methods; whole-model kinds as complete models), in float32 and eval mode. LoRA
and IA3 are merged into the base weights before scoring.
"""

from __future__ import annotations

from pathlib import Path

from evals.benchmarks.tasks import BenchmarkError
from training.methods import SCORING_KINDS, WHOLE_MODEL_KINDS
from training.registry import AdapterRegistry

# Linear adapters whose weights fold into the base exactly (peft ``merge_and_unload``).
MERGED_FOR_SCORING = frozenset({"lora", "ia3"})


def check_base(adapter: str, trained_on: str, base: str) -> None:
    """Refuse an adapter trained on another base (compared by folder name or hub id, as the
    adapter service compares them)."""
    if Path(trained_on.rstrip("/")).name != Path(base.rstrip("/")).name:
        raise BenchmarkError(
            f"adapter {adapter!r} was trained on {trained_on!r}, not on the base being scored "
            f"({base!r}); pass --model {trained_on} to score it on its own base"
        )


def load_scoring_model(
    base: str, *, registry: AdapterRegistry | None = None, adapter: str | None = None
) -> tuple[object, object, dict]:
    """(model, tokenizer, description) for ``base`` (folder or hub id) or ``adapter`` on it.

    The description (model, adapter, kind, dtype) goes into the result's ``config``.
    Raises ``BenchmarkError`` for a scoring-only adapter, one trained on another base or a
    model that cannot be loaded (no such folder or hub id, no model in the folder),
    ``training.registry.RegistryError`` for an unknown adapter.
    """
    describe = {"model": base, "adapter": None, "adapter_kind": None, "dtype": "float32"}
    if adapter is None:
        model, tokenizer = _pretrained(base)
        return model.eval(), tokenizer, describe
    assert registry is not None, "an adapter needs the registry"
    manifest = registry.get(adapter)
    if manifest.kind in SCORING_KINDS:
        raise BenchmarkError(SCORING_KINDS[manifest.kind].format(name=adapter))
    check_base(adapter, manifest.base_model, base)
    folder = registry.path(adapter)
    describe.update(adapter=adapter, adapter_kind=manifest.kind, adapter_path=str(folder))
    if manifest.kind in WHOLE_MODEL_KINDS:
        model, tokenizer = _pretrained(str(folder))
        describe["model"] = str(folder)
        return model.eval(), tokenizer, describe
    from training.peft_methods import load_peft_model

    model, tokenizer = _pretrained(base)
    model = load_peft_model(model, folder)
    if manifest.kind in MERGED_FOR_SCORING:
        # the same function, one matmul per layer instead of three (2x faster scoring)
        model = model.merge_and_unload()
        describe["merged"] = True
    return model.eval(), tokenizer, describe


def _pretrained(source: str) -> tuple[object, object]:
    """(float32 causal LM, tokenizer) from a folder or hub id; ``BenchmarkError`` naming
    ``source`` when transformers cannot load it (instead of its traceback)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if source.startswith((".", "/", "~")) and not Path(source).expanduser().exists():
        raise BenchmarkError(f"model folder {source} not found")
    try:
        model = AutoModelForCausalLM.from_pretrained(source, dtype=torch.float32)
        return model, AutoTokenizer.from_pretrained(source)
    except (OSError, ValueError) as exc:  # no such hub id, no config.json, unknown model type
        raise BenchmarkError(f"cannot load model {source!r}: {exc}") from None
