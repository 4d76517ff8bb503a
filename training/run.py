"""One training run: the skeleton every trainer (sft, classify, reward, dpo, ppo) shares.

    with TrainingRun(args, registry, runs_dir) as run:  # a taken name is refused first
        rows = load(args.dataset)                        # bad data: refused before a model loads
        log = run.start_log()                            # fresh <runs_dir>/<name>/log.jsonl
        trainer = Trainer(args=Config(**run.trainer_settings()), callbacks=[log], ...)
        ...
        run.save(model, tokenizer)                       # into the registry's staging folder
        run.plot("loss.png")
        return run.commit(kind="lora", method="lora", metrics=..., parameters=...)

The run folder ``<runs_dir>/<name>/`` holds the metric log (the workbench tails it) and
the checkpoints; it stays after a failure, so ``--resume`` can continue. The adapter is
written into a staging folder and moved into the registry, with its manifest, only by
``commit``. A run that fails or is interrupted (an exception, Ctrl-C) removes its staging
folder, so the registry is exactly as it was; a process killed by a signal leaves the
staging folder behind, hidden, until the next run of that name replaces it.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

from training.config import TrainArgs
from training.data import file_sha256
from training.registry import AdapterRegistry, Manifest

if TYPE_CHECKING:  # it imports transformers; the web app reads log_path without loading it
    from peft import PeftModel
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from training.tracking import MetricsLog

# Fields that say where a run goes and how to treat an existing one, not how it trains.
NOT_HYPERPARAMETERS = frozenset({"name", "dataset", "overwrite", "resume"})


def log_path(runs_dir: Path, name: str) -> Path:
    """The metric log of run ``name``: ``<runs_dir>/<name>/log.jsonl``, one JSON record per
    logging step (``step``, ``max_steps``, ``eta_s`` and the metrics; ``MetricsLog``)."""
    return runs_dir / name / "log.jsonl"


def load_tokenizer(base_model: str):
    """The tokenizer of ``base_model`` (a folder or hub id), with a pad token (EOS if none)."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


class TrainingRun:
    """One run of ``args`` into ``registry``, logging under ``runs_dir``; a context manager."""

    def __init__(self, args: TrainArgs, registry: AdapterRegistry, runs_dir: Path) -> None:
        self.args = args
        self.registry = registry
        self.log_file = log_path(runs_dir, args.name)
        self.folder = self.log_file.parent
        self.checkpoints = self.folder / "checkpoints"
        self.log: MetricsLog | None = None
        self._staging: Path | None = None

    def __enter__(self) -> Self:
        """Refuse a taken name (RegistryError) unless ``args.overwrite``, before anything loads."""
        self.registry.check_free(self.args.name, self.args.overwrite)
        return self

    def __exit__(self, exc_type, exc, traceback) -> None:
        if exc_type is not None and self._staging is not None:
            shutil.rmtree(self._staging, ignore_errors=True)

    def start_log(self, *, resume: bool = False) -> MetricsLog:
        """The metric log (also a transformers callback), in a fresh run folder.

        ``resume`` keeps the folder, its checkpoints and its log, to continue a run.
        """
        from training.tracking import MetricsLog

        if not resume:
            shutil.rmtree(self.folder, ignore_errors=True)
        self.log = MetricsLog(self.log_file)
        return self.log

    def has_checkpoint(self) -> bool:
        """True when the run folder holds a checkpoint to resume from."""
        return any(self.checkpoints.glob("checkpoint-*"))

    def trainer_settings(self) -> dict[str, Any]:
        """transformers/trl config fields every trainer shares, with what CPUs need.

        Callers add their own: ``max_length`` (trl configs), the save strategy.
        """
        import torch

        args = self.args
        return {
            "output_dir": str(self.checkpoints),
            "num_train_epochs": args.epochs,
            "max_steps": args.max_steps,
            "per_device_train_batch_size": args.batch_size,
            "gradient_accumulation_steps": args.gradient_accumulation,
            "learning_rate": args.learning_rate,
            "lr_scheduler_type": "linear",
            "logging_steps": args.logging_steps,
            "seed": args.seed,
            "disable_tqdm": False,
            "use_cpu": not torch.cuda.is_available(),
            # trl defaults to bf16 autocast; on AVX2-only CPUs that falls back to a slow,
            # single-threaded GEMM (20x slower than float32 here).
            "bf16": False,
            "fp16": False,
            # trl enables checkpointing by default; it forces use_cache=False, which drops the
            # key/value prefix of prefix tuning, and it only costs time on small CPU models.
            "gradient_checkpointing": False,
            "report_to": [],
            "dataloader_num_workers": 0,
        }

    @property
    def staging(self) -> Path:
        """The adapter's folder in the registry's staging area, created empty on first use."""
        if self._staging is None:
            self._staging = self.registry.staging(self.args.name)
        return self._staging

    def save(self, model: PreTrainedModel | PeftModel, tokenizer: PreTrainedTokenizerBase) -> None:
        """Write the trained model (or its adapter weights) and the tokenizer into staging."""
        model.save_pretrained(self.staging)
        tokenizer.save_pretrained(self.staging)

    def plot(self, filename: str = "loss.png", keys: tuple[str, ...] = ("loss",)) -> Path | None:
        """Draw the logged ``keys`` against the step into staging; None when none was logged."""
        from training.tracking import plot_curves

        records = self.log.records if self.log else []
        return plot_curves(records, self.staging / filename, keys)

    def manifest(
        self,
        *,
        kind: str,
        method: str,
        metrics: dict[str, Any],
        parameters: tuple[int, int],
        base_model: str | None = None,
    ) -> Manifest:
        """What was trained, on what, with which settings and results.

        ``parameters`` is (trainable, total); ``base_model`` defaults to ``args.base_model``.
        """
        args = self.args
        return Manifest(
            name=args.name,
            kind=kind,
            method=method,
            base_model=args.base_model if base_model is None else base_model,
            dataset=str(args.dataset),
            dataset_sha256=file_sha256(Path(args.dataset)) if args.dataset else "",
            metrics=metrics,
            hyperparameters={k: v for k, v in asdict(args).items() if k not in NOT_HYPERPARAMETERS},
            trainable_parameters=parameters[0],
            total_parameters=parameters[1],
        )

    def commit(
        self,
        *,
        kind: str,
        method: str,
        metrics: dict[str, Any],
        parameters: tuple[int, int],
        base_model: str | None = None,
    ) -> Manifest:
        """Write the manifest (see ``manifest``) and move the staged adapter into the registry
        atomically; this ends the run. Returns the manifest.

        Raises RegistryError when the name was taken meanwhile and ``overwrite`` is off.
        """
        manifest = self.manifest(
            kind=kind, method=method, metrics=metrics, parameters=parameters, base_model=base_model
        )
        self.registry.commit(self.staging, manifest, overwrite=self.args.overwrite)
        self._staging = None
        return manifest
