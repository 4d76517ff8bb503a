"""Reward models: train one on preference pairs, and score text with any reward source.

A reward adapter (kind ``reward``) is the base model with a scalar head, LoRA-tuned by
trl's RewardTrainer so the chosen answer scores above the rejected one. A classifier from
``ragtune train classify`` can serve as a reward too: its score is the log-odds of one
label (e.g. SST-2 "positive"), which is how the sentiment-steering demo works.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path

from training.config import RewardArgs
from training.preferences import load_preferences, render_pairs, split_pairs
from training.registry import AdapterRegistry, Manifest, RegistryError
from training.run import TrainingRun, load_tokenizer
from training.tracking import train_measured

Scorer = Callable[[list[str]], list[float]]
# render_pairs fits pairs into max_length; re-tokenising the cut text can add a few tokens,
# and trl silently drops rows over its limit, so its limit gets this margin.
SLACK = 16


def pair_trainer_settings(run: TrainingRun) -> dict:
    """trl config fields of the runs on preference pairs (reward model, DPO)."""
    return {
        **run.trainer_settings(),
        "save_strategy": "no",
        "max_length": run.args.max_length + SLACK,
    }


def train_reward(args: RewardArgs, registry: AdapterRegistry, runs_dir: Path) -> Manifest:
    """Train a reward adapter; report pairwise accuracy on the held-out pairs; register it.

    Raises RegistryError (name taken) or DatasetError (bad pairs) before any model loads.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    with TrainingRun(args, registry, runs_dir) as run:
        pairs, skipped = load_preferences(Path(args.dataset), args.skip_invalid)
        train_pairs, held_out = split_pairs(pairs, args.eval_fraction, args.seed)
        torch.manual_seed(args.seed)
        tokenizer = load_tokenizer(args.base_model)
        rendered = render_pairs(train_pairs, tokenizer, args.max_length)
        held_rendered = render_pairs(held_out, tokenizer, args.max_length)
        model = AutoModelForSequenceClassification.from_pretrained(
            args.base_model, num_labels=1, dtype=torch.float32, pad_token_id=tokenizer.pad_token_id
        )
        log = run.start_log()
        config = RewardConfig(
            **pair_trainer_settings(run), center_rewards_coefficient=args.center_rewards or None
        )
        trainer = RewardTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rendered.rows),
            processing_class=tokenizer,
            peft_config=args.lora_config("SEQ_CLS"),
            callbacks=[log],
        )
        measured, parameters = train_measured(trainer)
        model = trainer.model.eval()
        score = _sequence_scorer(model, tokenizer, args.max_length)
        accuracy = pairwise_accuracy(score, held_rendered.rows) if held_rendered.rows else None
        train_accuracy = pairwise_accuracy(score, rendered.rows[:200])
        run.save(model, tokenizer)
        run.plot("loss.png", keys=("loss", "accuracy"))
        metrics = {
            "heldout_pairwise_accuracy": accuracy,
            "heldout_pairs": len(held_out),
            "train_pairwise_accuracy": train_accuracy,
            "train_pairs": len(train_pairs),
            "skipped_pairs": len(skipped),
            "truncated_prompts": rendered.truncated + held_rendered.truncated,
            **measured,
            "loss_curve": log.loss_curve(),
        }
        return run.commit(kind="reward", method="reward", metrics=metrics, parameters=parameters)


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
                f"reward adapter {name!r} was trained on base model {manifest.base_model}, but the "
                f"policy's base model is {policy_base}; train a reward model on the policy's base"
            )
        import torch
        from peft import PeftModel
        from transformers import AutoModelForSequenceClassification
        from transformers.utils import logging as hf_logging

        tokenizer = load_tokenizer(str(folder))
        verbosity = hf_logging.get_verbosity()
        # the head is "newly initialized" only until the adapter loads it
        hf_logging.set_verbosity_error()
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
        f"adapter {name!r} is a {manifest.kind} adapter; a reward must be kind 'reward' "
        "or 'classifier'"
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
            f"classifier {manifest.name!r} has labels {sorted(labels)}; reward_label "
            f"{label!r} is not one"
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
