"""Markdown structure read by a CommonMark parser (markdown-it-py), never guessed from lines.

- ``split_front_matter``: a ``---`` block at the very top is metadata (YAML, or TOML
  between the same markers), parsed with PyYAML or tomllib and kept out of the body. A
  block that is neither is left in the body as text, with a notice saying why.
- ``sections``: the document cut at its headings (ATX ``#`` and setext underlines alike),
  each piece with its full heading path. A ``#`` line inside a code fence (``````` or
  ``~~~``, any length, indented up to three spaces), an indented code block, an HTML
  block or a front-matter block is not a heading, because the parser says so.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from functools import lru_cache

import yaml
from markdown_it import MarkdownIt
from markdown_it.token import Token
from mdit_py_plugins.front_matter import front_matter_plugin


@dataclass(frozen=True)
class FrontMatter:
    """A Markdown file split into its front matter and its body.

    ``metadata`` is empty and ``body`` the whole text when there is no usable front
    matter; ``notice`` then says why a front-matter block was kept as text, if one was.
    """

    body: str
    metadata: dict = field(default_factory=dict)
    notice: str | None = None

    @property
    def title(self) -> str | None:
        """The ``title`` field when it is a non-empty scalar, as text."""
        value = self.metadata.get("title")
        if isinstance(value, (str, int, float)) and str(value).strip():
            return " ".join(str(value).split())
        return None


@dataclass(frozen=True)
class Section:
    """A run of lines under one heading: ``path`` from the top-level heading down to it."""

    path: tuple[str, ...]
    text: str


@lru_cache(maxsize=1)
def _parser() -> MarkdownIt:
    return MarkdownIt("commonmark").use(front_matter_plugin)


def split_front_matter(text: str) -> FrontMatter:
    """Front matter of ``text`` (a ``---`` ... ``---`` block on its first line) and the rest.

    The block must parse as a YAML or TOML mapping; values that are not plain scalars are
    kept as they load. Never raises on bad front matter: the text stays the body.
    """
    tokens = _parser().parse(text)
    if not tokens or tokens[0].type != "front_matter" or not tokens[0].map:
        return FrontMatter(text)
    block, end = tokens[0], tokens[0].map[1]
    lines = text.split("\n")
    problem = None
    try:
        metadata = yaml.safe_load(block.content) if block.content.strip() else {}
    except yaml.YAMLError as exc:
        metadata, problem = None, _yaml_problem(exc)
    if not isinstance(metadata, dict):  # TOML, or a paragraph between two thematic breaks
        try:
            metadata = tomllib.loads(block.content)
        except tomllib.TOMLDecodeError:
            if problem is None:
                return FrontMatter(text)
            reason = f"front matter (lines 1-{end}) is neither YAML ({problem}) nor TOML"
            return FrontMatter(text, {}, f"{reason}; indexed as text")
    return FrontMatter("\n".join(lines[end:]).lstrip("\n"), metadata)


def sections(text: str, *, title: str | None = None) -> list[Section]:
    """``text`` cut before each top-level heading, in order; blank sections are left out.

    The path of a section lists the titles of the headings it is nested under, then its
    own (``("Guide", "Install", "From source")``); text before the first heading has the
    empty path. ``title`` (e.g. from front matter) becomes the root of every path when
    the text has no level-1 heading of its own. Headings inside block quotes or lists do
    not cut the text.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")  # as the parser counts lines
    lines = text.split("\n")
    tokens = _parser().parse(text)
    starts: list[tuple[int, int, str]] = []  # (line, level, title)
    for index, token in enumerate(tokens):
        if token.type == "heading_open" and token.level == 0 and token.map:
            starts.append((token.map[0], int(token.tag[1]), _plain(tokens[index + 1])))
    root = (title,) if title and not any(level == 1 for _, level, _ in starts) else ()
    found = [Section(root, "\n".join(lines[: starts[0][0] if starts else len(lines)]))]
    open_headings: list[tuple[int, str]] = []
    for number, (line, level, heading) in enumerate(starts):
        while open_headings and open_headings[-1][0] >= level:
            open_headings.pop()
        open_headings.append((level, heading))
        end = starts[number + 1][0] if number + 1 < len(starts) else len(lines)
        path = root + tuple(name for _, name in open_headings if name)
        found.append(Section(path, "\n".join(lines[line:end])))
    return [section for section in found if section.text.strip()]


def _plain(inline: Token) -> str:
    """The text of a heading's inline token without its Markdown markup."""
    pieces = []
    for child in inline.children or []:
        if child.type in {"text", "code_inline", "image"}:
            pieces.append(child.content)
        elif child.type in {"softbreak", "hardbreak"}:
            pieces.append(" ")
    return " ".join("".join(pieces).split()) or inline.content.strip()


def _yaml_problem(exc: yaml.YAMLError) -> str:
    """The YAML parser's complaint with its line in the file (the block starts on line 2)."""
    mark = getattr(exc, "problem_mark", None)
    problem = getattr(exc, "problem", None) or exc.__class__.__name__
    return f"{problem} at line {mark.line + 2}" if mark is not None else problem
