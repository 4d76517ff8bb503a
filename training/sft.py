"""Instruction tuning with trl's SFTTrainer for every method in ``training.methods``.

Conversations become prompt/completion pairs (the last assistant turn is the
completion), so the loss covers only the answer; the tokenizer's chat template formats
them, the same template the server uses at inference.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from training.config import SFTArgs
from training.methods import SFT_METHODS
from training.mixture import training_rows
from training.registry import AdapterRegistry, Manifest
from training.run import TrainingRun, load_tokenizer
from training.tracking import train_measured


def train_sft(
    args: SFTArgs,
    registry: AdapterRegistry,
    runs_dir: Path,
    *,
    extra_metrics: dict[str, Any] | None = None,
) -> Manifest:
    """Train, run the forgetting check, save into the registry, return the manifest.

    Dataset and name are validated before any model loads; nothing reaches the registry
    unless the whole run succeeds. ``extra_metrics`` is recorded in the manifest's metrics
    as given (RAFT records how its data was built under ``raft``). Raises RegistryError
    (name taken) or DatasetError.
    """
    import torch
    from transformers import AutoModelForCausalLM
    from trl import SFTConfig, SFTTrainer

    method = SFT_METHODS[args.method]
    with TrainingRun(args, registry, runs_dir) as run:
        rows, mixture = training_rows(args.dataset, args.mixture, args.replay, args.seed)
        # before the model loads and the run folder is reset: top-blocks refuses more
        # blocks than the base model has (ConfigError)
        peft_config = method.peft_config(args) if method.peft_config else None
        torch.manual_seed(args.seed)
        tokenizer = load_tokenizer(args.base_model)
        model = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=torch.float32)
        log = run.start_log(resume=args.resume)
        config = SFTConfig(
            **run.trainer_settings(),
            max_length=args.max_length,
            warmup_steps=0,
            save_steps=args.save_steps,
            save_total_limit=1,
        )
        trainer = SFTTrainer(
            model=model,
            args=config,
            train_dataset=rows,
            processing_class=tokenizer,
            peft_config=peft_config,
            callbacks=[log],
        )
        resume = args.resume and run.has_checkpoint()
        measured, parameters = train_measured(
            trainer, resume_from_checkpoint=True if resume else None
        )
        if not trainer.is_world_process_zero():  # under accelerate, one process writes the adapter
            return Manifest(
                name=args.name, kind=method.kind, method=args.method, base_model=args.base_model
            )

        run.save(trainer.model, tokenizer)
        if run.plot("loss.png"):
            shutil.copy(run.staging / "loss.png", run.folder / "loss.png")
        metrics = {**measured, "loss_curve": log.loss_curve(), **(extra_metrics or {})}
        if mixture:
            metrics["mixture"] = mixture
        if args.forgetting_check:
            from training.forgetting import forgetting_report

            metrics["forgetting"] = forgetting_report(
                trainer.model,
                tokenizer,
                args.base_model,
                task_file=Path(args.forgetting_task),
                rows=args.forgetting_rows,
            )
        return run.commit(
            kind=method.kind, method=args.method, metrics=metrics, parameters=parameters
        )
