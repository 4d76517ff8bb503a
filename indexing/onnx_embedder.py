"""ONNX Runtime backend for sentence-transformers models (export, optimise, quantise).

sentence-transformers' own ONNX backend goes through optimum-onnx, whose current release
pins transformers below 4.58 and would break the vLLM engine's transformers 5. This
module does the same job with torch's exporter and onnxruntime's own tools:

- ``fp32``: the transformer exported as is;
- ``optimized``: onnxruntime's transformer optimiser fuses attention, LayerNorm and GELU;
- ``int8``: the optimised graph with dynamically quantised (per-channel int8) weights.

Pooling (mean or CLS, from the model's ``1_Pooling/config.json``) runs in NumPy, so the
encoder is a drop-in for ``SentenceTransformer.encode`` in ``indexing.embedding``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

ONNX_VARIANTS = ("fp32", "optimized", "int8")
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def export(model_dir: str, out_dir: Path, variant: str) -> Path:
    """Write ``<variant>.onnx`` for the sentence-transformers model in ``model_dir`` (once)."""
    if variant not in ONNX_VARIANTS:
        raise ValueError(
            f"unknown ONNX variant {variant!r}; choose one of {', '.join(ONNX_VARIANTS)}"
        )
    target = out_dir / f"{variant}.onnx"
    if target.exists():
        return target
    out_dir.mkdir(parents=True, exist_ok=True)
    fp32 = out_dir / "fp32.onnx"
    if not fp32.exists():
        _export_fp32(model_dir, fp32)
    if variant == "fp32":
        return fp32
    optimized = out_dir / "optimized.onnx"
    if not optimized.exists():
        from onnxruntime.transformers import optimizer
        from transformers import AutoConfig

        config = AutoConfig.from_pretrained(model_dir)
        fused = optimizer.optimize_model(
            str(fp32),
            model_type="bert",
            num_heads=config.num_attention_heads,
            hidden_size=config.hidden_size,
        )
        fused.save_model_to_file(str(optimized))
    if variant == "int8":
        from onnx import TensorProto
        from onnxruntime.quantization import QuantType, quantize_dynamic

        quantize_dynamic(
            str(optimized),
            str(target),
            weight_type=QuantType.QInt8,
            per_channel=True,
            reduce_range=True,
            extra_options={"DefaultTensorType": TensorProto.FLOAT},
        )
    return target


def _export_fp32(model_dir: str, target: Path) -> None:
    import torch
    from transformers import AutoModel, AutoTokenizer

    model = AutoModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)

    class LastHiddenState(torch.nn.Module):
        def __init__(self, inner: torch.nn.Module) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.inner(
                input_ids=input_ids, attention_mask=attention_mask, token_type_ids=token_type_ids
            ).last_hidden_state

    sample = tokenizer(["an example", "another example"], padding=True, return_tensors="pt")
    axes = {name: {0: "batch", 1: "sequence"} for name in (*_INPUTS, "last_hidden_state")}
    with torch.no_grad():
        torch.onnx.export(
            LastHiddenState(model),
            tuple(sample[name] for name in _INPUTS),
            str(target),
            input_names=list(_INPUTS),
            output_names=["last_hidden_state"],
            dynamic_axes=axes,
            opset_version=17,
            dynamo=False,
        )


class OnnxSentenceEncoder:
    """Tokenise, run the ONNX transformer, pool; the subset of SentenceTransformer we use."""

    def __init__(self, model_dir: str, onnx_path: Path, threads: int = 0) -> None:
        import onnxruntime as ort
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(model_dir)
        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        if threads:
            options.intra_op_num_threads = threads
        self.session = ort.InferenceSession(
            str(onnx_path), options, providers=["CPUExecutionProvider"]
        )
        folder = Path(model_dir)
        pooling = _read_json(folder / "1_Pooling" / "config.json")
        self.cls_pooling = bool(pooling.get("pooling_mode_cls_token"))
        self.max_length = int(
            _read_json(folder / "sentence_bert_config.json").get("max_seq_length", 256)
        )

    def encode(self, texts: list[str], batch_size: int = 32, **_: object) -> np.ndarray:
        """Pooled, L2-normalised embeddings, longest texts batched together."""
        order = np.argsort([-len(t) for t in texts])
        vectors = np.zeros((len(texts), 0), dtype=np.float32)
        parts = []
        for start in range(0, len(texts), batch_size):
            batch = [texts[i] for i in order[start : start + batch_size]]
            parts.append(self._encode_batch(batch))
        vectors = np.concatenate(parts) if parts else vectors
        result = np.empty_like(vectors)
        result[order] = vectors
        return result

    def _encode_batch(self, batch: list[str]) -> np.ndarray:
        encoded = self.tokenizer(
            batch, padding=True, truncation=True, max_length=self.max_length, return_tensors="np"
        )
        feeds = {name: encoded[name].astype(np.int64) for name in _INPUTS if name in encoded}
        hidden = self.session.run(None, feeds)[0]
        if self.cls_pooling:
            pooled = hidden[:, 0]
        else:
            mask = encoded["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(1) / np.clip(mask.sum(1), 1e-9, None)
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


def _read_json(path: Path) -> dict:
    return json.loads(path.read_text()) if path.exists() else {}
