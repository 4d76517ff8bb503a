"""Reward models: train one on preference pairs, and score text with any reward source.

A reward adapter (kind ``reward``) is the base model with a scalar head, LoRA-tuned by
trl's RewardTrainer so the chosen answer scores above the rejected one. A classifier from
``ragtune train classify`` can serve as a reward too: its score is the log-odds of one
label (e.g. SST-2 "positive"), which is how the sentiment-steering demo works.
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Callable
from pathlib import Path

from training.config import RewardArgs
from training.preferences import load_preferences, render_pairs, split_pairs
from training.registry import AdapterRegistry, Manifest, RegistryError
from training.tracking import MetricsLog, plot_curves, run_manifest, train_measured

Scorer = Callable[[list[str]], list[float]]
# render_pairs fits pairs into max_length; re-tokenising the cut text can add a few tokens,
# and trl silently drops rows over its limit, so its limit gets this margin.
SLACK = 16


def lora_config(args, task_type: str):
    """The LoRA config shared by reward, DPO and PPO runs."""
    from peft import LoraConfig

    return LoraConfig(
        task_type=task_type,
        r=args.lora_r,
        lora_alpha=args.lora_alpha,
        lora_dropout=args.lora_dropout,
        target_modules=list(args.target_modules),
    )


def trainer_settings(args, run_dir: Path) -> dict:
    """trl config fields shared by the reward and DPO runs, with what CPUs need (see training/sft.py)."""
    import torch

    return {
        "output_dir": str(run_dir / "checkpoints"),
        "num_train_epochs": args.epochs,
        "max_steps": args.max_steps,
        "per_device_train_batch_size": args.batch_size,
        "gradient_accumulation_steps": args.gradient_accumulation,
        "learning_rate": args.learning_rate,
        "lr_scheduler_type": "linear",
        "logging_steps": args.logging_steps,
        "save_strategy": "no",
        "seed": args.seed,
        "max_length": args.max_length + SLACK,
        "disable_tqdm": False,
        "use_cpu": not torch.cuda.is_available(),
        "bf16": False,
        "fp16": False,
        "gradient_checkpointing": False,
        "report_to": [],
        "dataloader_num_workers": 0,
    }


def load_tokenizer(base_model: str):
    """The base model's tokenizer with a pad token."""
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(base_model)
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def train_reward(args: RewardArgs, registry: AdapterRegistry, runs_dir: Path) -> Manifest:
    """Train a reward adapter; report pairwise accuracy on the held-out pairs; register it."""
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    registry.check_free(args.name, args.overwrite)
    pairs, skipped = load_preferences(Path(args.dataset), args.skip_invalid)
    train_pairs, held_out = split_pairs(pairs, args.eval_fraction, args.seed)
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.base_model)
    rendered = render_pairs(train_pairs, tokenizer, args.max_length)
    held_rendered = render_pairs(held_out, tokenizer, args.max_length)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.base_model, num_labels=1, dtype=torch.float32, pad_token_id=tokenizer.pad_token_id
    )
    run_dir = runs_dir / args.name
    shutil.rmtree(run_dir, ignore_errors=True)
    config = RewardConfig(
        **trainer_settings(args, run_dir), center_rewards_coefficient=args.center_rewards or None
    )
    log = MetricsLog(run_dir / "log.jsonl")
    trainer = RewardTrainer(
        model=model,
        args=config,
        train_dataset=Dataset.from_list(rendered.rows),
        processing_class=tokenizer,
        peft_config=lora_config(args, "SEQ_CLS"),
        callbacks=[log],
    )
    run, parameters = train_measured(trainer)
    model = trainer.model.eval()
    score = _sequence_scorer(model, tokenizer, args.max_length)
    accuracy = pairwise_accuracy(score, held_rendered.rows) if held_rendered.rows else None
    train_accuracy = pairwise_accuracy(score, rendered.rows[:200])
    staging = registry.staging(args.name)
    model.save_pretrained(staging)
    tokenizer.save_pretrained(staging)
    plot_curves(log.records, staging / "loss.png", keys=("loss", "accuracy"))
    metrics = {
        "heldout_pairwise_accuracy": accuracy,
        "heldout_pairs": len(held_out),
        "train_pairwise_accuracy": train_accuracy,
        "train_pairs": len(train_pairs),
        "skipped_pairs": len(skipped),
        "truncated_prompts": rendered.truncated + held_rendered.truncated,
        **run,
        "loss_curve": [{"step": r["step"], "loss": r["loss"]} for r in log.records if "loss" in r],
    }
    manifest = run_manifest(
        args, kind="reward", method="reward", metrics=metrics, parameters=parameters
    )
    registry.commit(staging, manifest, overwrite=args.overwrite)
    return manifest


def pairwise_accuracy(score: Scorer, rows: list[dict[str, str]]) -> float:
    """Share of pairs where the chosen answer outscores the rejected one."""
    chosen = score([r["prompt"] + r["chosen"] for r in rows])
    rejected = score([r["prompt"] + r["rejected"] for r in rows])
    return round(sum(c > r for c, r in zip(chosen, rejected)) / len(rows), 4)


