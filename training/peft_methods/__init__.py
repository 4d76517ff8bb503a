"""peft methods ragtune adds to peft, and the one loader for saved peft adapters.

peft finds a method by the ``peft_type`` in ``adapter_config.json``; a method ragtune adds
(``bottleneck``) is known only once its module is imported in this process, so anything
that loads a saved adapter goes through ``load_peft_model`` (or calls
``ensure_registered`` first). Without it, peft fails with a bare ``KeyError: 'BOTTLENECK'``.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

# Warnings peft gives for what ragtune does on purpose (training.peft_methods.selective):
# BEFT (BitFit) on a bias-less base such as SmolLM2 adds the biases it warns are missing, and
# LN tuning works on RMSNorm although peft does not list it.
HARMLESS_WARNINGS = (
    "Detected that the base layer has no bias",
    r"Unsupported layer type '<class '[\w.]+RMSNorm'>'",
)


def ensure_registered() -> None:
    """Register ragtune's own peft methods with peft (idempotent; imports torch and peft)."""
    import training.peft_methods.bottleneck  # noqa: F401  (importing it registers the method)

    for message in HARMLESS_WARNINGS:
        warnings.filterwarnings("ignore", message=message)


def load_peft_model(base: Any, folder: Path | str, **kwargs: Any) -> Any:
    """``peft.PeftModel.from_pretrained(base, folder, **kwargs)`` after registering
    ragtune's methods; returns the ``PeftModel``.

    Raises what peft raises (OSError for a missing folder, RuntimeError for weights of
    another shape than ``base``'s).
    """
    ensure_registered()
    from peft import PeftModel

    return PeftModel.from_pretrained(base, folder, **kwargs)
