"""The ONNX Runtime embedding backend against the PyTorch one, on the real model."""

from __future__ import annotations

import numpy as np
import pytest

from indexing.config import EmbeddingSettings
from indexing.embedding import Embedder

TEXTS = [
    "Green tea is steeped at 80 degrees for two minutes.",
    "Kites fly best in steady wind on open beaches.",
    "Volcanoes erupt molten rock that cools into basalt. " * 12,
]


@pytest.mark.parametrize(("variant", "min_cosine"), [("optimized", 0.9999), ("int8", 0.95)])
def test_onnx_vectors_match_torch(tmp_path_factory, embedder, variant, min_cosine):
    cache = tmp_path_factory.getbasetemp() / "onnx-cache"
    onnx = Embedder(EmbeddingSettings(backend="onnx", onnx_variant=variant), cache_dir=cache)
    reference = embedder.embed(TEXTS)
    vectors = onnx.embed(TEXTS)
    assert vectors.shape == reference.shape
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-5)
    assert (vectors * reference).sum(axis=1).min() >= min_cosine
    assert onnx.tokenize("two words") == embedder.tokenize("two words")