def _sequence_scorer(model, tokenizer, max_length: int, batch: int = 8) -> Scorer:
    """Scalar scores of whole texts (prompt + answer), formatted as RewardTrainer trained them."""
    import torch

    eos = tokenizer.eos_token or ""

    def score(texts: list[str]) -> list[float]:
        scores = []
        with torch.no_grad():
            for start in range(0, len(texts), batch):
                chunk = [t if t.endswith(eos) else t + eos for t in texts[start : start + batch]]
                tokenizer.truncation_side = "left"  # keep the answer, as render_pairs does
                enc = tokenizer(
                    chunk,
                    padding=True,
                    truncation=True,
                    max_length=max_length + SLACK,
                    add_special_tokens=False,
                    return_tensors="pt",
                )
                scores += model(**enc).logits[:, 0].float().tolist()
        return scores

    return score


def load_reward(
    registry: AdapterRegistry, name: str, policy_base: str | None = None, label: str = "1"
) -> Scorer:
    """A scorer for reward source ``name``: a ``reward`` adapter or a ``classifier``.

    A reward adapter must share the policy's base model (its head was trained on that
    model's representations and tokenisation of the prompts); a mismatch is refused.
    """
    manifest = registry.get(name)
    folder = registry.path(name)
    if manifest.kind == "reward":
        if policy_base is not None and Path(manifest.base_model) != Path(policy_base):
            raise RegistryError(
                f"reward adapter {name!r} was trained on base model {manifest.base_model}, but the policy's "
                f"base model is {policy_base}; train a reward model on the policy's base"
            )
        import torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        tokenizer = load_tokenizer(str(folder))
        verbosity = hf_logging.get_verbosity()
        hf_logging.set_verbosity_error()  # the head is "newly initialized" only until the adapter loads it
        try:
            base = AutoModelForSequenceClassification.from_pretrained(
                manifest.base_model,
                num_labels=1,
                dtype=torch.float32,
                pad_token_id=tokenizer.pad_token_id,
            )
        finally:
            hf_logging.set_verbosity(verbosity)
        model = PeftModel.from_pretrained(base, folder).eval()
        return _sequence_scorer(
            model, tokenizer, int(manifest.hyperparameters.get("max_length", 512))
        )
    if manifest.kind == "classifier":
        return _classifier_scorer(manifest, folder, label)
    raise RegistryError(
        f"adapter {name!r} is a {manifest.kind} adapter; a reward must be kind 'reward' or 'classifier'"
    )


def score_file(registry: AdapterRegistry, name: str, path: Path, label: str = "1") -> list[dict]:
    """Score every answer in a JSONL file with reward source ``name``.

    Lines hold ``prompt`` (text or messages) and ``response`` (or ``answer``/``completion``),
    or a ``chosen``/``rejected`` pair, which gets both scores and whether the order agrees.
    """
    from training.data import DatasetError, read_jsonl
    from training.preferences import render_prompt

    manifest = registry.get(name)
    score = load_reward(registry, name, label=label)
    tokenizer = load_tokenizer(str(registry.path(name))) if manifest.kind == "reward" else None
    records, texts = [], []
    for number, record in read_jsonl(path):
        answers = {
            k: record[k]
            for k in ("response", "answer", "completion", "chosen", "rejected")
            if k in record
        }
        if "prompt" not in record or not answers:
            raise DatasetError(
                f"{path}, line {number}: expected 'prompt' and 'response' (or 'chosen'/'rejected')"
            )
        prompt = record["prompt"]
        rendered = (
            render_prompt(prompt, tokenizer)
            if tokenizer
            else (
                prompt
                if isinstance(prompt, str)
                else "\n\n".join(m["content"] for m in prompt) + "\n\n"
            )
        )
        judged = judge_text(prompt, rendered, manifest.kind)
        records.append({"line": number, "answers": list(answers)})
        texts += [judged + str(a) for a in answers.values()]
    scores = iter(score(texts))
    results = []
    for record in records:
        row = {
            "line": record["line"],
            **{f"{k}_score": round(next(scores), 4) for k in record["answers"]},
        }
        if "chosen_score" in row and "rejected_score" in row:
            row["agrees"] = row["chosen_score"] > row["rejected_score"]
        results.append(row)
    return results


def judge_text(raw_prompt, rendered_prompt: str, reward_kind: str) -> str:
    """The prompt text a reward source should see in front of an answer.

    A reward model was trained on rendered prompts (chat template included); a classifier
    was trained on plain text, so it sees the plain prompt where there is one.
    """
    if reward_kind == "reward" or not isinstance(raw_prompt, str):
        return rendered_prompt
    return raw_prompt


def _classifier_scorer(manifest: Manifest, folder: Path, label: str) -> Scorer:
    """Log-odds of ``label`` under a stored classifier (bounded to +-10)."""
    from training.classify import load_classifier

    predict = load_classifier(manifest, folder)
    labels = {str(x) for x in _labels(folder)}
    if str(label) not in labels:
        raise RegistryError(
            f"classifier {manifest.name!r} has labels {sorted(labels)}; reward_label {label!r} is not one"
        )

    def score(texts: list[str]) -> list[float]:
        scores = []
        for predicted, probability in predict(texts):
            p = probability if str(predicted) == str(label) else 1 - probability
            p = min(max(p, 1e-5), 1 - 1e-5)
            scores.append(math.log(p / (1 - p)))
        return scores

    return score


def _labels(folder: Path) -> list:
    import json

    return json.loads((folder / "labels.json").read_text())
