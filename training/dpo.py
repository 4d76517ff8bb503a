"""Direct preference optimisation (trl DPOTrainer) with a LoRA policy.

DPO needs no reward model: it raises the policy's likelihood of chosen over rejected
answers relative to the frozen base (the same network with the adapter switched off).
When ``reward`` names a reward source, the held-out prompts are answered by the base and
by the tuned policy and the reward source judges the win rate, the number
``docs/rlhf.md`` reports.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path

from training.config import DPOArgs
from training.preferences import load_preferences, render_pairs, split_pairs
from training.registry import AdapterRegistry, Manifest
from training.reward import Scorer, judge_text, load_reward, pair_trainer_settings
from training.rollout import generate_batched
from training.run import TrainingRun, load_tokenizer
from training.tracking import train_measured

CURVE_KEYS = ("loss", "rewards/accuracies", "rewards/margins")


def train_dpo(args: DPOArgs, registry: AdapterRegistry, runs_dir: Path) -> Manifest:
    """Train, judge the held-out prompts if a reward is given, register the LoRA adapter.

    Raises RegistryError (name taken, unknown reward) or DatasetError before training.
    """
    import torch
    from datasets import Dataset
    from transformers import AutoModelForCausalLM
    from trl import DPOConfig, DPOTrainer

    with TrainingRun(args, registry, runs_dir) as run:
        pairs, skipped = load_preferences(Path(args.dataset), args.skip_invalid)
        train_pairs, held_out = split_pairs(pairs, args.eval_fraction, args.seed)
        score = (
            load_reward(registry, args.reward, args.base_model, args.reward_label)
            if args.reward
            else None
        )
        reward_kind = registry.get(args.reward).kind if args.reward else ""
        torch.manual_seed(args.seed)
        tokenizer = load_tokenizer(args.base_model)
        rendered = render_pairs(train_pairs, tokenizer, args.max_length)
        model = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=torch.float32)
        log = run.start_log()
        config = DPOConfig(**pair_trainer_settings(run), beta=args.beta)
        trainer = DPOTrainer(
            model=model,
            args=config,
            train_dataset=Dataset.from_list(rendered.rows),
            processing_class=tokenizer,
            peft_config=args.lora_config("CAUSAL_LM"),
            callbacks=[log],
        )
        measured, parameters = train_measured(trainer)
        policy = trainer.model.eval()
        metrics = {
            "train_pairs": len(train_pairs),
            "heldout_pairs": len(held_out),
            "skipped_pairs": len(skipped),
            "truncated_prompts": rendered.truncated,
            **measured,
            "curve": log.curve(CURVE_KEYS),
        }
        if score is not None and held_out:
            prompts = [r["prompt"] for r in render_pairs(held_out, tokenizer, args.max_length).rows]
            judged = [
                judge_text(p.prompt, rendered, reward_kind)
                for p, rendered in zip(held_out, prompts)
            ]
            metrics["judged_by"] = args.reward
            metrics.update(win_rate(policy, tokenizer, prompts, judged, score, args))
        run.save(policy, tokenizer)
        run.plot("dpo.png", keys=CURVE_KEYS)
        return run.commit(kind="lora", method="dpo", metrics=metrics, parameters=parameters)


def win_rate(
    policy, tokenizer, prompts: list[str], scoring_prompts: list[str], score: Scorer, args
) -> dict:
    """Greedy answers of base and tuned policy per prompt; the reward source judges each pair.

    Ties count half. Also returns both mean rewards, so a judge that likes everything shows.
    """
    answers = {}
    for label, context in (("base", policy.disable_adapter()), ("tuned", nullcontext())):
        with context:
            answers[label] = generate_batched(
                policy, tokenizer, prompts, args.max_new_tokens, 0.0, args.seed, batch=8
            )
    rewards = {
        label: score([p + a for p, a in zip(scoring_prompts, texts)])
        for label, texts in answers.items()
    }
    wins = sum(
        1.0 if t > b else 0.5 if t == b else 0.0 for t, b in zip(rewards["tuned"], rewards["base"])
    )
    return {
        "win_rate_vs_base": round(wins / len(prompts), 4),
        "mean_reward_base": round(sum(rewards["base"]) / len(prompts), 4),
        "mean_reward_tuned": round(sum(rewards["tuned"]) / len(prompts), 4),
        "judged_prompts": len(prompts),
    }
