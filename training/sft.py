"""Instruction tuning with trl's SFTTrainer for every method in ``training.methods``.

Conversations become prompt/completion pairs (the last assistant turn is the
completion), so the loss covers only the answer; the tokenizer's chat template formats
them, the same template the server uses at inference.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from training.config import SFTArgs
from training.data import load_instructions
from training.methods import SFT_METHODS
from training.registry import AdapterRegistry, Manifest
from training.tracking import MetricsLog, plot_curves, run_manifest, train_measured


def train_sft(args: SFTArgs, registry: AdapterRegistry, runs_dir: Path) -> Manifest:
    """Train, run the forgetting check, save into the registry, return the manifest.

    Dataset and name are validated before any model loads; nothing reaches the registry
    unless the whole run succeeds.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import SFTConfig, SFTTrainer

    method = SFT_METHODS[args.method]
    registry.check_free(args.name, args.overwrite)
    dataset_path = Path(args.dataset)
    conversations = load_instructions(dataset_path)
    torch.manual_seed(args.seed)

    tokenizer = AutoTokenizer.from_pretrained(args.base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    model = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=torch.float32)
    run_dir = runs_dir / args.name
    if not args.resume:
        shutil.rmtree(run_dir, ignore_errors=True)
    rows = [{"prompt": c[:-1], "completion": [c[-1]]} for c in conversations]
    config = SFTConfig(
        output_dir=str(run_dir / "checkpoints"),
        num_train_epochs=args.epochs,
        max_steps=args.max_steps,
        per_device_train_batch_size=args.batch_size,
        gradient_accumulation_steps=args.gradient_accumulation,
        learning_rate=args.learning_rate,
        lr_scheduler_type="linear",
        warmup_steps=0,
        logging_steps=args.logging_steps,
        save_steps=args.save_steps,
        save_total_limit=1,
        seed=args.seed,
        max_length=args.max_length,
        report_to=[],
        use_cpu=not torch.cuda.is_available(),
        dataloader_num_workers=0,
        disable_tqdm=False,
        # trl enables checkpointing by default; it forces use_cache=False, which drops the
        # key/value prefix of prefix tuning, and it only costs time on small CPU models.
        gradient_checkpointing=False,
        # trl defaults to bf16 autocast; on AVX2-only CPUs that falls back to a slow,
        # single-threaded GEMM (20x slower than float32 here).
        bf16=False,
        fp16=False,
    )
    log = MetricsLog(run_dir / "log.jsonl")
    trainer = SFTTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rows),
        processing_class=tokenizer,
        peft_config=method.peft_config(args) if method.peft_config else None,
        callbacks=[log],
    )
    resume = args.resume and any((run_dir / "checkpoints").glob("checkpoint-*"))
    run, parameters = train_measured(trainer, resume_from_checkpoint=True if resume else None)
    if not trainer.is_world_process_zero():  # under accelerate, one process writes the adapter
        return Manifest(
            name=args.name, kind=method.kind, method=args.method, base_model=args.base_model
        )

    staging = registry.staging(args.name)
    trainer.model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    plot = plot_curves(log.records, run_dir / "loss.png")
    if plot:
        shutil.copy(plot, staging / "loss.png")
    metrics = {
        **run,
        "loss_curve": [{"step": r["step"], "loss": r["loss"]} for r in log.records if "loss" in r],
    }
    if args.forgetting_check:
        from training.forgetting import forgetting_report

        metrics["forgetting"] = forgetting_report(
            trainer.model,
            tokenizer,
            args.base_model,
            task_file=Path(args.forgetting_task),
            rows=args.forgetting_rows,
        )
    manifest = run_manifest(
        args, kind=method.kind, method=args.method, metrics=metrics, parameters=parameters
    )
    registry.commit(staging, manifest, overwrite=args.overwrite)
    return manifest
