"""Which parts of an HTML page a reader can see; everything else is dropped before indexing.

Text a reader never sees must not reach the index or the model: it is a common carrier of
prompt injection (OWASP LLM01). Dropped, with the styles the page itself gives (its
``<style>`` blocks and ``style`` attributes, through the cascade in ``indexing.css``):

- elements that never render: scripts, styles, ``<template>``, ``<noscript>``, ``<head>``,
  iframes, SVG, canvas, closed ``<dialog>`` and the like, and HTML comments;
- the ``hidden`` attribute and ``aria-hidden="true"``;
- ``display: none``, ``content-visibility: hidden``, opacity at or below ``MIN_OPACITY``;
- boxes moved off screen (``position: absolute|fixed`` with ``left``/``top``/``right`` or
  ``inset`` of ``-OFFSCREEN_PX`` or less, likewise ``text-indent`` and ``margin``),
  clipped away (``clip: rect()`` of no area on a positioned box, ``clip-path:
  inset(50%)`` or more, ``circle(0)``), scaled to nothing (``transform: scale(0)``) or
  squeezed into ``TINY_BOX_PX`` (``width``, ``height`` or their ``max-``) with
  ``overflow: hidden``;
- text made invisible in ways that children inherit (and may undo): ``visibility:
  hidden|collapse``, a zero font size (also ``font: 0/0 a``), and text whose colour
  cannot be told from its background: the colour (inherited, alpha-blended) and the
  nearest background colour behind it (the white page when none is set, unknown when a
  background image is) differ by less than ``DISTINCT_CHANNEL`` in every sRGB channel.
"""

from __future__ import annotations

from dataclasses import dataclass

import tinycss2.color4
from bs4 import BeautifulSoup, NavigableString, Tag

from indexing.css import Style, cascade, keyword, media_applies, parse_rules, to_px

NEVER_RENDERED = {
    "script",
    "style",
    "noscript",
    "template",
    "head",
    "title",
    "meta",
    "link",
    "base",
    "iframe",
    "svg",
    "canvas",
    "object",
    "embed",
    "datalist",
    "noembed",
    "noframes",
    "param",
    "rp",
    "area",
    "map",
}
MIN_OPACITY = 0.05  # at or below: invisible
OFFSCREEN_PX = 1000  # an offset of -1000px or further puts a box off screen
TINY_BOX_PX = 1.0  # width or height at or below, with overflow hidden: nothing shows
DISTINCT_CHANNEL = 16 / 255  # colours closer than this in every channel look the same
PROPERTIES = {
    "display",
    "content-visibility",
    "opacity",
    "position",
    "left",
    "top",
    "right",
    "inset",
    "margin",
    "margin-left",
    "margin-top",
    "text-indent",
    "clip",
    "clip-path",
    "transform",
    "overflow",
    "overflow-x",
    "overflow-y",
    "width",
    "height",
    "max-width",
    "max-height",
    "visibility",
    "font",
    "font-size",
    "color",
    "background",
    "background-color",
    "background-image",
}
_WHITE, _BLACK = (1.0, 1.0, 1.0, 1.0), (0.0, 0.0, 0.0, 1.0)


def drop_invisible(soup: BeautifulSoup) -> int:
    """Remove from ``soup`` all that a reader of the page cannot see; see the module doc.

    Returns how many elements that would render, and held text, were hidden by the page
    (by attribute, CSS or colour); never-rendered elements and comments are not counted.
    """
    rules = []
    for style in soup.find_all("style"):
        if media_applies(str(style.get("media", ""))):
            rules.extend(parse_rules(style.get_text()))
    styles = cascade(soup, rules, PROPERTIES)
    for node in soup.find_all(string=lambda s: type(s) is not NavigableString):
        node.extract()  # comments, doctype, CDATA, processing instructions
    for tag in soup.find_all(NEVER_RENDERED):
        tag.decompose()
    return _walk(soup, styles)


