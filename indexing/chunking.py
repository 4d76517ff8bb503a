"""Split documents into chunks: sections from the Markdown parser, then sentence windows.

Markdown (and HTML, which the reader turns into Markdown) is first cut at its headings by
a CommonMark parser (``indexing.markdown``), so a ``#`` line in a code fence is never a
heading; every section is then cut into sentence-aware windows of ``chunk_size`` tokens
with ``chunk_overlap`` tokens of overlap (llama-index's SentenceSplitter), and every
window of a section carries the section's full heading path. Token counts use the
embedder's own tokenizer, so a chunk never silently overflows the embedder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llama_index.core import Document
from llama_index.core.node_parser import SentenceSplitter

from indexing.markdown import Section, sections

STRATEGIES = ("structure", "sentence")


@dataclass(frozen=True)
class ChunkingConfig:
    """How a collection's files are cut; recorded in the collection and in every chunk.

    - ``structure``: Markdown and HTML are split at headings first (each chunk keeps its
      heading path), PDFs page by page (each chunk keeps its page), then sentence-aware
      windows of ``chunk_size`` tokens with ``chunk_overlap`` tokens of overlap.
    - ``sentence``: sentence-aware windows over each file's whole text, ignoring structure.
    """

    strategy: str = "structure"
    chunk_size: int = 256
    chunk_overlap: int = 32

    def signature(self) -> str:
        """Compact form stored with each chunk, e.g. ``structure/256/32``."""
        return f"{self.strategy}/{self.chunk_size}/{self.chunk_overlap}"

    @classmethod
    def from_signature(cls, signature: str) -> ChunkingConfig:
        """Inverse of ``signature``."""
        strategy, size, overlap = signature.split("/")
        return cls(strategy, int(size), int(overlap))


@dataclass
class Chunk:
    """A piece of a file, ready to embed and store."""

    text: str
    metadata: dict[str, str | int | float] = field(default_factory=dict)


def chunk_documents(
    documents: list[Document],
    config: ChunkingConfig,
    *,
    tokenizer: Callable[[str], list] | None = None,
) -> list[Chunk]:
    """Chunks of ``documents`` in reading order, with ``heading`` and ``page`` where known.

    ``heading`` is the section's path, e.g. ``Guide > Install > From source``; a Markdown
    document's ``title`` metadata (from its front matter) roots the path when the text has
    no level-1 heading. Each chunk's text is at most ``chunk_size`` tokens of ``tokenizer``.
    Raises ``ValueError`` for an unknown strategy.
    """
    if config.strategy not in STRATEGIES:
        raise ValueError(
            f"unknown chunking strategy {config.strategy!r}; use {', '.join(STRATEGIES)}"
        )
    splitter = SentenceSplitter(
        chunk_size=config.chunk_size,
        chunk_overlap=min(config.chunk_overlap, config.chunk_size // 2),
        tokenizer=tokenizer,
    )
    if config.strategy == "sentence" and len(documents) > 1:
        joined = "\n\n".join(d.text for d in documents)
        documents = [
            Document(text=joined, metadata={"file_type": documents[0].metadata["file_type"]})
        ]
    chunks: list[Chunk] = []
    for document in documents:
        base = {k: v for k, v in document.metadata.items() if k in {"file_type", "page"}}
        if config.strategy == "structure" and base.get("file_type") in {"md", "html"}:
            title = document.metadata.get("title")
            parts = sections(document.text, title=str(title) if title else None)
        else:
            parts = [Section((), document.text)]
        for part in parts:
            heading = " > ".join(part.path)
            for piece in splitter.split_text(part.text):
                text = piece.strip()
                if text:
                    metadata = {**base, "heading": heading} if heading else dict(base)
                    chunks.append(Chunk(text=text, metadata=metadata))
    return chunks
