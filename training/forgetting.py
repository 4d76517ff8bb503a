"""Forgetting check: does tuning cost the model general ability?

Base and tuned model are scored on the same fixed set: perplexity on held-out general
prose shipped in the repo, and SST-2 sentiment accuracy from a prompt (zero-shot and
few-shot), reading the answer off the next-token probabilities of "positive" vs
"negative" so no sampling noise enters. The numbers and their differences go into the
adapter's manifest.
"""

from __future__ import annotations

import math
from pathlib import Path

from training.data import load_labeled

DEFAULT_TEXT = Path(__file__).parent / "datasets" / "general_text.txt"
FEW_SHOT = [
    ("a gorgeous, witty, seductive movie .", "positive"),
    ("the plot is nothing but boilerplate clichés .", "negative"),
]


def perplexity(model, tokenizer, text: str, window: int = 256, max_windows: int = 12) -> float:
    """Token-level perplexity over consecutive windows of ``text``."""
    import torch

    ids = tokenizer(text, return_tensors="pt")["input_ids"][0]
    total_loss, total_tokens = 0.0, 0
    with torch.no_grad():
        for start in range(0, min(len(ids), window * max_windows), window):
            chunk = ids[start : start + window].unsqueeze(0)
            if chunk.shape[1] < 2:
                break
            loss = model(input_ids=chunk, labels=chunk).loss.item()
            total_loss += loss * (chunk.shape[1] - 1)
            total_tokens += chunk.shape[1] - 1
    return round(math.exp(total_loss / max(total_tokens, 1)), 3)


def sentiment_accuracy(
    model, tokenizer, texts: list[str], labels: list[int], few_shot: bool
) -> float:
    """Prompted SST-2 accuracy (label 1 = positive), zero- or few-shot."""
    import torch

    positive = tokenizer(" positive", add_special_tokens=False)["input_ids"][0]
    negative = tokenizer(" negative", add_special_tokens=False)["input_ids"][0]
    correct = 0
    with torch.no_grad():
        for text, label in zip(texts, labels):
            messages = [{"role": "system", "content": "Classify the sentiment of movie reviews."}]
            for example, answer in FEW_SHOT if few_shot else []:
                messages += [
                    {"role": "user", "content": f"Review: {example}"},
                    {"role": "assistant", "content": f"Sentiment: {answer}"},
                ]
            messages.append({"role": "user", "content": f"Review: {text}"})
            prompt = tokenizer.apply_chat_template(
                messages, add_generation_prompt=True, tokenize=False
            )
            ids = tokenizer(prompt + "Sentiment:", return_tensors="pt", add_special_tokens=False)[
                "input_ids"
            ]
            logits = model(input_ids=ids).logits[0, -1]
            predicted = 1 if logits[positive] > logits[negative] else 0
            correct += predicted == label
    return round(correct / max(len(texts), 1), 4)


def score(
    model, tokenizer, text: str, task_texts: list[str], task_labels: list[int]
) -> dict[str, float]:
    """All forgetting metrics for one model."""
    model.eval()
    return {
        "perplexity": perplexity(model, tokenizer, text),
        "sst2_zero_shot": sentiment_accuracy(model, tokenizer, task_texts, task_labels, False),
        "sst2_few_shot": sentiment_accuracy(model, tokenizer, task_texts, task_labels, True),
    }


def forgetting_report(
    model,
    tokenizer,
    base_model: str,
    *,
    task_file: Path | None,
    rows: int = 64,
    text_file: Path = DEFAULT_TEXT,
) -> dict:
    """Base vs tuned scores and tuned - base differences.

    For a peft model the base is the same model with the adapter disabled; a fully tuned
    model is compared with a fresh load of ``base_model``.
    """
    text = text_file.read_text(encoding="utf-8")
    texts, labels = [], []
    if task_file is not None and task_file.exists():
        task = load_labeled(task_file).sample(rows, seed=0)
        texts, labels = task.texts, [int(task.label_names[i]) for i in task.labels]
    tuned = score(model, tokenizer, text, texts, labels)
    if hasattr(model, "disable_adapter"):
        with model.disable_adapter():
            base = score(model, tokenizer, text, texts, labels)
    else:
        import torch
        from transformers import AutoModelForCausalLM

        base_model_loaded = AutoModelForCausalLM.from_pretrained(base_model, dtype=torch.float32)
        base = score(base_model_loaded, tokenizer, text, texts, labels)
    if not texts:
        for scores in (base, tuned):
            scores.pop("sst2_zero_shot"), scores.pop("sst2_few_shot")
    return {
        "base": base,
        "tuned": tuned,
        "delta": {k: round(tuned[k] - base[k], 4) for k in base},
        "task_rows": len(texts),
        "text_file": text_file.name,
    }