@dataclass(frozen=True)
class _Ink:
    """What an element passes down to its children that decides whether text shows."""

    visible: bool = True  # visibility
    font_zero: bool = False
    color: tuple[float, float, float, float] = _BLACK
    backdrop: tuple[float, float, float, float] | None = _WHITE  # None: an image, unknown

    def unseen(self) -> bool:
        return not self.visible or self.font_zero or _same_colour(self.color, self.backdrop)


def _walk(soup: BeautifulSoup, styles: dict[int, Style]) -> int:
    """Drop hidden boxes and unseen text; count the hiding elements that cost some text."""
    boxes, hiders = 0, set()  # hiders: elements whose inherited style hid text under them
    stack: list[tuple[Tag, _Ink, Tag | None]] = [(soup, _Ink(), None)]
    while stack:
        tag, outer, hider = stack.pop()
        style = styles.get(id(tag), {})
        if tag is not soup and _box_hidden(tag, style):
            boxes += bool(tag.get_text().strip())
            tag.decompose()
            continue
        ink = _inherit(outer, style)
        hider = (hider if outer.unseen() else tag) if ink.unseen() else None
        for child in list(tag.children):
            if isinstance(child, Tag):
                stack.append((child, ink, hider))
            elif hider is not None:
                if child.strip():
                    hiders.add(id(hider))
                child.extract()
    return boxes + len(hiders)


def _box_hidden(tag: Tag, style: Style) -> bool:
    """Whether the element and everything in it are out of sight."""
    if "hidden" in tag.attrs or str(tag.get("aria-hidden", "")).strip().lower() == "true":
        return True
    if tag.name == "dialog" and "open" not in tag.attrs:
        return True

    def value(name: str) -> tuple:
        return style[name].value if name in style else ()

    if keyword(value("display")) == "none" or keyword(value("content-visibility")) == "hidden":
        return True
    opacity = _fraction(value("opacity"))
    if opacity is not None and opacity <= MIN_OPACITY:
        return True
    positioned = keyword(value("position")) in {"absolute", "fixed"}
    inset = _sides(value("inset"))
    offsets = [value(side) or inset.get(side, ()) for side in ("left", "top", "right")]
    margins = _sides(value("margin"))
    shifts = [value(f"margin-{side}") or margins.get(side, ()) for side in ("left", "top")]
    shifts.append(value("text-indent"))
    if any(_px(v) <= -OFFSCREEN_PX for v in shifts + (offsets if positioned else [])):
        return True
    if positioned and _zero_clip(value("clip")):
        return True
    if _clipped_away(value("clip-path")) or _scaled_to_nothing(value("transform")):
        return True
    overflow = {
        t.lower_value
        for n in ("overflow", "overflow-x", "overflow-y")
        for t in value(n)
        if t.type == "ident"
    }
    sizes = ("width", "height", "max-width", "max-height")
    return bool(overflow & {"hidden", "clip"}) and any(_px(value(n)) <= TINY_BOX_PX for n in sizes)


def _inherit(outer: _Ink, style: Style) -> _Ink:
    """The ink of an element from its parent's and its own declarations."""
    visible = outer.visible
    if "visibility" in style:
        word = keyword(style["visibility"].value)
        visible = {"hidden": False, "collapse": False, "visible": True}.get(word, visible)
    font_zero = outer.font_zero
    for name in ("font", "font-size"):
        if name in style:
            font_zero = _font_zero(style[name].value, font_zero, shorthand=name == "font")
    color = outer.color
    if "color" in style:
        color = _colour(style["color"].value, outer.color) or color
    backdrop = outer.backdrop
    for name in ("background", "background-color", "background-image"):
        if name in style:
            backdrop = _backdrop(style[name].value, backdrop, color)
    return _Ink(visible, font_zero, color, backdrop)


def _font_zero(value: tuple, outer_zero: bool, *, shorthand: bool) -> bool:
    sizes = [t for t in value if t.type in {"dimension", "percentage", "number"}]
    if shorthand:  # the size is the first length; a weight (400, 700) is never 0
        sizes = [t for t in sizes if t.type != "number" or t.value == 0][:1]
    if len(sizes) != 1 or (not shorthand and len(value) != 1):
        return outer_zero if keyword(value) in {"inherit", "smaller", "larger", None} else False
    size = sizes[0]
    relative = size.type == "percentage" or getattr(size, "lower_unit", "") in {"em", "ex", "ch"}
    return size.value == 0 or (relative and outer_zero)


