"""Text classification, the conventional ladder plus PEFT.

- ``features``: a frozen encoder (the MiniLM embedder, or the LLM's mean-pooled hidden
  states) gives features; scikit-learn fits logistic regression (C chosen on the
  validation file) or a random forest.
- ``head``: a new output layer on the frozen LLM (only ``score`` trains).
- ``lora``: LoRA on the LLM plus the new output layer.
- ``full``: every weight of the LLM plus the output layer.

Artefacts are small where they can be: ``head`` stores only the output layer, ``lora``
the adapter; ``full`` necessarily stores a whole model.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from training.config import ClassifyArgs
from training.data import DatasetError, LabeledTexts, load_labeled
from training.registry import AdapterRegistry, Manifest
from training.run import TrainingRun, load_tokenizer
from training.tracking import count_parameters, max_change, peak_memory_mb, snapshot_trainable


def accuracy_and_f1(truth: list[int], predicted: list[int]) -> dict[str, float]:
    """Accuracy and macro-F1."""
    from sklearn.metrics import accuracy_score, f1_score

    return {
        "accuracy": round(float(accuracy_score(truth, predicted)), 4),
        "macro_f1": round(float(f1_score(truth, predicted, average="macro")), 4),
    }


def _encode_features(
    texts: list[str], args: ClassifyArgs, embedder_path: str, batch: int = 64, encoder=None
) -> np.ndarray:
    """Feature vectors; pass a loaded ``encoder`` (SentenceTransformer) when calling repeatedly."""
    if args.feature_model == "embedder":
        from sentence_transformers import SentenceTransformer

        encoder = encoder or SentenceTransformer(embedder_path, device="cpu")
        return encoder.encode(texts, batch_size=batch)
    import torch
    from transformers import AutoModel

    tokenizer = load_tokenizer(args.base_model)
    model = AutoModel.from_pretrained(args.base_model, dtype=torch.float32).eval()
    parts = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tokenizer(
                texts[start : start + batch],
                padding=True,
                truncation=True,
                max_length=args.max_length,
                return_tensors="pt",
            )
            hidden = model(**enc).last_hidden_state
            mask = enc["attention_mask"].unsqueeze(-1)
            parts.append(((hidden * mask).sum(1) / mask.sum(1)).numpy())
    return np.concatenate(parts)


def _splits(args: ClassifyArgs) -> tuple[LabeledTexts, LabeledTexts | None, LabeledTexts | None]:
    text_column = args.text_column or None
    train = load_labeled(Path(args.dataset), text_column, args.label_column)
    train = train.sample(args.train_rows or None, args.seed)
    evaluation = (
        load_labeled(Path(args.eval_file), text_column, args.label_column)
        if args.eval_file
        else None
    )
    test = (
        load_labeled(Path(args.test_file), text_column, args.label_column)
        if args.test_file
        else None
    )
    for other in (evaluation, test):
        if other and other.label_names != train.label_names:
            raise DatasetError(f"label sets differ: {train.label_names} vs {other.label_names}")
    return train, evaluation.sample(1000, args.seed) if evaluation else None, test


def train_classifier(
    args: ClassifyArgs, registry: AdapterRegistry, runs_dir: Path, *, embedder_path: str = ""
) -> Manifest:
    """Train one approach, evaluate it, store it in the registry.

    Raises RegistryError (name taken) or DatasetError (bad file, differing label sets)
    before anything trains.
    """
    with TrainingRun(args, registry, runs_dir) as run:
        train, evaluation, test = _splits(args)
        started = time.monotonic()
        if args.method == "features":
            predict, trainable, total, extra = _fit_features(
                args, train, evaluation, run.staging, embedder_path
            )
        else:
            predict, trainable, total, extra = _fit_llm(run, train)
        metrics: dict = {"train_seconds": round(time.monotonic() - started, 1), **extra}
        for split_name, split in (("validation", evaluation), ("test", test)):
            if split is not None:
                metrics[split_name] = accuracy_and_f1(split.labels, predict(split.texts))
        metrics["peak_memory_mb"] = peak_memory_mb()
        (run.staging / "labels.json").write_text(json.dumps(train.label_names))
        uses_llm = args.method != "features" or args.feature_model == "llm"
        manifest = run.commit(
            kind="classifier",
            method=args.method,
            metrics=metrics,
            parameters=(trainable, total),
            base_model=args.base_model if uses_llm else embedder_path,
        )
    manifest.metrics["artefact_bytes"] = registry.size_bytes(args.name)
    return manifest


def _fit_features(args, train, evaluation, staging: Path, embedder_path: str):
    import joblib
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    features = _encode_features(train.texts, args, embedder_path)
    if args.classifier == "forest":
        model = RandomForestClassifier(n_estimators=300, random_state=args.seed, n_jobs=-1)
        model.fit(features, train.labels)
        chosen = {}
    else:
        candidates = [LogisticRegression(C=c, max_iter=2000) for c in (0.1, 1.0, 10.0)]
        eval_features = (
            _encode_features(evaluation.texts, args, embedder_path) if evaluation else None
        )
        best, best_score = None, -1.0
        for candidate in candidates:
            candidate.fit(features, train.labels)
            score = candidate.score(eval_features, evaluation.labels) if evaluation else 0.0
            if score > best_score:
                best, best_score = candidate, score
        model, chosen = best, {"C": best.C}
    joblib.dump(model, staging / "classifier.joblib")
    (staging / "features.json").write_text(
        json.dumps({"feature_model": args.feature_model, "embedder": embedder_path})
    )
    trainable = (
        int(np.prod(model.coef_.shape) + model.intercept_.size) if hasattr(model, "coef_") else 0
    )
    encoder_params = 22_713_216 if args.feature_model == "embedder" else 0
    return (
        lambda texts: model.predict(_encode_features(texts, args, embedder_path)).tolist(),
        trainable,
        trainable + encoder_params,
        {"selected": chosen},
    )


def _fit_llm(run: TrainingRun, train: LabeledTexts):
    import torch
    from datasets import Dataset
    from transformers import (
        AutoModelForSequenceClassification,
        DataCollatorWithPadding,
        Trainer,
        TrainingArguments,
    )

    args: ClassifyArgs = run.args
    torch.manual_seed(args.seed)
    tokenizer = load_tokenizer(args.base_model)
    model = AutoModelForSequenceClassification.from_pretrained(
        args.base_model,
        num_labels=len(train.label_names),
        dtype=torch.float32,
        pad_token_id=tokenizer.pad_token_id,
    )
    if args.method == "head":
        for name, parameter in model.named_parameters():
            parameter.requires_grad = name.startswith("score")
    elif args.method == "lora":
        from peft import LoraConfig, TaskType, get_peft_model

        model = get_peft_model(
            model,
            LoraConfig(
                task_type=TaskType.SEQ_CLS,
                r=args.lora_r,
                lora_alpha=args.lora_alpha,
                target_modules=["q_proj", "v_proj"],
            ),
        )
    dataset = Dataset.from_dict({"text": train.texts, "label": train.labels}).map(
        lambda rows: tokenizer(rows["text"], truncation=True, max_length=args.max_length),
        batched=True,
    )
    log = run.start_log()
    trainer = Trainer(
        model=model,
        args=TrainingArguments(**run.trainer_settings(), save_strategy="no"),
        train_dataset=dataset.remove_columns(["text"]),
        data_collator=DataCollatorWithPadding(tokenizer),
        callbacks=[log],
    )
    trainable, total = count_parameters(model)
    before = snapshot_trainable(model)
    result = trainer.train()
    _save_llm_classifier(model, tokenizer, args.method, run.staging)
    plot = run.plot("loss.png")
    model.eval()

    def predict(texts: list[str]) -> list[int]:
        return _predict(model, tokenizer, texts, args.max_length)

    extra = {
        "train_loss": round(result.training_loss, 4),
        "steps": result.global_step,
        "max_weight_change": max_change(model, before),
        "loss_plot": bool(plot),
    }
    return predict, trainable, total, extra


def _save_llm_classifier(model, tokenizer, method: str, folder: Path) -> None:
    from safetensors.torch import save_file

    if method == "head":
        head = {k: v.contiguous() for k, v in model.state_dict().items() if k.startswith("score")}
        save_file(head, str(folder / "head.safetensors"))
        model.config.save_pretrained(folder)
    else:
        model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)


def _predict(model, tokenizer, texts: list[str], max_length: int, batch: int = 32) -> list[int]:
    import torch

    predictions = []
    with torch.no_grad():
        for start in range(0, len(texts), batch):
            enc = tokenizer(
                texts[start : start + batch],
                padding=True,
                truncation=True,
                max_length=max_length,
                return_tensors="pt",
            )
            predictions += model(**enc).logits.argmax(-1).tolist()
    return predictions


def load_classifier(manifest: Manifest, folder: Path):
    """A ``predict(texts) -> list[(label, probability)]`` function for a stored classifier."""
    import torch

    labels = json.loads((folder / "labels.json").read_text())
    hp = manifest.hyperparameters
    if manifest.method == "features":
        import joblib

        model = joblib.load(folder / "classifier.joblib")
        info = json.loads((folder / "features.json").read_text())
        args = ClassifyArgs(
            name=manifest.name,
            dataset=manifest.dataset,
            base_model=hp["base_model"],
            feature_model=info["feature_model"],
            max_length=hp["max_length"],
        )
        encoder = None
        if info["feature_model"] == "embedder":  # load once: PPO scores a batch every step
            from sentence_transformers import SentenceTransformer

            encoder = SentenceTransformer(info["embedder"], device="cpu")
        return lambda texts: [
            (labels[int(np.argmax(p))], float(np.max(p)))
            for p in model.predict_proba(
                _encode_features(texts, args, info["embedder"], encoder=encoder)
            )
        ]
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    if manifest.method == "head":
        from safetensors.torch import load_file

        model = AutoModelForSequenceClassification.from_pretrained(
            hp["base_model"], num_labels=len(labels), pad_token_id=tokenizer.pad_token_id
        )
        model.load_state_dict(load_file(str(folder / "head.safetensors")), strict=False)
    elif manifest.method == "lora":
        from peft import AutoPeftModelForSequenceClassification

        model = AutoPeftModelForSequenceClassification.from_pretrained(
            folder, num_labels=len(labels)
        )
    else:
        model = AutoModelForSequenceClassification.from_pretrained(folder)
    model.eval()

    def predict(texts: list[str]):
        with torch.no_grad():
            enc = tokenizer(
                texts,
                padding=True,
                truncation=True,
                max_length=hp["max_length"],
                return_tensors="pt",
            )
            probs = model(**enc).logits.softmax(-1)
        return [(labels[int(p.argmax())], float(p.max())) for p in probs]

    return predict
