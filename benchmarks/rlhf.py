"""The RLHF numbers of docs/rlhf.md, produced end to end from the bundled configs.

1. sentiment steering: the SST-2 classifier (``sst2-features``) is the reward; PPO from
   ``configs/train/ppo_sentiment.yaml``; DPO on base-model pairs judged by the same
   classifier (``ragtune prefs sample`` + ``configs/train/dpo_sentiment.yaml``); base, PPO
   and DPO policies then continue the same 64 held-out dev-set openings with the same seed,
   and the classifier scores them (mean log-odds of "positive") with the KL from the base;
2. grounded answers: a reward model on the bundled preference set (held-out pairwise
   accuracy) and a DPO adapter judged by it against the base on the held-out prompts.

Every training step runs through the ``ragtune`` CLI exactly as a user would. Run:
``.venv/bin/python -m benchmarks.rlhf`` (about an hour on 2 CPU cores); ``--reuse`` keeps
adapters that already exist.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "benchmarks/results/rlhf.json"
RAGTUNE = str(Path(sys.executable).parent / "ragtune")
SST2_PAIRS = ".ragtune/prefs/sst2-pairs.jsonl"


def ragtune(*args: str) -> dict:
    """Run a ragtune command with --json; its parsed output."""
    started = time.monotonic()
    print("$ ragtune", " ".join(args), file=sys.stderr, flush=True)
    result = subprocess.run(
        [RAGTUNE, *args, "--json"], cwd=REPO, capture_output=True, text=True, check=False
    )
    if result.returncode != 0:
        raise SystemExit(f"ragtune {' '.join(args)} failed:\n{result.stderr[-3000:]}")
    print(f"  done in {time.monotonic() - started:.0f} s", file=sys.stderr, flush=True)
    return json.loads(result.stdout)


def train(kind: str, config: str, name: str, reuse: bool, registry) -> dict:
    """Train from a bundled config unless ``reuse`` and the adapter exists; its manifest."""
    if not (reuse and registry.exists(name)):
        ragtune("train", kind, "--config", config, "--overwrite")
    return registry.get(name).to_dict()


def sentiment_comparison(registry, settings) -> dict:
    """Base, PPO and DPO continuing the same held-out openings, judged by the SST-2 reward."""
    import torch
    from transformers import AutoModelForCausalLM

    from app.cli.common import resolve_base_model
    from training.config import PPOArgs, load_args
    from training.peft_methods import load_peft_model
    from training.ppo import PolicyWithValue, evaluate_policy
    from training.reward import load_reward, load_tokenizer
    from training.rollout import load_prompts

    args = load_args(PPOArgs, REPO / "configs/train/ppo_sentiment.yaml", {})
    args.base_model = resolve_base_model(settings, args.base_model)
    prompts = load_prompts(
        REPO / args.eval_dataset,
        args.prompt_column,
        args.prompt_words,
        args.min_prompt_words,
        args.eval_prompts,
        args.seed + 1,
    )  # same held-out openings as train_ppo
    score = load_reward(registry, args.reward, args.base_model, args.reward_label)
    tokenizer = load_tokenizer(args.base_model)
    rows = {}
    for name in ("sst2-ppo", "sst2-dpo"):
        base = AutoModelForCausalLM.from_pretrained(args.base_model, dtype=torch.float32)
        policy = PolicyWithValue(load_peft_model(base, registry.path(name)), args.temperature)
        if "base" not in rows:
            rows["base"] = evaluate_policy(
                policy, tokenizer, prompts, prompts, score, args, adapter=False
            )
        rows[name] = evaluate_policy(policy, tokenizer, prompts, prompts, score, args, adapter=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--reuse", action="store_true", help="Keep adapters that already exist.")
    options = parser.parse_args()
    os.chdir(REPO)
    from app.components import build_registry
    from app.settings import load_settings

    settings = load_settings()
    registry = build_registry(settings)
    started = time.monotonic()
    results: dict = {
        "machine": {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine()}
    }

    train("classify", "configs/train/classify_features.yaml", "sst2-features", True, registry)
    ppo = train("ppo", "configs/train/ppo_sentiment.yaml", "sst2-ppo", options.reuse, registry)
    if not (options.reuse and Path(SST2_PAIRS).exists()):
        sampled = ragtune(
            "prefs",
            "sample",
            "--reward",
            "sst2-features",
            "--prompts",
            "../shared/data/sst2/train.tsv",
            "--prompt-words",
            "4",
            "--min-prompt-words",
            "8",
            "--rows",
            "384",
            "--output",
            SST2_PAIRS,
        )
        results["sst2_sampled_pairs"] = sampled
    dpo = train("dpo", "configs/train/dpo_sentiment.yaml", "sst2-dpo", options.reuse, registry)
    results["sentiment"] = {
        "ppo": {
            k: ppo["metrics"][k]
            for k in (
                "heldout_mean_reward_before",
                "heldout_mean_reward_after",
                "heldout_kl_from_base",
                "steps",
                "seconds_per_step",
                "peak_memory_mb",
                "curve",
            )
        },
        "dpo": {
            k: dpo["metrics"].get(k)
            for k in ("train_pairs", "steps", "seconds_per_step", "peak_memory_mb")
        },
        "same_prompts": sentiment_comparison(registry, settings),
    }

    reward = train(
        "reward", "configs/train/reward_grounded.yaml", "grounded-reward", options.reuse, registry
    )
    grounded_dpo = train(
        "dpo", "configs/train/dpo_grounded.yaml", "grounded-dpo", options.reuse, registry
    )
    results["grounded"] = {
        "reward": {
            k: reward["metrics"][k]
            for k in (
                "heldout_pairwise_accuracy",
                "heldout_pairs",
                "train_pairwise_accuracy",
                "train_pairs",
                "truncated_prompts",
                "steps",
                "seconds_per_step",
                "peak_memory_mb",
            )
        },
        "dpo": {
            k: grounded_dpo["metrics"].get(k)
            for k in (
                "win_rate_vs_base",
                "mean_reward_base",
                "mean_reward_tuned",
                "judged_prompts",
                "steps",
                "seconds_per_step",
                "peak_memory_mb",
            )
        },
    }
    results["total_minutes"] = round((time.monotonic() - started) / 60, 1)
    results["reused_adapters"] = options.reuse
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2))
    from benchmarks.report import render

    render()
    print(json.dumps({k: v for k, v in results.items() if k != "sentiment"}, indent=2))


def rlhf_section(results: dict) -> str:
    """Markdown tables for benchmarks/results/rlhf.json."""
    s, g = results["sentiment"], results["grounded"]
    same = s["same_prompts"]
    lines = [
        f"Machine: {results['machine']['cpus']} CPUs ({results['machine']['processor']}). "
        f"Reproduce: `.venv/bin/python -m benchmarks.rlhf` (about an hour from scratch; "
        + (
            "this rendering reused the adapters already trained and re-ran the comparisons"
            if results.get("reused_adapters")
            else f"{results['total_minutes']} min in this run"
        )
        + ").",
        "",
        (
            f'**Sentiment steering** (reward: log-odds of "positive" from `sst2-features`; '
            f"{same['base']['samples']} held-out SST-2 dev openings, one seeded sample each, "
            "24 new tokens):"
        ),
        "",
        "| policy | mean reward | KL from base (nats/sample) |",
        "| --- | --- | --- |",
    ]
    for name, row in same.items():
        lines.append(f"| {name} | {row['mean_reward']:.3f} | {row['kl']:.3f} |")
    p = s["ppo"]
    lines += [
        "",
        (
            f"PPO ({p['steps']} steps of 16 rollouts): held-out mean reward "
            f"{p['heldout_mean_reward_before']:.3f} before, {p['heldout_mean_reward_after']:.3f} "
            f"after, KL {p['heldout_kl_from_base']:.3f}; {p['seconds_per_step']} s/step, peak "
            f"memory {p['peak_memory_mb']:.0f} MB. DPO: {s['dpo']['train_pairs']} sampled pairs, "
            f"{s['dpo']['steps']} steps, {s['dpo']['seconds_per_step']} s/step, peak "
            f"{s['dpo']['peak_memory_mb']:.0f} MB."
        ),
        "",
        (
            "![PPO curves](../.ragtune/adapters/sst2-ppo/ppo.png) (written next to the adapter; "
            "the per-step log is `.ragtune/runs/sst2-ppo/log.jsonl`)"
        ),
        "",
        "| PPO step | mean reward | KL | loss |",
        "| --- | --- | --- | --- |",
    ]
    lines += [
        f"| {r['step']} | {r['reward']:.3f} | {r['kl']:.3f} | {r['loss']:.4f} |" for r in p["curve"]
    ]
    r, d = g["reward"], g["dpo"]
    lines += [
        "",
        "**Grounded answers** (`training/datasets/grounded_preferences.jsonl`, 20% held out):",
        "",
        "| measure | value |",
        "| --- | --- |",
        (
            f"| reward model held-out pairwise accuracy | {r['heldout_pairwise_accuracy']:.3f} "
            f"({r['heldout_pairs']} pairs) |"
        ),
        (
            f"| reward model training pairwise accuracy | {r['train_pairwise_accuracy']:.3f} "
            f"({r['train_pairs']} pairs) |"
        ),
        (
            f"| DPO win rate over base, judged by the reward model | {d['win_rate_vs_base']:.3f} "
            f"({d['judged_prompts']} held-out prompts, greedy answers) |"
        ),
        f"| mean reward base / DPO | {d['mean_reward_base']:.3f} / {d['mean_reward_tuned']:.3f} |",
        f"| reward model: s/step, peak MB | {r['seconds_per_step']}, {r['peak_memory_mb']:.0f} |",
        f"| DPO: s/step, peak MB | {d['seconds_per_step']}, {d['peak_memory_mb']:.0f} |",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
