"""How the web app shows an error a user can fix: one line in the page, never a traceback.

Every tab catches ``RagtuneError`` (``indexing.errors``) and shows ``warning(exc)``;
anything else is a bug and reaches Gradio's error toast with its traceback in the log.
"""

from __future__ import annotations

from indexing.errors import RagtuneError


def warning(exc: RagtuneError) -> str:
    """The Markdown shown in the page for ``exc``: a warning sign and its message."""
    return f"⚠️ {exc.user_message}"