def _colour(value: tuple, current: tuple) -> tuple[float, float, float, float] | None:
    """An sRGB colour with alpha, ``current`` for currentcolor, None if unknown."""
    if len(value) != 1:
        return None
    parsed = tinycss2.color4.parse_color(value[0])
    if parsed == "currentcolor":
        return current
    if parsed is None:
        return None
    try:
        return tuple(parsed.to("srgb"))
    except NotImplementedError:  # colour spaces tinycss2 cannot convert (oklch, lab, ...)
        return None


def _backdrop(value: tuple, outer: tuple | None, color: tuple) -> tuple | None:
    """The colour behind an element's text after its ``background`` declaration."""
    if any(
        t.type == "function"
        and ("gradient" in t.lower_name or t.lower_name == "image")
        or t.type == "url"
        for t in value
    ):
        return None
    for token in value:
        paint = _colour((token,), color)
        if paint is not None:
            return _blend(paint, outer)
    return outer


def _blend(top: tuple, under: tuple | None) -> tuple | None:
    alpha = top[3]
    if alpha >= 1:
        return top
    if under is None:
        return None
    return tuple(alpha * a + (1 - alpha) * b for a, b in zip(top[:3], under[:3])) + (1.0,)


def _same_colour(color: tuple, backdrop: tuple | None) -> bool:
    if backdrop is None:
        return False
    seen = _blend(color, backdrop)
    return all(abs(a - b) < DISTINCT_CHANNEL for a, b in zip(seen, backdrop))


def _px(value: tuple) -> float:
    """A one-length value in px; +inf when it is not one (auto, calc(), a percentage)."""
    size = to_px(value[0]) if len(value) == 1 else None
    return float("inf") if size is None else size


def _fraction(value: tuple) -> float | None:
    if len(value) == 1 and value[0].type == "number":
        return value[0].value
    if len(value) == 1 and value[0].type == "percentage":
        return value[0].value / 100
    return None


def _sides(value: tuple) -> dict[str, tuple]:
    """``top right bottom left`` from a 1-4 value shorthand such as ``inset`` or ``margin``."""
    if not 1 <= len(value) <= 4:
        return {}
    top, right, bottom, left = {1: (0, 0, 0, 0), 2: (0, 1, 0, 1), 3: (0, 1, 2, 1), 4: (0, 1, 2, 3)}[
        len(value)
    ]
    return {
        "top": (value[top],),
        "right": (value[right],),
        "bottom": (value[bottom],),
        "left": (value[left],),
    }


def _numbers(function) -> list[float | None]:
    return [
        to_px(t) if t.type != "number" else t.value
        for t in function.arguments
        if t.type in {"number", "dimension", "percentage"}
    ]


def _zero_clip(value: tuple) -> bool:
    """``clip: rect(top, right, bottom, left)`` with no area left."""
    if len(value) != 1 or value[0].type != "function" or value[0].lower_name != "rect":
        return False
    sides = _numbers(value[0])
    if len(sides) != 4 or None in sides:
        return False
    top, right, bottom, left = sides
    return bottom <= top or right <= left


def _clipped_away(value: tuple) -> bool:
    """``clip-path: inset(50%)`` or more, or a circle or ellipse of radius 0."""
    if len(value) != 1 or value[0].type != "function":
        return False
    function = value[0]
    arguments = [t for t in function.arguments if t.type not in {"whitespace", "comment"}]
    if not arguments:
        return False
    first = arguments[0]
    if function.lower_name == "inset":
        return first.type == "percentage" and first.value >= 50
    return function.lower_name in {"circle", "ellipse"} and to_px(first) == 0


def _scaled_to_nothing(value: tuple) -> bool:
    scales = [t for t in value if t.type == "function" and t.lower_name.startswith("scale")]
    return any(0 in _numbers(function) for function in scales)
