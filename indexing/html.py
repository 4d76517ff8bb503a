"""HTML to the Markdown text a reader of the page sees, with ``#`` headings.

What a reader cannot see (hidden by attributes, CSS or colour, scripts, templates,
comments) is dropped first by ``indexing.visibility``. The rest becomes Markdown:
``<h1>``..``<h6>`` become ATX headings, ``<pre>`` a code fence, list items ``- `` lines and
table cells `` | ``-separated rows; text that Markdown would read as structure (a leading
``#``, a fence, a setext underline, a raw HTML block opener) is escaped, so the Markdown
parser in chunking finds exactly the page's headings and their paths.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from bs4 import BeautifulSoup, NavigableString, Tag

from indexing.visibility import drop_invisible

HEADINGS = {f"h{level}": level for level in range(1, 7)}
BLOCKS = {
    "address",
    "article",
    "aside",
    "blockquote",
    "body",
    "caption",
    "dd",
    "details",
    "dialog",
    "div",
    "dl",
    "dt",
    "fieldset",
    "figcaption",
    "figure",
    "footer",
    "form",
    "header",
    "hr",
    "html",
    "li",
    "main",
    "nav",
    "ol",
    "p",
    "section",
    "summary",
    "table",
    "tr",
    "ul",
}
_STRUCTURE = re.compile(r"^(#|```|~~~|<|[=-]+$)")


@dataclass(frozen=True)
class HtmlText:
    """A page's visible text as Markdown, and how many hidden elements with text were dropped.

    ``hidden_removed`` counts elements that would render but that the page hides (by
    attribute, CSS or colour) and that held text; never-rendered elements (scripts,
    templates, ...) and comments are not counted.
    """

    text: str
    hidden_removed: int


def convert_html(html: str) -> HtmlText:
    """Visible text of ``html`` as Markdown with ``#`` headings; see the module docstring.

    Never raises on malformed HTML or CSS: what cannot be parsed is read as browsers do
    (html.parser's recovery, invalid CSS rules and declarations skipped).
    """
    soup = BeautifulSoup(html, "html.parser")
    removed = drop_invisible(soup)
    return HtmlText(_markdown(soup), removed)


def html_to_markdown(html: str) -> str:
    """``convert_html(html).text``: the visible text of a page as Markdown."""
    return convert_html(html).text


def _markdown(root: Tag) -> str:
    """Blocks of text separated by blank lines; headings as ``#`` lines, ``<pre>`` fenced."""
    blocks: list[str] = []
    line: list[str] = []
    bullet = False

    def flush() -> None:
        nonlocal bullet
        rows = [" ".join(row.split()) for row in "".join(line).split("\n")]
        paragraph = "\n".join(_escape(row) for row in rows if row)
        line.clear()
        if paragraph:
            blocks.append(f"- {paragraph}" if bullet else paragraph)
            bullet = False

    stack: list[tuple[object, bool]] = [(root, False)]
    while stack:
        node, closing = stack.pop()
        if closing:
            flush()
            bullet = False
        elif isinstance(node, NavigableString):
            line.append(re.sub(r"\s+", " ", str(node)))
        elif node.name in HEADINGS:
            flush()
            title = " ".join(node.get_text(" ").split())
            if title:  # a trailing " #" would be read as the heading's closing sequence
                blocks.append(
                    "#" * HEADINGS[node.name] + " " + re.sub(r"(^|\s)(#+)$", r"\1\\\2", title)
                )
        elif node.name == "pre":
            flush()
            blocks.append(_fence(node.get_text()))
        elif node.name == "br":
            line.append("\n")
        else:
            if node.name in {"td", "th"} and "".join(line).strip():
                line.append(" | ")
            if node.name in BLOCKS:
                flush()
                stack.append((node, True))
            bullet = bullet or node.name == "li"
            stack.extend((child, False) for child in reversed(list(node.children)))
    flush()
    return "\n\n".join(blocks)


def _escape(row: str) -> str:
    """A line of page text, escaped where Markdown would read it as structure."""
    return "\\" + row if _STRUCTURE.match(row) else row


def _fence(code: str) -> str:
    longest = max((len(run) for run in re.findall(r"`+", code)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}\n{code.strip(chr(10))}\n{fence}"
