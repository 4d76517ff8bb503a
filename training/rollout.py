"""Prompts in, sampled continuations out: what PPO, DPO's win rate and pair sampling share.

Generation runs in-process with transformers (the policy changes every PPO step, so a
separate vLLM engine would need a weight reload per step; on CPU that costs more than it
saves for a 135M model).
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path

from training.data import DatasetError, read_jsonl
from training.reward import Scorer


def load_prompts(
    path: Path, column: str = "", words: int = 0, min_words: int = 0, rows: int = 0, seed: int = 42
) -> list[str]:
    """Prompts from JSONL (``prompt``/``text``/``sentence`` or ``column``) or a
    TSV/CSV with a header.

    ``words`` keeps only each prompt's first words (review openings for the sentiment
    task); ``rows`` samples that many, seeded.
    """
    import csv

    if not path.exists():
        raise DatasetError(f"{path}: no such prompt file")
    candidates = [column] if column else ["prompt", "text", "sentence", "question"]
    if path.suffix == ".jsonl":
        records = [r for _, r in read_jsonl(path)]
    else:
        with path.open(newline="", encoding="utf-8") as handle:
            records = list(csv.DictReader(handle, delimiter="\t" if path.suffix == ".tsv" else ","))
    if not records:
        raise DatasetError(f"{path}: no prompts")
    key = next((c for c in candidates if c in records[0]), None)
    if key is None:
        raise DatasetError(
            f"{path}: no prompt column; expected one of {', '.join(candidates)} "
            f"(found: {', '.join(records[0])})"
        )
    prompts = []
    for record in records:
        text = str(record.get(key) or "").strip()
        if len(text.split()) < max(min_words, 1):
            continue
        prompts.append(" ".join(text.split()[:words]) if words else text)
    prompts = list(dict.fromkeys(prompts))  # openings repeat; keep each once
    if rows and rows < len(prompts):
        prompts = random.Random(seed).sample(prompts, rows)
    if not prompts:
        raise DatasetError(f"{path}: no prompt has at least {max(min_words, 1)} words")
    return prompts


@dataclass
class Rollout:
    """Prompt and continuation token ids (left-padded prompts, right-padded responses)."""

    query_ids: object  # LongTensor [batch, prompt_len]
    query_mask: object
    response_ids: object  # LongTensor [batch, new_tokens]
    response_mask: object  # 1 for real response tokens up to and including the first EOS
    texts: list[str]


def generate(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
    seed: int | None = None,
) -> Rollout:
    """Sample continuations (temperature 0: greedy) and mask everything after the first EOS."""
    import torch

    tokenizer.padding_side = "left"
    enc = tokenizer(prompts, return_tensors="pt", padding=True, add_special_tokens=False)
    if seed is not None:
        torch.manual_seed(seed)
    sampling = (
        {"do_sample": True, "temperature": temperature, "top_k": 0, "top_p": 1.0}
        if temperature > 0
        else {"do_sample": False}
    )
    with torch.no_grad():
        output = model.generate(
            **enc,
            max_new_tokens=max_new_tokens,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            **sampling,
        )
    response = output[:, enc["input_ids"].shape[1] :]
    is_eos = response == tokenizer.eos_token_id
    after_eos = (is_eos.cumsum(1) - is_eos.long()) > 0  # positions after the first EOS
    mask = (~after_eos).long()
    texts = [
        tokenizer.decode(r[m.bool()], skip_special_tokens=True) for r, m in zip(response, mask)
    ]
    return Rollout(enc["input_ids"], enc["attention_mask"], response, mask, texts)


def generate_batched(
    model,
    tokenizer,
    prompts: list[str],
    max_new_tokens: int,
    temperature: float,
    seed: int,
    batch: int = 16,
) -> list[str]:
    """Continuation texts for many prompts, in batches, reproducibly."""
    from tqdm.auto import tqdm

    texts = []
    for start in tqdm(range(0, len(prompts), batch), desc="generating", unit="batch", leave=False):
        texts += generate(
            model,
            tokenizer,
            prompts[start : start + batch],
            max_new_tokens,
            temperature,
            seed + start,
        ).texts
    return texts


def sample_pairs(
    model,
    tokenizer,
    prompts: list[str],
    score: Scorer,
    *,
    max_new_tokens: int,
    temperature: float,
    seed: int,
    min_margin: float = 0.5,
) -> list[dict]:
    """Two sampled continuations per prompt, judged by ``score``: the better one is chosen.

    Near-ties (reward difference under ``min_margin``) carry little signal and are dropped.
    """
    first = generate_batched(model, tokenizer, prompts, max_new_tokens, temperature, seed)
    second = generate_batched(model, tokenizer, prompts, max_new_tokens, temperature, seed + 10_007)
    first_scores = score([p + t for p, t in zip(prompts, first)])
    second_scores = score([p + t for p, t in zip(prompts, second)])
    pairs = []
    for prompt, a, b, score_a, score_b in zip(prompts, first, second, first_scores, second_scores):
        if (
            abs(score_a - score_b) < min_margin
            or not a.strip()
            or not b.strip()
            or a.strip() == b.strip()
        ):
            continue
        chosen, rejected = (a, b) if score_a > score_b else (b, a)
        pairs.append(
            {
                "prompt": prompt,
                "chosen": chosen,
                "rejected": rejected,
                "margin": round(abs(score_a - score_b), 3),
            }
        )
    return pairs
