"""Indexing: read files, chunk, embed, store in Chroma, and retrieve."""
