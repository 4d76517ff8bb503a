"""A compact PPO loop for language models: LoRA policy + value head, GAE, clipping, KL to the base.

trl 1.16 no longer ships PPO, and its last PPO (trl 1.12 ``trl.experimental.ppo``) would
pin an older trl for every other trainer, so the algorithm lives here, in one module,
following the recipe of Ziegler et al. (2019) / Stiennon et al. (2020) as trl implemented it:

1. roll out: sample a continuation for a batch of prompts from the policy;
2. score: the reward source scores prompt + continuation (one number per sample);
3. per-token reward: ``-kl_coef * (log pi - log pi_ref)`` at every token, plus the score
   at the last one; the reference is the same network with the LoRA adapter switched off,
   so no second copy of the model is held;
4. advantages by GAE from a value head on the policy's last hidden state;
5. ``ppo_epochs`` passes of minibatch updates with the clipped policy objective and a
   clipped value loss.
"""

from __future__ import annotations

import math
import random
import time
from contextlib import nullcontext
from pathlib import Path

from training.config import ConfigError, PPOArgs
from training.registry import AdapterRegistry, Manifest
from training.reward import Scorer, judge_text, load_reward
from training.rollout import Rollout, generate, load_prompts
from training.run import TrainingRun, load_tokenizer
from training.tracking import count_parameters, max_change, peak_memory_mb, snapshot_trainable

LOGGED = ("reward", "kl", "loss", "policy_loss", "value_loss", "generate_s", "score_s", "update_s")


def masked_mean(values, mask):
    """Mean of ``values`` where ``mask`` is 1."""
    return (values * mask).sum() / mask.sum().clamp(min=1)


def masked_whiten(values, mask):
    """Zero mean, unit variance over the masked entries."""
    mean = masked_mean(values, mask)
    variance = masked_mean((values - mean) ** 2, mask)
    return (values - mean) * (variance + 1e-8).rsqrt() * mask


def gae(rewards, values, mask, gamma: float, lam: float):
    """(advantages, returns) by generalised advantage estimation over response tokens."""
    import torch

    values, rewards = values * mask, rewards * mask
    advantages = torch.zeros_like(rewards)
    running = torch.zeros(rewards.shape[0])
    for t in reversed(range(rewards.shape[1])):
        next_value = values[:, t + 1] if t + 1 < rewards.shape[1] else 0.0
        delta = rewards[:, t] + gamma * next_value - values[:, t]
        running = (delta + gamma * lam * running) * mask[:, t]
        advantages[:, t] = running
    return advantages, advantages + values


class PolicyWithValue:
    """The LoRA policy, its value head, and scoring of responses under policy and reference."""

    def __init__(self, model, temperature: float) -> None:
        import torch

        self.model = model
        self.temperature = temperature
        hidden = model.config.get_text_config().hidden_size
        self.value_head = torch.nn.Linear(hidden, 1)
        torch.nn.init.zeros_(self.value_head.weight)
        torch.nn.init.zeros_(self.value_head.bias)

    def parameters(self):
        """Everything the optimiser updates: the LoRA weights and the value head."""
        return [p for p in self.model.parameters() if p.requires_grad] + list(
            self.value_head.parameters()
        )

    def forward(self, rollout: Rollout, rows=slice(None), reference: bool = False):
        """(log-probabilities of the response tokens, values) for the selected rows."""
        import torch

        query, response = rollout.query_ids[rows], rollout.response_ids[rows]
        mask = torch.cat([rollout.query_mask[rows], rollout.response_mask[rows]], 1)
        positions = (mask.cumsum(1) - 1).clamp(
            min=0
        )  # left-padded prompts, as generate() numbers them
        adapter_off = self.model.disable_adapter() if reference else nullcontext()
        with adapter_off:
            output = self.model(
                input_ids=torch.cat([query, response], 1),
                attention_mask=mask,
                position_ids=positions,
                output_hidden_states=not reference,
            )
        start = query.shape[1] - 1
        logits = output.logits[:, start:-1, :] / self.temperature
        logprobs = (
            torch.log_softmax(logits.float(), -1).gather(-1, response.unsqueeze(-1)).squeeze(-1)
        )
        if reference:
            return logprobs, None
        values = self.value_head(output.hidden_states[-1][:, start:-1, :]).squeeze(-1)
        return logprobs, values


