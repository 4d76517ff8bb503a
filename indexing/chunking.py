"""Split documents into chunks with llama-index node parsers.

Markdown (and HTML, which the reader turns into Markdown) is first split at headings so
that each chunk keeps its heading path; every piece is then cut into sentence-aware
windows of ``chunk_size`` tokens with ``chunk_overlap`` tokens of overlap. Token counts
use the embedder's own tokenizer, so a chunk never silently overflows the embedder.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from llama_index.core import Document
from llama_index.core.node_parser import MarkdownNodeParser, SentenceSplitter


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
    """Chunks of ``documents`` in reading order, with ``heading`` and ``page`` where known."""
    if config.strategy not in STRATEGIES:
        raise ValueError(f"unknown chunking strategy {config.strategy!r}; use {', '.join(STRATEGIES)}")
    splitter = SentenceSplitter(
        chunk_size=config.chunk_size,
        chunk_overlap=min(config.chunk_overlap, config.chunk_size // 2),
        tokenizer=tokenizer,
    )
    if config.strategy == "sentence" and len(documents) > 1:
        joined = "\n\n".join(d.text for d in documents)
        documents = [Document(text=joined, metadata={"file_type": documents[0].metadata["file_type"]})]
    markdown = MarkdownNodeParser()
    chunks: list[Chunk] = []
    for document in documents:
        if config.strategy == "structure" and document.metadata.get("file_type") in {"md", "html"}:
            sections = markdown.get_nodes_from_documents([document])
        else:
            sections = [document]
        for section in splitter.get_nodes_from_documents(sections):
            text = section.get_content().strip()
            if not text:
                continue
            metadata = {
                key: value
                for key, value in section.metadata.items()
                if key in {"file_type", "page"}
            }
            heading = _heading(section.metadata.get("header_path", ""), text)
            if heading:
                metadata["heading"] = heading
            chunks.append(Chunk(text=text, metadata=metadata))
    return chunks


def _heading(header_path: str, text: str) -> str:
    """The heading path of a Markdown section, e.g. ``Install > From source``."""
    parts = [part for part in header_path.strip("/").split("/") if part]
    first = text.splitlines()[0] if text else ""
    if first.startswith("#"):
        parts.append(first.lstrip("#").strip())
    return " > ".join(parts)
