"""The BM25 index and metadata snapshot kept beside each collection.

Built with bm25s from the chunks stored in Chroma, so the two indexes always hold the
same chunks: the pipeline marks the sidecar dirty before it writes to Chroma and rebuilds
it after, and a dirty or missing sidecar is rebuilt on first use (after a crash, too).
The metadata snapshot also serves metadata filters (source glob, file type, tags) for
every retriever without scanning Chroma on each query.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

@lru_cache(maxsize=1)
def _stemmer():
    import Stemmer

    return Stemmer.Stemmer("english")


def _tokenize(texts: list[str]):
    import bm25s

    return bm25s.tokenize(texts, stopwords="en", stemmer=_stemmer().stemWords, show_progress=False)


@dataclass
class MetadataFilter:
    """Which chunks a query may see; empty fields mean "any"."""

    source_glob: str | None = None
    file_types: list[str] = field(default_factory=list)
    tags: list[str] = field(default_factory=list)

    def is_empty(self) -> bool:
        """True when the filter lets everything through."""
        return not (self.source_glob or self.file_types or self.tags)

    def matches(self, metadata: dict[str, Any]) -> bool:
        """True when a chunk's metadata passes every given condition."""
        source = str(metadata.get("source", ""))
        if self.source_glob and not (
            fnmatch.fnmatch(source, self.source_glob)
            or fnmatch.fnmatch(source, f"*/{self.source_glob.lstrip('/')}")
        ):
            return False
        if self.file_types and metadata.get("file_type") not in {
            t.lower().lstrip(".") for t in self.file_types
        }:
            return False
        chunk_tags = set(filter(None, str(metadata.get("tags", "")).split(",")))
        return all(tag in chunk_tags for tag in self.tags)

    def describe(self) -> str:
        """Human-readable form for messages."""
        parts = []
        if self.source_glob:
            parts.append(f"source {self.source_glob!r}")
        if self.file_types:
            parts.append(f"file type {'/'.join(self.file_types)}")
        if self.tags:
            parts.append(f"tags {', '.join(self.tags)}")
        return ", ".join(parts) or "no filter"


class LexicalIndex:
    """BM25 over one collection's chunks, with their ids and metadata."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._bm25 = None
        self.ids: list[str] = []
        self.metadatas: list[dict[str, Any]] = []

    @property
    def dirty_marker(self) -> Path:
        return self.folder / "DIRTY"

    def is_usable(self) -> bool:
        """True when a complete, clean index is on disk."""
        return (self.folder / "ids.json").exists() and not self.dirty_marker.exists()

    def mark_dirty(self) -> None:
        """Record that Chroma is about to change; cleared by ``rebuild``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dirty_marker.touch()

    def revision(self) -> str:
        """The collection revision this index was built from ('' if unknown)."""
        path = self.folder / "revision"
        return path.read_text() if path.exists() else ""

    def rebuild(self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]],
                revision: str = "") -> None:  # fmt: skip
        """Index these chunks (the full content of the collection) and persist."""
        import bm25s

        staging = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        bm25 = None
        if ids:
            bm25 = bm25s.BM25()
            bm25.index(_tokenize(texts), show_progress=False)
            bm25.save(staging / "bm25", show_progress=False)
        snapshot = [{k: m.get(k) for k in ("source", "file_type", "tags")} for m in metadatas]
        (staging / "metadata.json").write_text(json.dumps(snapshot))
        (staging / "ids.json").write_text(json.dumps(ids))
        (staging / "revision").write_text(revision)
        shutil.rmtree(self.folder, ignore_errors=True)
        staging.rename(self.folder)
        self._bm25, self.ids, self.metadatas = bm25, list(ids), snapshot

    def load(self) -> LexicalIndex:
        """Read the persisted index."""
        import bm25s

        self.ids = json.loads((self.folder / "ids.json").read_text())
        self.metadatas = json.loads((self.folder / "metadata.json").read_text())
        bm25_dir = self.folder / "bm25"
        self._bm25 = bm25s.BM25.load(bm25_dir, show_progress=False) if bm25_dir.exists() else None
        return self

    def allowed(self, flt: MetadataFilter | None) -> np.ndarray | None:
        """0/1 mask of chunks passing ``flt`` (None when there is no filter)."""
        if flt is None or flt.is_empty():
            return None
        return np.array([1.0 if flt.matches(m) else 0.0 for m in self.metadatas], dtype=np.float32)

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs with a positive score."""
        if self._bm25 is None or not self.ids:
            return []
        k = min(k, len(self.ids))
        docs, scores = self._bm25.retrieve(
            _tokenize([query]), k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [
            (self.ids[int(doc)], float(score))
            for doc, score in zip(docs[0], scores[0])
            if score > 0
        ]

    def size_bytes(self) -> int:
        """Bytes on disk."""
        return sum(f.stat().st_size for f in self.folder.rglob("*") if f.is_file())
