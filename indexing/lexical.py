"""The BM25 index and metadata snapshot kept beside each collection.

Built with bm25s from the chunks stored in Chroma, so the two indexes always hold the
same chunks: the store's ``writing`` context marks the sidecar dirty before it writes to
Chroma and rebuilds it after, and a dirty or missing sidecar is rebuilt on first use (after
a crash, too), as is one built with another tokenizer (``indexing.bm25_tokens``; the
folder records it).
The metadata snapshot also serves metadata filters (source glob, file type, tags) for
every retriever without scanning Chroma on each query, and holds a key of each chunk's
text so that retrievers can return identical text once.
"""

from __future__ import annotations

import fnmatch
import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from indexing.bm25_tokens import Bm25Tokenizer
from indexing.normalize import normalize_text


def text_key(text: str) -> str:
    """Identity of a chunk's text for de-duplication: equal after NFKC and whitespace folding."""
    folded = " ".join(normalize_text(text).split())
    return hashlib.blake2b(folded.encode("utf-8"), digest_size=12).hexdigest()


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
    """BM25 over one collection's chunks, with their ids, metadata and text keys.

    ``tokenizer`` builds the index; the folder records which one did, and a loaded index
    tokenises queries with that one, so query terms and index terms always agree. The text
    key of each chunk (``text_key``) groups chunks holding the same text.
    """

    def __init__(self, folder: Path, tokenizer: Bm25Tokenizer | None = None) -> None:
        self.folder = folder
        self.tokenizer = tokenizer or Bm25Tokenizer()
        self._bm25 = None
        self.ids: list[str] = []
        self.metadatas: list[dict[str, Any]] = []
        self._position: dict[str, int] = {}
        self._groups = np.zeros(0, dtype=np.int64)
        self._members: dict[str, list[int]] = {}

    @property
    def dirty_marker(self) -> Path:
        return self.folder / "DIRTY"

    def is_usable(self, tokenizer: Bm25Tokenizer | None = None) -> bool:
        """True when a complete, clean index is on disk (built by ``tokenizer``, if given)."""
        if not (self.folder / "ids.json").exists() or self.dirty_marker.exists():
            return False
        return tokenizer is None or self.recorded_tokenizer() == tokenizer.signature

    def recorded_tokenizer(self) -> str:
        """Signature of the tokenizer the index on disk was built with ('' if none recorded)."""
        path = self.folder / "tokenizer"
        return path.read_text() if path.exists() else ""

    def mark_dirty(self) -> None:
        """Record that Chroma is about to change; cleared by ``rebuild``."""
        self.folder.mkdir(parents=True, exist_ok=True)
        self.dirty_marker.touch()

    def revision(self) -> str:
        """The collection revision this index was built from ('' if unknown)."""
        path = self.folder / "revision"
        return path.read_text() if path.exists() else ""

    def rebuild(
        self, ids: list[str], texts: list[str], metadatas: list[dict[str, Any]], revision: str = ""
    ) -> None:
        """Index these chunks (the full content of the collection) and persist."""
        import bm25s

        staging = self.folder.with_name(self.folder.name + ".tmp")
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir(parents=True)
        bm25 = None
        tokens = self.tokenizer.tokenize_many(texts)
        if any(tokens):
            bm25 = bm25s.BM25()
            bm25.index(tokens, show_progress=False)
            bm25.save(staging / "bm25", show_progress=False)
        snapshot = [
            {**{k: m.get(k) for k in ("source", "file_type", "tags")}, "key": text_key(text)}
            for m, text in zip(metadatas, texts)
        ]
        (staging / "metadata.json").write_text(json.dumps(snapshot))
        (staging / "ids.json").write_text(json.dumps(ids))
        (staging / "revision").write_text(revision)
        (staging / "tokenizer").write_text(self.tokenizer.signature)
        shutil.rmtree(self.folder, ignore_errors=True)
        staging.rename(self.folder)
        self._bm25 = bm25
        self._set_chunks(list(ids), snapshot)

    def load(self) -> LexicalIndex:
        """Read the persisted index (and the tokenizer it was built with)."""
        import bm25s

        self.tokenizer = Bm25Tokenizer.from_signature(self.recorded_tokenizer()) or self.tokenizer
        bm25_dir = self.folder / "bm25"
        self._bm25 = bm25s.BM25.load(bm25_dir, show_progress=False) if bm25_dir.exists() else None
        self._set_chunks(
            json.loads((self.folder / "ids.json").read_text()),
            json.loads((self.folder / "metadata.json").read_text()),
        )
        return self

    def _set_chunks(self, ids: list[str], metadatas: list[dict[str, Any]]) -> None:
        self.ids, self.metadatas = ids, metadatas
        self._position = {chunk_id: i for i, chunk_id in enumerate(ids)}
        self._members = {}
        for i, metadata in enumerate(metadatas):
            self._members.setdefault(metadata.get("key") or ids[i], []).append(i)
        codes = {key: code for code, key in enumerate(self._members)}
        self._groups = np.array(
            [codes[m.get("key") or ids[i]] for i, m in enumerate(metadatas)], dtype=np.int64
        )

    def allowed(self, flt: MetadataFilter | None) -> np.ndarray | None:
        """0/1 mask of chunks passing ``flt`` (None when there is no filter)."""
        if flt is None or flt.is_empty():
            return None
        return np.array([1.0 if flt.matches(m) else 0.0 for m in self.metadatas], dtype=np.float32)

    def distinct(self, mask: np.ndarray | None = None) -> int:
        """How many different texts the chunks passing ``mask`` hold."""
        if mask is None:
            return len(self._members)
        return int(np.unique(self._groups[mask > 0]).size)

    def key_of(self, chunk_id: str, text: str | None = None) -> str:
        """The text key of a chunk: from the snapshot, else computed from ``text`` if given."""
        position = self._position.get(chunk_id)
        key = self.metadatas[position].get("key") if position is not None else None
        return key or (text_key(text) if text is not None else chunk_id)

    def also_in(self, key: str, source: str, mask: np.ndarray | None = None) -> list[str]:
        """Sources other than ``source`` holding text ``key`` among chunks passing ``mask``."""
        found = {
            self.metadatas[i].get("source", "?")
            for i in self._members.get(key, [])
            if mask is None or mask[i] > 0
        }
        return sorted(found - {source})

    def search(self, query: str, k: int, mask: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Up to ``k`` (chunk id, BM25 score) pairs with a positive score."""
        terms = self.tokenizer.tokenize(query)
        if self._bm25 is None or not self.ids or not terms:
            return []
        k = min(k, len(self.ids))
        docs, scores = self._bm25.retrieve(
            [terms], k=k, show_progress=False, weight_mask=mask, n_threads=1
        )
        return [
            (self.ids[int(doc)], float(score))
            for doc, score in zip(docs[0], scores[0])
            if score > 0
        ]
