"""Merge a LoRA adapter into its base model: a plain model that a LoRA-free engine serves.

On CPU, vLLM serves adapter requests at a fraction of base-model speed, and merely
enabling LoRA slows the base model too (docs/performance.md). A dominant adapter merged
into the weights is served at base speed by an engine of its own, named after the
adapter; ``generator.routes`` sends that adapter's requests there.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from training.peft_methods import load_peft_model
from training.registry import AdapterRegistry, RegistryError

MANIFEST = "ragtune-merged.json"


def merge_adapter(
    registry: AdapterRegistry, name: str, output: Path, overwrite: bool = False
) -> Path:
    """Write base + LoRA ``name`` merged (safetensors and tokenizer) into ``output``."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    manifest = registry.get(name)
    if manifest.kind != "lora":
        raise RegistryError(
            f"{name!r} is a {manifest.kind} adapter; only LoRA adapters can be merged into weights"
        )
    if output.exists() and any(output.iterdir()) and not overwrite:
        raise RegistryError(f"{output} already exists; pass --overwrite to replace it")
    staging = output.with_name(output.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    base = AutoModelForCausalLM.from_pretrained(manifest.base_model, dtype=torch.float32)
    merged = load_peft_model(base, registry.path(name)).merge_and_unload()
    merged.save_pretrained(staging, safe_serialization=True)
    adapter_dir = registry.path(name)
    tokenizer_source = (
        adapter_dir if (adapter_dir / "tokenizer_config.json").exists() else manifest.base_model
    )
    AutoTokenizer.from_pretrained(tokenizer_source).save_pretrained(staging)
    (staging / MANIFEST).write_text(
        json.dumps(
            {
                "adapter": name,
                "base_model": manifest.base_model,
                "adapter_manifest": manifest.to_dict(),
            },
            indent=2,
        )
    )
    shutil.rmtree(output, ignore_errors=True)
    staging.rename(output)
    return output