def ppo_step(
    policy: PolicyWithValue, optimizer, rollout: Rollout, scores, args: PPOArgs
) -> dict[str, float]:
    """One PPO iteration on one batch of rollouts; returns the metrics to log."""
    import torch

    mask = rollout.response_mask.float()
    with torch.no_grad():
        old_logprobs, old_values = policy.forward(rollout)
        ref_logprobs, _ = policy.forward(rollout, reference=True)
        kl = (old_logprobs - ref_logprobs) * mask
        rewards = -args.kl_coef * kl
        last = mask.sum(1).long().clamp(min=1) - 1
        rewards[torch.arange(len(last)), last] += scores
        advantages, returns = gae(rewards, old_values, mask, args.gamma, args.lam)
        advantages = masked_whiten(advantages, mask)

    stats: dict[str, list[float]] = {
        "policy_loss": [],
        "value_loss": [],
        "loss": [],
        "clipfrac": [],
    }
    batch = rollout.response_ids.shape[0]
    for _ in range(args.ppo_epochs):
        order = torch.randperm(batch)
        for start in range(0, batch, args.mini_batch_size):
            rows = order[start : start + args.mini_batch_size]
            m = mask[rows]
            logprobs, values = policy.forward(rollout, rows)
            ratio = torch.exp(logprobs - old_logprobs[rows])
            adv = advantages[rows]
            clipped_ratio = ratio.clamp(1 - args.clip_range, 1 + args.clip_range)
            policy_loss = masked_mean(torch.max(-adv * ratio, -adv * clipped_ratio), m)
            old_v, ret = old_values[rows], returns[rows]
            clipped_values = old_v + (values - old_v).clamp(
                -args.value_clip_range, args.value_clip_range
            )
            value_loss = 0.5 * masked_mean(
                torch.max((values - ret) ** 2, (clipped_values - ret) ** 2), m
            )
            loss = policy_loss + args.value_coef * value_loss
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            optimizer.step()
            stats["policy_loss"].append(policy_loss.item())
            stats["value_loss"].append(value_loss.item())
            stats["loss"].append(loss.item())
            stats["clipfrac"].append(
                masked_mean(((ratio - 1).abs() > args.clip_range).float(), m).item()
            )
    metrics = {k: sum(v) / len(v) for k, v in stats.items()}
    metrics.update(
        reward=scores.mean().item(),
        reward_std=scores.std().item() if batch > 1 else 0.0,
        kl=kl.sum(1).mean().item(),
        response_tokens=mask.sum(1).mean().item(),
    )
    return metrics


def evaluate_policy(
    policy: PolicyWithValue,
    tokenizer,
    prompts: list[str],
    scoring_prompts: list[str],
    score: Scorer,
    args: PPOArgs,
    adapter: bool,
    batch: int = 16,
) -> dict[str, float]:
    """Mean reward of one seeded continuation per held-out prompt, and the mean KL from the base."""
    import torch

    rewards, kls = [], []
    policy.model.eval()
    for start in range(0, len(prompts), batch):
        chunk = prompts[start : start + batch]
        with (
            nullcontext() if adapter else policy.model.disable_adapter()
        ):  # adapter=False: sample the base itself
            rollout = generate(
                policy.model,
                tokenizer,
                chunk,
                args.max_new_tokens,
                args.temperature,
                args.seed + start,
            )
            with torch.no_grad():
                logprobs, _ = policy.forward(rollout)
        rewards += score(
            [p + t for p, t in zip(scoring_prompts[start : start + batch], rollout.texts)]
        )
        with torch.no_grad():
            ref, _ = policy.forward(rollout, reference=True)
        kls += ((logprobs - ref) * rollout.response_mask).sum(1).tolist()
    return {
        "mean_reward": round(sum(rewards) / len(rewards), 4),
        "kl": round(sum(kls) / len(kls), 4),
        "samples": len(prompts),
    }


def train_ppo(args: PPOArgs, registry: AdapterRegistry, runs_dir: Path) -> Manifest:
    """PPO-tune a LoRA policy against ``args.reward``; evaluate before/after; register it.

    Raises RegistryError (name taken, unknown or mismatched reward), ConfigError (no
    reward) or DatasetError (no prompts) before training.
    """
    with TrainingRun(args, registry, runs_dir) as run:
        if not args.reward:
            raise ConfigError(
                "reward is required: a 'reward' adapter or a classifier in the registry"
            )
        reward_kind = registry.get(args.reward).kind
        prompts = load_prompts(
            Path(args.dataset),
            args.prompt_column,
            args.prompt_words,
            args.min_prompt_words,
            args.prompt_rows,
            args.seed,
        )
        eval_raw = load_prompts(
            Path(args.eval_dataset or args.dataset),
            args.prompt_column,
            args.prompt_words,
            args.min_prompt_words,
            args.eval_prompts,
            args.seed + 1,
        )
        score = load_reward(
            registry, args.reward, policy_base=args.base_model, label=args.reward_label
        )
        return _train(run, prompts, eval_raw, score, reward_kind)


