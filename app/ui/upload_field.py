"""A Gradio file field that keeps the name the user uploaded.

Gradio stores each upload under a cleaned name (it drops ``<>:"|?*`` and more), so two
files whose names differ only there would arrive under one name; the original name travels
in the upload's ``orig_name``, which this field hands over beside the temporary path.
"""

from __future__ import annotations

from pathlib import Path

import gradio as gr
from gradio.data_classes import FileData, ListFiles


class NamedUploads(gr.File):
    """``gr.File(file_count="multiple")`` whose value is a list of (temporary path,
    uploaded name)."""

    def get_block_name(self) -> str:
        """Rendered by Gradio's own file component (the name picks the Svelte file)."""
        return "file"

    def preprocess(self, payload: ListFiles | FileData | None) -> list[tuple[str, str]] | None:
        """Pairs of (path on the server, the file name as the user uploaded it)."""
        paths = super().preprocess(payload)
        if payload is None or paths is None:
            return None
        items = list(payload) if isinstance(payload, ListFiles) else [payload]
        paths = paths if isinstance(paths, list) else [paths]
        return [(str(p), f.orig_name or Path(str(p)).name) for p, f in zip(paths, items)]