def _train(
    run: TrainingRun, prompts: list[str], eval_raw: list[str], score: Scorer, reward_kind: str
) -> Manifest:
    """The PPO loop of ``train_ppo``, once its inputs are checked; commits the run."""
    import torch
    from peft import get_peft_model
    from tqdm.auto import tqdm
    from transformers import AutoModelForCausalLM

    args: PPOArgs = run.args
    tokenizer = load_tokenizer(args.base_model)

    def as_model_input(raw: list[str]) -> list[str]:
        if not args.chat_template:
            return raw
        return [
            tokenizer.apply_chat_template(
                [{"role": "user", "content": p}], tokenize=False, add_generation_prompt=True
            )
            for p in raw
        ]

    def scoring_text(raw: list[str], rendered: list[str]) -> list[str]:
        return [judge_text(r, m, reward_kind) for r, m in zip(raw, rendered)]

    torch.manual_seed(args.seed)
    base = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=torch.float32)
    policy = PolicyWithValue(get_peft_model(base, args.lora_config("CAUSAL_LM")), args.temperature)
    trainable, total = count_parameters(policy.model)
    before_weights = snapshot_trainable(policy.model)
    eval_inputs = as_model_input(eval_raw)
    before = evaluate_policy(
        policy, tokenizer, eval_inputs, scoring_text(eval_raw, eval_inputs), score, args, False
    )

    steps = (
        args.max_steps
        if args.max_steps > 0
        else max(1, math.ceil(args.epochs * len(prompts) / args.batch_size))
    )
    optimizer = torch.optim.AdamW(policy.parameters(), lr=args.learning_rate)
    log = run.start_log()
    order = random.Random(args.seed).sample(prompts, len(prompts))
    started = time.monotonic()
    for step in tqdm(range(1, steps + 1), desc="PPO steps"):
        offset = (step - 1) * args.batch_size
        raw = [order[(offset + i) % len(order)] for i in range(args.batch_size)]
        inputs = as_model_input(raw)
        policy.model.eval()
        phase = time.monotonic()
        rollout = generate(policy.model, tokenizer, inputs, args.max_new_tokens, args.temperature)
        generate_s, phase = time.monotonic() - phase, time.monotonic()
        scores = torch.tensor(
            score([p + t for p, t in zip(scoring_text(raw, inputs), rollout.texts)])
        )
        if args.whiten_scores and len(scores) > 1:
            scores = (scores - scores.mean()) / (scores.std() + 1e-8)
        score_s, phase = time.monotonic() - phase, time.monotonic()
        policy.model.train()
        metrics = ppo_step(policy, optimizer, rollout, scores, args)
        metrics.update(generate_s=generate_s, score_s=score_s, update_s=time.monotonic() - phase)
        if step % args.logging_steps == 0 or step in (1, steps):
            log.add(step, steps, {k: round(v, 5) for k, v in metrics.items()})
    train_seconds = time.monotonic() - started

    after = evaluate_policy(
        policy, tokenizer, eval_inputs, scoring_text(eval_raw, eval_inputs), score, args, True
    )
    run.save(policy.model, tokenizer)
    run.plot("ppo.png", keys=("reward", "kl", "loss"))
    metrics = {
        "reward": args.reward,
        "heldout_mean_reward_before": before["mean_reward"],
        "heldout_mean_reward_after": after["mean_reward"],
        "heldout_kl_from_base": after["kl"],
        "heldout_prompts": len(eval_raw),
        "steps": steps,
        "train_seconds": round(train_seconds, 1),
        "seconds_per_step": round(train_seconds / steps, 2),
        "peak_memory_mb": peak_memory_mb(),
        "max_weight_change": max_change(policy.model, before_weights),
        "curve": log.curve(LOGGED),
    }
    return run.commit(kind="lora", method="ppo", metrics=metrics, parameters=(trainable, total))
